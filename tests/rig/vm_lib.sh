# SPDX-License-Identifier: MIT
# Shell functions both VM rigs share (tests/rig/rig.sh, the busybox
# initramfs; tests/rig/systemd/vm.sh, a Debian root with systemd). Sourced,
# not run. The caller sets $rig_name (the log prefix), $cache, $accel
# (tcg|kvm|auto), $console (the console log), $tests, and defines
# boot ACCEL, which starts QEMU in the background with its pid in
# $qemu_pid. The guest prints "RIG: init" first, then "RIG: plan T...",
# one "RIG: ok|FAIL|skip T..." per test, "RIG: metric ..." lines and
# "RIG: done".

t_begin=$(date +%s)
t_last=$t_begin

say() {
	echo "$rig_name: $*"
}

die() {
	echo "$rig_name: error: $*" >&2
	echo "0 passed, 1 failed"
	exit 1
}

# step NAME: how long the step before took
step() {
	now=$(date +%s)
	say "$1 ($((now - t_last)) s)"
	t_last=$now
}

qemu_pid=""

# QEMU runs in the background as our own child ($qemu_pid is QEMU itself,
# not a wrapper: killing a `timeout` wrapper with SIGKILL would orphan it),
# and never outlives the script.
stop_qemu() {
	if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2> /dev/null; then
		kill -KILL "$qemu_pid" 2> /dev/null || true
		wait "$qemu_pid" 2> /dev/null || true
	fi
	qemu_pid=""
}

# sign_of_life SECONDS: the guest printed its first line in time.
sign_of_life() {
	n=$(($1 * 5))
	while [ "$n" -gt 0 ]; do
		grep -q '^RIG: init' "$console" && return 0
		kill -0 "$qemu_pid" 2> /dev/null || return 1
		sleep 0.2
		n=$((n - 1))
	done
	return 1
}

# wait_qemu SECONDS: until QEMU exits (its status in $vm_rc) or is killed.
wait_qemu() {
	end=$(($(date +%s) + $1))
	while kill -0 "$qemu_pid" 2> /dev/null && [ "$(date +%s)" -lt "$end" ]; do
		sleep 0.5
	done
	if kill -0 "$qemu_pid" 2> /dev/null; then
		say "the VM ran longer than $1 s: killed"
		stop_qemu
		vm_rc=124
		return
	fi
	vm_rc=0
	wait "$qemu_pid" || vm_rc=$?
	qemu_pid=""
}

# vm_run TIMEOUT: boot (KVM first when usable, unless a probe found it
# hanging: cached in $cache/kvm-broken; else TCG), wait for the guest,
# print its console; $used is the accelerator, $console.txt the console.
vm_run() {
	trap stop_qemu EXIT
	trap 'stop_qemu; exit 1' INT TERM HUP
	used=tcg
	if [ "$accel" != tcg ] && [ -r /dev/kvm ] && [ -w /dev/kvm ] && [ ! -f "$cache/kvm-broken" ]; then
		boot kvm
		if sign_of_life 10; then
			used=kvm
		else
			# /dev/kvm can exist and still hang (a nested hypervisor): remember.
			stop_qemu
			touch "$cache/kvm-broken"
			say "KVM: no sign of life in 10 s, falling back to TCG (cached in $cache/kvm-broken)"
			[ "$accel" = kvm ] && die "RPMSD_RIG_ACCEL=kvm and KVM does not work here"
		fi
	fi
	[ "$used" = tcg ] && boot tcg
	wait_qemu "$1"
	tr -d '\r' < "$console" > "$console.txt"
	cat "$console.txt"
	step "boot and in-VM tests, accel $used, QEMU exit status $vm_rc"
}

# vm_results: one line per planned test, the metrics, "N passed, N failed"
# last; exits 0 (all passed), 1 (a failure) or 77 (nothing ran).
vm_results() {
	passed=0
	failed=0
	skipped=0
	plan=$(sed -n 's/^RIG: plan //p' "$console.txt" | head -n 1)
	echo
	say "results (accel $used; under TCG every time is the emulator's, not a latency figure):"
	for t in $plan; do
		line=$(grep -E "^RIG: (ok|FAIL|skip) $t(:| |\$)" "$console.txt" | head -n 1 || true)
		case $line in
		"RIG: ok "*) passed=$((passed + 1)); echo "  ok   $t" ;;
		"RIG: skip "*) skipped=$((skipped + 1)); echo "  skip $t: ${line#*: }" ;;
		"RIG: FAIL "*) failed=$((failed + 1)); echo "  FAIL $t: ${line#RIG: FAIL "$t": }" ;;
		*) failed=$((failed + 1)); echo "  FAIL $t: no result (the VM stopped first)" ;;
		esac
	done
	if [ -z "$plan" ]; then
		failed=$((failed + 1))
		echo "  FAIL vm: the guest never started its tests (QEMU exit status $vm_rc)"
	elif ! grep -q '^RIG: done' "$console.txt"; then
		failed=$((failed + 1))
		echo "  FAIL vm: the guest did not finish (QEMU exit status $vm_rc)"
	fi
	sed -n 's/^RIG: metric /  metric: /p' "$console.txt"
	say "total $(($(date +%s) - t_begin)) s"
	if [ "$skipped" -gt 0 ]; then
		echo "$passed passed, $failed failed, $skipped skipped"
	else
		echo "$passed passed, $failed failed"
	fi
	[ "$failed" -eq 0 ] || exit 1
	[ "$passed" -gt 0 ] || exit 77
	exit 0
}
