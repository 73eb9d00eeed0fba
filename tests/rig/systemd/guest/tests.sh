#!/bin/sh
# SPDX-License-Identifier: MIT
# The systemd VM's tests (tests/rig/systemd, docs/rig.md), run by
# rig-test.service once the system is up: rpmsd as the installed service,
# driven with systemctl and rpmsctl, judged by systemctl show, the journal
# and rig-mon's edges on the gpio-sim wires (setup.sh). Prints "RIG:
# ok|FAIL NAME" per test on the serial console; the unit powers off after.
# The tests build on each other, in this order:
#   boot      systemd is PID 1 on the PREEMPT_RT kernel, the system is up,
#             no unit failed, the rig's hardware is there
#   install   what `meson install` put in: the rpmsd user (sysusers.d),
#             the udev rule's groups and modes on the device nodes and IIO
#             attributes, the unit as systemd-analyze verify sees it
#   ready     systemctl start returns once rpmsd said READY=1 (Type=notify):
#             running as rpmsd, real-time threads, status text; then armed
#             through the control socket, the train starts
#   watchdog  SIGUSR2 (daemon.test_hooks) hangs the acquire thread mid-train:
#             ENABLE drops before systemd's watchdog kills (SIGABRT) and
#             restarts the service; the new instance reaches READY, and
#             the coil stays disarmed throughout (no ENABLE or TRIG rise)
#   stall-stim  the same with SIGUSR1, the stim thread hung: the supervisor
#             disarms through the plugin (force_disarm)
#   stop      armed again, systemctl stop mid-train: a clean exit, TRIG and
#             ENABLE inactive on the chip and in the monitor
# Under TCG every time printed is the emulator's (docs/rig.md).
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

ALL="boot install ready watchdog stall-stim stop"
D=/run/rig
CTL=ipc:///run/rpmsd/control
EV=ipc:///run/rpmsd/events
# The enable line must drop within this long of the hang (the stim
# thread's acquisition watchdog is 300 ms, the supervisor's heartbeat
# limit 500 ms, 1.5 s for the acquire thread of an IIO source; TCG slack).
DROP_MS=${DROP_MS:-2500}

say() {
	echo "rig: $*"
}

uptime_s() {
	cut -d' ' -f1 /proc/uptime
}

now_ns() {
	rig-util now
}

prop() {
	systemctl show -P "$1" rpmsd.service
}

# wait_until SECONDS COMMAND...: poll every 0.1 s by the guest's clock.
wait_until() {
	end=$(($(cut -d. -f1 /proc/uptime) + $1))
	shift
	while :; do
		"$@" && return 0
		[ "$(cut -d. -f1 /proc/uptime)" -lt "$end" ] || return 1
		sleep 0.1
	done
}

level() {
	cat "$SIM/sim_gpio$1/value"
}

is_armed() {
	[ "$(level 1)" = 1 ]
}

is_disarmed() {
	[ "$(level 1)" = 0 ]
}

# Edges in rig-mon's log: edges NAME KIND [AFTER_NS [BEFORE_NS]]
edges() {
	awk -v n="$1" -v k="$2" -v a="${3:-0}" -v b="${4:-0}" \
		'$2 == n && $3 == k && $1 + 0 > a + 0 && (b + 0 == 0 || $1 + 0 < b + 0) { print $1 }' "$D/mon.log"
}

n_edges() {
	edges "$@" | wc -l
}

trig_rises_after() {
	[ "$(n_edges TRIG_RISE rise "$2")" -ge "$1" ]
}

mon_ready() {
	[ "$(grep -c ' init ' "$D/mon.log" 2>/dev/null || echo 0)" -ge 4 ]
}

is_active() {
	[ "$(prop ActiveState)/$(prop SubState)" = active/running ]
}

# journal_us TEXT AFTER_US: the monotonic time (us) of the first line of
# rpmsd.service's journal with TEXT after AFTER_US.
journal_us() {
	journalctl -b -u rpmsd.service -o short-monotonic --no-pager 2>/dev/null |
		awk -F'[][]' -v t="$1" -v after="$2" '{ split($2, a, "."); gsub(/ /, "", a[1]); us = a[1] a[2] }
			index($0, t) && us + 0 > after + 0 { print us; exit }'
}

ms() {
	# ms NS_OR_US_DIFFERENCE DIVISOR: one decimal
	awk -v d="$1" -v q="$2" 'BEGIN { printf "%.1f", d / q }'
}

failures=0
first_failure=""

fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
	[ -n "$first_failure" ] || first_failure=$*
}

check() {
	what=$1
	shift
	"$@" || fail "$what"
}

metric() {
	echo "RIG: metric $*"
}

# ---- the tests -----------------------------------------------------------

t_boot() {
	say "kernel $(uname -r) $(uname -v)"
	check "PID 1 is $(readlink /proc/1/exe), not systemd" \
		sh -c 'readlink /proc/1/exe | grep -q "/systemd$"'
	check "not a PREEMPT_RT kernel" sh -c 'uname -v | grep -q PREEMPT_RT'
	check "/sys/kernel/realtime is not 1" [ "$(cat /sys/kernel/realtime 2>/dev/null)" = 1 ]
	check "multi-user.target is not active" systemctl -q is-active multi-user.target
	failed_units=$(systemctl --failed --plain --no-legend | awk '{ print $1 }' | tr '\n' ' ')
	check "failed units: $failed_units" [ -z "$failed_units" ]
	check "rig-setup.service failed" systemctl -q is-active rig-setup.service
	journalctl -b -u rig-setup.service -o cat --no-pager | sed 's/^/  | /'
	for m in gpio_sim rpms_emg iio_trig_hrtimer; do
		check "module $m not loaded" [ -d "/sys/module/$m" ]
	done
	check "no gpio-sim chip" [ -n "${CHIP:-}" ]
	t=$(systemctl show -P ActiveEnterTimestampMonotonic multi-user.target)
	say "multi-user.target reached at $(ms "$t" 1000000) s"
	metric "boot: kernel start to multi-user.target $(ms "$t" 1000000) s"
}

# stat's group and mode of a file, "GROUP MODE"
gm() {
	stat -L -c '%G %a' "$1" 2>/dev/null || echo "missing"
}

t_install() {
	pw=$(getent passwd rpmsd)
	say "user: $pw"
	check "no system user rpmsd (sysusers.d)" [ -n "$pw" ]
	uid=$(echo "$pw" | cut -d: -f3)
	check "rpmsd's uid $uid is not a system uid" [ "${uid:-1000}" -lt 1000 ]
	frag=$(prop FragmentPath)
	say "unit: $frag (drop-ins: $(prop DropInPaths))"
	check "the unit is not the installed one: $frag" sh -c "case '$frag' in /etc/*|'') exit 1 ;; esac"
	out=$(systemd-analyze verify rpmsd.service 2>&1)
	rc=$?
	[ -z "$out" ] || echo "$out" | sed 's/^/  verify | /'
	check "systemd-analyze verify rpmsd.service: exit status $rc" [ "$rc" = 0 ]
	iio=""
	for d in /sys/bus/iio/devices/iio:device*; do
		[ "$(cat "$d/name")" = emg0 ] && iio=$d
	done
	for f in "/dev/$CHIP" "/dev/$(basename "$iio")" /dev/cpu_dma_latency; do
		say "$f: $(gm "$f")"
		check "$f is $(gm "$f"), not group rpmsd mode 660 (udev rule)" [ "$(gm "$f")" = "rpmsd 660" ]
	done
	for a in sampling_frequency buffer/enable buffer/length trigger/current_trigger \
		scan_elements/in_voltage0_en scan_elements/in_voltage1_en; do
		say "$iio/$a: $(gm "$iio/$a")"
		check "$a is $(gm "$iio/$a"), not group rpmsd mode 664 (udev rule)" \
			[ "$(gm "$iio/$a")" = "rpmsd 664" ]
	done
	sec=$(systemd-analyze security rpmsd.service 2>/dev/null | sed -n 's/.*Overall exposure level for rpmsd.service: //p')
	say "systemd-analyze security: ${sec:-?}"
	metric "systemd-analyze security rpmsd.service: ${sec:-?}"
}

# Monitor and subscriber, for the whole run (ready, watchdog, stop).
start_monitors() {
	rig-mon "$CHIP" "$D/mon.log" TRIG_RISE:rising TRIG_FALL:falling \
		ENABLE_RISE:rising ENABLE_FALL:falling 2> "$D/mon.err" &
	wait_until 10 mon_ready || fail "rig-mon did not start: $(cat "$D/mon.err")"
	rpmsctl tail --json -e "$EV" > "$D/events.jsonl" 2> "$D/tail.err" &
}

# arm: through the control socket, as the clinician's tool does; wait for
# 3 pulses of the train.
arm() {
	t=$(now_ns)
	out=$(rpmsctl arm -e "$CTL" 2>&1)
	rc=$?
	say "rpmsctl arm: exit status $rc: $out"
	[ "$rc" = 0 ] || { fail "rpmsctl arm: exit status $rc: $out"; return 1; }
	wait_until 10 is_armed || { fail "ENABLE not active 10 s after arming"; return 1; }
	wait_until 20 trig_rises_after 3 "$t" ||
		{ fail "fewer than 3 trigger pulses 20 s after arming"; return 1; }
	say "armed, $(n_edges TRIG_RISE rise "$t") pulses"
}

show_service() {
	systemctl show -p ActiveState,SubState,Result,NRestarts,MainPID,ExecMainStatus,StatusText rpmsd.service |
		sed 's/^/  show | /'
}

t_ready() {
	start_monitors
	t0=$(now_ns)
	out=$(systemctl start rpmsd.service 2>&1)
	rc=$?
	t1=$(now_ns)
	[ -z "$out" ] || echo "$out" | sed 's/^/  | /'
	show_service
	check "systemctl start rpmsd: exit status $rc" [ "$rc" = 0 ]
	check "Type=$(prop Type), not notify" [ "$(prop Type)" = notify ]
	check "not active/running: $(prop ActiveState)/$(prop SubState)" is_active
	check "NRestarts $(prop NRestarts), not 0" [ "$(prop NRestarts)" = 0 ]
	check "no status text (STATUS=)" [ -n "$(prop StatusText)" ]
	check "no watchdog (WatchdogUSec $(prop WatchdogUSec))" [ "$(prop WatchdogUSec)" != 0 ]
	pid=$(prop MainPID)
	check "no main PID" [ "${pid:-0}" -gt 0 ]
	exec_us=$(prop ExecMainStartTimestampMonotonic)
	ready_us=$(prop ActiveEnterTimestampMonotonic)
	say "systemctl start took $(ms $((t1 - t0)) 1000000) ms; rpmsd exec to READY $(ms $((ready_us - exec_us)) 1000) ms; READY at uptime $(ms "$ready_us" 1000000) s"
	metric "ready: systemctl start -> READY $(ms $((t1 - t0)) 1000000) ms (exec -> READY $(ms $((ready_us - exec_us)) 1000) ms); kernel start -> READY $(ms "$ready_us" 1000000) s"
	if [ "${pid:-0}" -gt 0 ] && [ -d "/proc/$pid" ]; then
		uid=$(awk '/^Uid:/ { print $3 }' "/proc/$pid/status")
		say "main PID $pid: uid $uid, $(grep -E '^(CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' "/proc/$pid/status" | tr -s '\t\n' '  ')"
		check "rpmsd runs as uid $uid, not rpmsd's" [ "$uid" = "$(id -u rpmsd 2>/dev/null)" ]
		fifo=0
		for t in /proc/"$pid"/task/*; do
			# after "(comm) ": field 41 (policy) and 40 (rt_priority)
			pol=$(sed 's/.*) //' "$t/stat" | awk '{ print $39 }')
			prio=$(sed 's/.*) //' "$t/stat" | awk '{ print $38 }')
			say "  thread $(cat "$t/comm"): policy $pol priority $prio"
			[ "$pol" = 1 ] && fifo=$((fifo + 1))
		done
		check "$fifo SCHED_FIFO threads, not 2 or more" [ "$fifo" -ge 2 ]
	fi
	systemctl show rpmsd.service | grep -i '^watchdog' | sed 's/^/  show | /'
	# ExecReload= (SIGHUP): rereads the file, changes nothing here.
	out=$(systemctl reload rpmsd.service 2>&1)
	rc=$?
	[ -z "$out" ] || echo "$out" | sed 's/^/  | /'
	check "systemctl reload rpmsd: exit status $rc" [ "$rc" = 0 ]
	sleep 0.5
	check "not active/running after reload: $(prop ActiveState)/$(prop SubState)" is_active
	check "the main PID changed on reload" [ "$(prop MainPID)" = "$pid" ]
	arm
}

# t_hang SIGNAL THREAD: a thread hangs mid-train; the coil is disarmed
# before systemd's watchdog kills the service, and stays so through the
# restart.
t_hang() {
	sig=$1
	thread=$2
	is_active || { fail "rpmsd is not running"; return; }
	is_armed || arm || return
	pid0=$(prop MainPID)
	n0=$(prop NRestarts)
	ready0=$(prop ActiveEnterTimestampMonotonic)
	faults0=$(grep -c '"state":"fault"' "$D/events.jsonl")
	t_stall=$(now_ns)
	systemctl kill -s "$sig" --kill-whom=main rpmsd.service ||
		{ fail "systemctl kill -s $sig --kill-whom=main failed"; return; }
	wait_until 5 is_disarmed || fail "ENABLE still active 5 s after the $thread thread hung"
	# The last WATCHDOG=1 the old process sent, while it lives.
	wd_last=0
	restarted() {
		p=$(prop MainPID)
		if [ "$p" = "$pid0" ]; then
			# systemd clears it when it kills: keep the last one seen
			w=$(prop WatchdogTimestampMonotonic)
			[ "${w:-0}" -gt "$wd_last" ] && wd_last=$w
			return 1
		fi
		[ "$(prop NRestarts)" -gt "$n0" ] && is_active
	}
	wait_until 40 restarted || fail "not restarted and READY within 40 s: $(prop ActiveState)/$(prop SubState)"
	# Nothing arms the new instance: ENABLE must stay low after it is READY.
	sleep 1
	show_service
	pid1=$(prop MainPID)
	exec1=$(prop ExecMainStartTimestampMonotonic)
	ready1=$(prop ActiveEnterTimestampMonotonic)
	t_end=$(now_ns)
	drop=$(edges ENABLE_FALL fall "$t_stall" | head -n 1)
	t_us=$((t_stall / 1000))
	kill_us=$(journal_us "Watchdog timeout" "$t_us")
	abrt_us=$(journal_us "with signal SIGABRT" "$t_us")
	hung_us=$(journal_us "the $thread thread has shown no progress" "$t_us")
	say "stall ($sig) at $(ms "$t_us" 1000000) s; main PID $pid0 -> $pid1, NRestarts $n0 -> $(prop NRestarts)"
	journalctl -b -u rpmsd.service -o short-monotonic --no-pager |
		awk -F'[][]' -v t="$(ms "$t_us" 1000000)" '$2 + 0 >= t - 0.5' | sed 's/^/  | /'
	check "ENABLE did not drop after the hang" [ -n "$drop" ]
	[ -n "$drop" ] || drop=$t_end
	drop_ms=$(ms $((drop - t_stall)) 1000000)
	check "ENABLE dropped $drop_ms ms after the hang, more than $DROP_MS ms" \
		[ $((drop - t_stall)) -le $((DROP_MS * 1000000)) ]
	check "systemd did not log a watchdog timeout" [ -n "$kill_us" ]
	[ -n "$kill_us" ] || kill_us=$((t_end / 1000))
	check "ENABLE dropped after the watchdog kill" [ $((drop / 1000)) -lt "$kill_us" ]
	check "the watchdog did not kill with SIGABRT" [ -n "$abrt_us" ]
	check "the supervisor did not log the $thread thread hung" [ -n "$hung_us" ]
	[ -n "$hung_us" ] || hung_us=$kill_us
	check "the supervisor's fault came after the watchdog kill" [ "$hung_us" -lt "$kill_us" ]
	check "no new fault published on rpms.state" \
		[ "$(grep -c '"state":"fault"' "$D/events.jsonl")" -gt "$faults0" ]
	check "not restarted exactly once: NRestarts $n0 -> $(prop NRestarts)" [ "$(prop NRestarts)" = $((n0 + 1)) ]
	check "the main PID did not change" [ "$pid1" != "$pid0" ]
	check "ENABLE rose again after the hang (coil not disarmed throughout)" \
		[ "$(n_edges ENABLE_RISE rise "$drop")" = 0 ]
	check "TRIG rose after ENABLE dropped" [ "$(n_edges TRIG_RISE rise "$drop")" = 0 ]
	check "ENABLE $(level 1) on the chip after the restart" is_disarmed
	wd_ms="?"
	[ "${wd_last:-0}" -gt 0 ] && wd_ms=$(ms $((wd_last - t_us)) 1000)
	say "hang -> ENABLE drop $drop_ms ms; supervisor's fault $(ms $((hung_us - t_us)) 1000) ms; last WATCHDOG=1 $wd_ms ms; watchdog kill $(ms $((kill_us - t_us)) 1000) ms; new exec $(ms $((exec1 - t_us)) 1000) ms; new READY $(ms $((ready1 - t_us)) 1000) ms (previous READY $(ms "$ready0" 1000000) s)"
	metric "$thread hang ($sig): -> ENABLE drop $drop_ms ms, -> supervisor's fault $(ms $((hung_us - t_us)) 1000) ms, -> last WATCHDOG=1 $wd_ms ms, -> watchdog kill $(ms $((kill_us - t_us)) 1000) ms, -> new READY $(ms $((ready1 - t_us)) 1000) ms"
}

t_watchdog() {
	t_hang SIGUSR2 acquire
}

t_stall_stim() {
	t_hang SIGUSR1 stim
}

t_stop() {
	is_active || { fail "rpmsd is not running"; return; }
	arm || return
	t_stop=$(now_ns)
	out=$(systemctl stop rpmsd.service 2>&1)
	rc=$?
	t1=$(now_ns)
	[ -z "$out" ] || echo "$out" | sed 's/^/  | /'
	sleep 0.5
	show_service
	check "systemctl stop rpmsd: exit status $rc" [ "$rc" = 0 ]
	check "$(prop ActiveState) after stop, not inactive" [ "$(prop ActiveState)" = inactive ]
	check "Result $(prop Result), not success" [ "$(prop Result)" = success ]
	check "exit status $(prop ExecMainStatus), not 0" [ "$(prop ExecMainStatus)" = 0 ]
	check "TRIG $(level 0) ENABLE $(level 1) on the chip" [ "$(level 0)$(level 1)" = 00 ]
	check "TRIG or ENABLE not inactive in the monitor" rig-util final "$D/mon.log"
	drop=$(edges ENABLE_FALL fall "$t_stop" | head -n 1)
	check "ENABLE did not drop after systemctl stop" [ -n "$drop" ]
	if [ -n "$drop" ]; then
		check "TRIG rose after ENABLE dropped" [ "$(n_edges TRIG_RISE rise "$drop")" = 0 ]
		say "systemctl stop -> ENABLE drop $(ms $((drop - t_stop)) 1000000) ms; systemctl stop took $(ms $((t1 - t_stop)) 1000000) ms"
		metric "stop mid-train: -> ENABLE drop $(ms $((drop - t_stop)) 1000000) ms, systemctl stop returned after $(ms $((t1 - t_stop)) 1000000) ms"
	fi
	journalctl -b -u rpmsd.service -o short-monotonic --no-pager |
		awk -F'[][]' -v t="$(ms $((t_stop / 1000)) 1000000)" '$2 + 0 >= t - 0.2' | sed 's/^/  | /'
}

# ---- driver ----------------------------------------------------------------

mkdir -p "$D"
: > "$D/mon.log"
tests=$(sed -n 's/.*rig\.tests=\([^ ]*\).*/\1/p' /proc/cmdline)
if [ -z "$tests" ] || [ "$tests" = all ]; then
	tests=$ALL
fi
tests=$(echo "$tests" | tr , ' ')
echo "RIG: plan $tests"
say "tests start at uptime $(uptime_s) s"
CHIP="" SIM=""
if [ -f "$D/env" ]; then
	. "$D/env"
fi
for name in $tests; do
	echo "rig: ---- $name ($(uptime_s) s)"
	failures=0
	first_failure=""
	case " $ALL " in
	*" $name "*) "t_$(echo "$name" | tr - _)" ;;
	*) fail "unknown test $name" ;;
	esac
	if [ "$failures" = 0 ]; then
		echo "RIG: ok $name"
	else
		echo "RIG: FAIL $name: $first_failure"
	fi
done
say "the whole rpmsd journal:"
journalctl -b -u rpmsd.service -o short-monotonic --no-pager | sed 's/^/  | /'
say "warnings and errors of this boot (journal, priority warning and above):"
journalctl -b -p warning -o short-monotonic --no-pager | grep -v ' rpmsd\[' | sed 's/^/  | /'
say "$(wc -l < "$D/events.jsonl" 2>/dev/null || echo 0) events, $(wc -l < "$D/mon.log") monitor lines"
echo "RIG: done $(uptime_s) s"
