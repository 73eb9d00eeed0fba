#!/bin/sh
# SPDX-License-Identifier: MIT
# The VM rig's tests, run by /init inside the guest (busybox sh, root, the
# PREEMPT_RT kernel). docs/rig.md describes the wiring and every test.
#
#   sh /rig/tests.sh main       set the rig up, run the tests named on the
#                               kernel command line (rig.tests=a,b; default
#                               all) one by one, print "RIG: ok|FAIL|skip NAME"
#   sh /rig/tests.sh run NAME   one test, once the rig is set up: exit 0
#                               passed, 1 failed, 77 skipped
#
# The wiring, one gpio-sim chip (bank of 9 lines); "wired" is gpio-sim's
# test loopback (kmod/rig_loopback.h): the input follows the output.
#   0 TRIG        rpmsd output: the stimulator's trigger
#   1 ENABLE      rpmsd output: the stimulator's enable
#   2 STOP        rpmsd input: the e-stop, driven by the test through `pull`
#   3 READY       rpmsd input: pulled up (the stimulator is ready)
#   4 CONFIRM     rpmsd input: wired to TRIG (every pulse is confirmed)
#   5 TRIG_RISE   rig-mon input, rising edges: wired to TRIG
#   6 TRIG_FALL   rig-mon input, falling edges: wired to TRIG
#   7 ENABLE_RISE rig-mon input, rising edges: wired to ENABLE
#   8 ENABLE_FALL rig-mon input, falling edges: wired to ENABLE
# Serial (when the host runs tests/rig/stim_bridge.py: rig.stim=1 on the
# kernel command line): ttyS1 is the stimulator's serial cable to a device
# emulator on the host (tests/emu), ttyS2 the tests' control line to it.
# EMG: the rpms_emg driver (emg0, 2 x s16 at 1 kHz) on the hrtimer trigger
# trig0, playing 6 s of data/emg/emg_1.txt (a burst 3.5 s in) in a loop.
set -eu
export PATH=/usr/bin:/usr/sbin:/bin:/sbin

ALL="pulses estop stall sigterm sigkill timestamps cyclictest clockstep magstim magventure"
CFS=/sys/kernel/config
SIMCFG=$CFS/gpio-sim/rig
EMGCFG=$CFS/iio/devices/rpms_emg/emg0
EMGTSCFG=$CFS/iio/devices/rpms_emg/emgts
TRIGCFG=$CFS/iio/triggers/hrtimer/trig0
RATE=1000
BLOCK=8
LOOPBACK=0:4,0:5,0:6,1:7,1:8
ENV=/tmp/rig.env

# Tolerances of the timing checks. Under TCG (QEMU's emulation, no KVM)
# guest time is not real time: these bound the emulator's hiccups, they
# are not latency figures (docs/rig.md). Pulses are 5 ms wide; the one the
# monitor sees may be up to SHORT_US shorter (its two inputs' interrupt
# threads are late by different amounts) or LONG_US longer (the plugin's
# thread wakes late to end it) than published.
WIDTH_US=5000
SHORT_US=${SHORT_US:-4000}
LONG_US=${LONG_US:-50000}
SLACK_US=${SLACK_US:-250000}		# monitored rise vs the event's time
# The stall disarm is due acquisition_timeout_ms after the last block, which
# came before the trigger stopped by up to a block period (8 ms nominal,
# tens of ms under TCG), and may be late by the stim thread's wake-up.
STALL_EARLY_MS=${STALL_EARLY_MS:-100}
STALL_LATE_MS=${STALL_LATE_MS:-200}
# clockstep: each interval between two pulses of a train may differ from
# the period by this much; default half the period, so that a pulse missing
# or extra would show too. Under TCG on a loaded host a pulse came up to
# 54 ms late (the widths' LONG_US, 50 ms, was too tight); a schedule that
# followed CLOCK_REALTIME would be off by the step, an hour or more.
PERIOD_TOL_US=${PERIOD_TOL_US:-}

say() {
	echo "rig: $*"
}

# ---- set-up -----------------------------------------------------------

setup() {
	while read -r ko; do
		case $ko in
		*/gpio-sim.ko) insmod "$ko" loopback=$LOOPBACK ;;
		*) insmod "$ko" ;;
		esac
	done < /rig/modules.list
	grep -q " $CFS " /proc/mounts || mount -t configfs none $CFS

	mkdir $SIMCFG $SIMCFG/bank0
	echo 9 > $SIMCFG/bank0/num_lines
	i=0
	for n in TRIG ENABLE STOP READY CONFIRM TRIG_RISE TRIG_FALL ENABLE_RISE ENABLE_FALL; do
		mkdir $SIMCFG/bank0/line$i
		echo $n > $SIMCFG/bank0/line$i/name
		i=$((i + 1))
	done
	echo 1 > $SIMCFG/live
	chip=$(cat $SIMCFG/bank0/chip_name)
	sim=/sys/devices/platform/$(cat $SIMCFG/dev_name)/$chip
	echo pull-up > "$sim/sim_gpio3/pull"

	# emg0 for the tests; under TCG without the timestamp channel, whose
	# late ticks rpmsd would rightly count as gaps (see t_timestamps).
	mkdir $TRIGCFG
	accel=$(sed -n 's/.*rig\.accel=\([^ ]*\).*/\1/p' /proc/cmdline)
	if [ "$accel" = tcg ]; then
		echo 0 > /sys/module/rpms_emg/parameters/timestamp
	fi
	mkdir $EMGCFG
	echo 1 > /sys/module/rpms_emg/parameters/timestamp
	mkdir $EMGTSCFG
	cat /rig/wave.s16 > $EMGCFG/waveform
	cat /rig/wave.s16 > $EMGTSCFG/waveform
	trigdir=""
	for d in /sys/bus/iio/devices/trigger*; do
		[ "$(cat "$d/name")" = trig0 ] && trigdir=$d
	done
	[ -n "$trigdir" ] || { echo "no IIO trigger trig0"; return 1; }
	echo $RATE > "$trigdir/sampling_frequency"
	printf 'CHIP=%s\nSIM=%s\nTRIGDIR=%s\n' "$chip" "$sim" "$trigdir" > $ENV

	say "kernel $(uname -r) $(uname -v)"
	say "gpio-sim $chip ($sim), loopback $LOOPBACK"
	gpioinfo "$chip"
	for d in /sys/bus/iio/devices/iio:device*; do
		set -- "$d"/scan_elements/*_en
		say "IIO $(basename "$d"): $(cat "$d/name"), $# scan elements"
	done
	say "waveform: $(cat $EMGCFG/frames) frames; trigger $(cat "$trigdir/name") at $(cat "$trigdir/sampling_frequency") Hz"
}

# ---- helpers for one test ----------------------------------------------

failures=0
first_failure=""

fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
	[ -n "$first_failure" ] || first_failure=$*
}

check() {
	# check DESCRIPTION COMMAND...: run it, fail with DESCRIPTION if it fails
	what=$1
	shift
	if ! "$@"; then
		fail "$what"
	fi
}

# wait_until SECONDS COMMAND...: poll every 0.1 s, by the guest's clock
# (a count of sleeps would stretch under TCG, where each poll is slow).
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

# grep -c prints nothing for a file that does not exist yet
count() {
	n=$(grep -c "$1" "$2" 2>/dev/null || true)
	echo "${n:-0}"
}

rises() {
	count "TRIG_RISE rise" "$D/mon.log"
}

has_rises() {
	[ "$(rises)" -ge "$1" ]
}

mon_ready() {
	[ "$(count ' init ' "$D/mon.log")" -ge 4 ]
}

# Armed, or rpmsd is gone (no point waiting).
armed_or_gone() {
	is_armed || ! kill -0 "$(cat "$D/rpmsd.pid")" 2>/dev/null
}

# The configuration: variables with the test's protocol, the rest fixed.
write_conf() {
	cat > "$D/rpmsd.conf" <<EOF
[daemon]
arm_on_start = true
state_dir = $D/state
plugin_dir = /usr/lib/rpmsd/plugins

[source]
type = iio
uri = local:
device = ${DEVICE:-emg0}
channels = voltage0,voltage1
trigger = trig0
rate_hz = $RATE
block_frames = $BLOCK

[detect]
calibration_s = 2
k_on = 6

[stim]
plugin = ${PLUGIN:-gpio}
mode = ${MODE:-closed_loop}
protocol = train
train_pulses = ${PULSES:-5}
train_frequency_hz = ${FREQ:-20}
open_loop_pulses = ${PULSES:-5}
intensity_pct = 30
pulse_width_us = $WIDTH_US
refractory_ms = 500

[safety]
motor_threshold_pct = 40
acquisition_timeout_ms = ${ACQ_MS:-1000}

[publish]
endpoint = ipc://$D/pub

[coil.${PLUGIN:-gpio}]
${COIL_KEYS:-}
chip = $CHIP
trigger_line = TRIG
enable_line = ENABLE
estop_line = STOP
estop_bias = as-is
ready_line = READY
ready_bias = as-is
confirm_line = CONFIRM
confirm_bias = as-is
confirm_timeout_us = 100000
estop_log = $D/estop.csv
EOF
}

# Monitor, subscriber, then rpmsd.
launch_rpmsd() {
	mkdir -p "$D/state"
	write_conf
	rig-mon "$CHIP" "$D/mon.log" TRIG_RISE:rising TRIG_FALL:falling \
		ENABLE_RISE:rising ENABLE_FALL:falling 2> "$D/mon.err" &
	echo $! > "$D/mon.pid"
	wait_until 10 mon_ready || { fail "rig-mon did not start: $(cat "$D/mon.err")"; return 1; }
	# shellcheck disable=SC2086 # TAIL_TOPICS: words
	rpmsctl tail --json ${TAIL_TOPICS:-} -e "ipc://$D/pub" > "$D/events.jsonl" 2> "$D/tail.err" &
	echo $! > "$D/tail.pid"
	rpmsd --config "$D/rpmsd.conf" --wait-subscriber=30 > "$D/rpmsd.out" 2> "$D/rpmsd.err" &
	echo $! > "$D/rpmsd.pid"
}

# launch_rpmsd; returns once the coil is armed.
start_rpmsd() {
	launch_rpmsd || return 1
	wait_until 40 armed_or_gone || true
	if ! is_armed; then
		fail "rpmsd did not arm the coil"
		cat "$D/rpmsd.err"
		return 1
	fi
	say "armed at uptime $(cut -d' ' -f1 /proc/uptime) s"
}

# stop_rpmsd SIGNAL: signal rpmsd, wait for it (RC), then stop the others.
stop_rpmsd() {
	pid=$(cat "$D/rpmsd.pid")
	kill "-$1" "$pid" 2>/dev/null || true
	RC=0
	wait "$pid" || RC=$?
	# Let the last events reach the subscriber, then end it and the monitor.
	sleep 0.5
	for p in tail mon; do
		kill -TERM "$(cat "$D/$p.pid")" 2>/dev/null || true
		wait "$(cat "$D/$p.pid")" 2>/dev/null || true
	done
	rm -f "$D"/*.pid
	say "rpmsd exit status $RC after SIG$1"
}

# A killed rpmsd leaves the IIO buffer enabled (libiio enabled it through
# sysfs; closing the chardev does not disable it). rpmsd switches such a
# buffer off at start (source_iio.c); iio_left_enabled checks the kernel
# still behaves that way, iio_release cleans up between tests.
iio_left_enabled() {
	for d in /sys/bus/iio/devices/iio:device*; do
		[ "$(cat "$d/name")" = "${DEVICE:-emg0}" ] || continue
		[ "$(cat "$d/buffer/enable")" = 1 ] && return 0
	done
	return 1
}

iio_release() {
	for d in /sys/bus/iio/devices/iio:device*; do
		[ "$(cat "$d/name")" = "${DEVICE:-emg0}" ] || continue
		if [ "$(cat "$d/buffer/enable")" = 1 ]; then
			say "note: the killed rpmsd left $(basename "$d") streaming (buffer/enable 1): disabling it"
			echo 0 > "$d/buffer/enable"
		fi
	done
}

show_run() {
	say "rpmsd stderr:"
	sed 's/^/  | /' "$D/rpmsd.err"
	say "rpmsd summary:"
	sed -n '/session summary/,$p' "$D/rpmsd.out" | sed 's/^/  | /'
	say "$(wc -l < "$D/events.jsonl") events, $(wc -l < "$D/mon.log") monitor lines"
}

# ---- the tests ----------------------------------------------------------

# Closed loop on real EMG through the kernel's IIO buffer: the burst starts
# one train; what the monitor saw on the trigger wire is what rpmsd published.
t_pulses() {
	MODE=closed_loop PULSES=5 FREQ=20
	start_rpmsd || return 0
	wait_until 30 has_rises 5 || fail "fewer than 5 trigger pulses within 30 s ($(rises))"
	sleep 0.5
	stop_rpmsd TERM
	show_run
	check "rpmsd exit status $RC, not 0" [ "$RC" = 0 ]
	check "no burst onset published" grep -q '"onset"' "$D/events.jsonl"
	check "monitor pulses differ from rpms.stim events" \
		rig-util pulses "$D/events.jsonl" "$D/mon.log" "$SHORT_US" "$LONG_US" "$SLACK_US" 5
	check "lines not inactive at the end" rig-util final "$D/mon.log"
}

# E-stop through gpio-sim's pull, mid-train; then more presses while
# disarmed, for the plugin's latency record.
t_estop() {
	MODE=open_loop PULSES=40 FREQ=10
	start_rpmsd || return 0
	wait_until 20 has_rises 3 || fail "train did not start"
	say "pressing STOP after $(rises) pulses"
	echo pull-up > "$SIM/sim_gpio2/pull"
	wait_until 2 is_disarmed || fail "ENABLE still active 2 s after the e-stop"
	sleep 1
	n=0
	while [ $n -lt 10 ]; do
		echo pull-down > "$SIM/sim_gpio2/pull"
		sleep 0.1
		echo pull-up > "$SIM/sim_gpio2/pull"
		sleep 0.1
		n=$((n + 1))
	done
	echo pull-down > "$SIM/sim_gpio2/pull"
	sleep 0.3
	stop_rpmsd TERM
	show_run
	check "rpmsd exit status $RC" [ "$RC" = 0 -o "$RC" = 3 ]
	check "e-stop" rig-util estop "$D/events.jsonl" "$D/mon.log" "$SHORT_US" "$LONG_US" "$SLACK_US"
	say "estop_log ($D/estop.csv):"
	sed 's/^/  | /' "$D/estop.csv" || fail "no estop_log"
	# The plugin's own figure; RIG: metric lines reach the host's summary.
	line=$(grep "e-stop: " "$D/rpmsd.err" | tail -n 1)
	echo "RIG: metric gpio e-stop latency (TCG, not a rig figure): ${line#*e-stop: }"
	awk -F, 'NR > 1 && $4 == 1 { print "RIG: metric gpio e-stop latency while armed (TCG): " $3 " us" }' \
		"$D/estop.csv"
	check "estop_log has fewer than 11 samples" \
		[ "$(awk 'END { print NR - 1 }' "$D/estop.csv")" -ge 11 ]
}

# The acquisition stalls (the hrtimer trigger slowed to 1 mHz, i.e. stopped):
# the watchdog disarms within safety.acquisition_timeout_ms.
t_stall() {
	MODE=open_loop PULSES=40 FREQ=10 ACQ_MS=300
	start_rpmsd || return 0
	wait_until 20 has_rises 3 || fail "train did not start"
	t0=$(rig-util now)
	echo 0.001 > "$TRIGDIR/sampling_frequency"
	wait_until 5 is_disarmed || fail "ENABLE still active 5 s after the trigger stopped"
	sleep 0.3
	stop_rpmsd TERM
	echo $RATE > "$TRIGDIR/sampling_frequency"
	show_run
	check "rpmsd exit status $RC, not 3 (a fault)" [ "$RC" = 3 ]
	check "stall" rig-util stall "$D/events.jsonl" "$D/mon.log" "$t0" "$ACQ_MS" \
		"$STALL_EARLY_MS" "$STALL_LATE_MS"
}

t_sigterm() {
	MODE=open_loop PULSES=40 FREQ=10
	start_rpmsd || return 0
	wait_until 20 has_rises 3 || fail "train did not start"
	stop_rpmsd TERM
	show_run
	check "rpmsd exit status $RC, not 0" [ "$RC" = 0 ]
	check "TRIG or ENABLE active after SIGTERM" rig-util final "$D/mon.log"
	check "TRIG $(level 0) ENABLE $(level 1) on the chip" [ "$(level 0)$(level 1)" = 00 ]
	check "monitor pulses differ from rpms.stim events" \
		rig-util pulses "$D/events.jsonl" "$D/mon.log" "$SHORT_US" "$LONG_US" "$SLACK_US" 3
}

# SIGKILL: rpmsd cannot drop anything; the kernel releases the lines and
# gpio-sim sets a released line to its pull. Pulled down (the rig's
# wiring) both end inactive; pulled up, ENABLE stays active: the hazard
# docs/rig.md and docs/plugins-gpio.md describe for real controllers.
t_sigkill() {
	MODE=open_loop PULSES=40 FREQ=10
	start_rpmsd || return 0
	wait_until 20 has_rises 3 || fail "train did not start"
	stop_rpmsd KILL
	check "rpmsd exit status $RC, not 137" [ "$RC" = 137 ]
	check "TRIG or ENABLE active after SIGKILL (pull-down wiring)" rig-util final "$D/mon.log"
	check "TRIG $(level 0) ENABLE $(level 1) on the chip" [ "$(level 0)$(level 1)" = 00 ]
	# The killed rpmsd left the IIO buffer enabled; the next start below
	# must switch it off itself (it used to fail on source.trigger, EBUSY).
	check "the killed rpmsd did not leave the IIO buffer enabled (kernel semantics changed?)" \
		iio_left_enabled

	say "the same with ENABLE pulled up (unsafe wiring)"
	D=$D/pullup
	mkdir -p "$D"
	start_rpmsd || return 0
	echo pull-up > "$SIM/sim_gpio1/pull"
	wait_until 20 has_rises 2 || fail "train did not start"
	stop_rpmsd KILL
	check "ENABLE not left active with an unsafe pull-up (gpio-sim semantics changed?)" \
		rig-util final "$D/mon.log" 0 1
	iio_release
	echo pull-down > "$SIM/sim_gpio1/pull"
	echo pull-down > "$SIM/sim_gpio7/pull"
	echo pull-down > "$SIM/sim_gpio8/pull"
	check "ENABLE still active after restoring its pull-down" [ "$(level 1)" = 0 ]
}

# The driver's timestamp channel through libiio into rpmsd (emgts). Under
# TCG the hrtimer trigger fires late and skips ticks, so rpmsd reports gaps:
# counted and printed here, not judged.
t_timestamps() {
	DEVICE=emgts MODE=closed_loop
	start_rpmsd || return 0
	sleep 3
	stop_rpmsd TERM
	show_run
	check "rpmsd exit status $RC, not 0" [ "$RC" = 0 ]
	check "rpmsd did not use the hardware timestamps" grep -q '"time_source":"hardware"' "$D/events.jsonl"
	check "no samples processed" grep -q 'processed: *[1-9]' "$D/rpmsd.out"
	echo "RIG: metric timestamps: $(grep 'gaps:' "$D/rpmsd.out" | sed 's/^ *//') (TCG: late hrtimer ticks)"
}

# cyclictest on the RT kernel: functional only under TCG.
t_cyclictest() {
	check "not a PREEMPT_RT kernel: $(uname -v)" sh -c 'uname -v | grep -q PREEMPT_RT'
	check "/sys/kernel/realtime is not 1" [ "$(cat /sys/kernel/realtime 2>/dev/null)" = 1 ]
	rc=0
	# Two threads, one a CPU, same 1 ms interval; cyclictest stops them
	# all when the first has made its 1000 loops.
	cyclictest -m -t 2 -a -d 0 -p 80 -i 1000 -l 1000 -q > "$D/cyclictest.out" 2>&1 || rc=$?
	sed 's/^/  | /' "$D/cyclictest.out"
	check "cyclictest exit status $rc" [ "$rc" = 0 ]
	check "cyclictest did not report 2 threads" [ "$(count 'C:' "$D/cyclictest.out")" = 2 ]
	check "no cyclictest thread made its 1000 loops" grep -q 'C: *1000 ' "$D/cyclictest.out"
	max=$(awk '/Max:/ { print $NF }' "$D/cyclictest.out" | sort -n | tail -n 1)
	echo "RIG: metric cyclictest max ${max:-?} us (TCG emulation: meaningless, functional check only)"
}

# CLOCK_REALTIME stepped under a paced open-loop train (45 pulses at 5 Hz,
# 9 s): set forwards to 23:59:58 (+12 h), across midnight by itself, back
# 2 h (across midnight), forwards 1 h. The schedule runs on CLOCK_MONOTONIC:
# no pulse may move, go missing or be refused. The pulse ledger's day is
# the wall clock's: at midnight a new day starts from 0; a step back never
# takes the ledger back a day or lowers its count (session_ledger_tick
# only moves to a later day, dose_record refuses an earlier one), so the
# pulses after it go on counting on the later day. A restart while the
# clock is still behind finds a ledger dated after today and refuses to
# arm, leaving it as it was. The guest's clock is put back (its value at
# the start plus the uptime since) for the tests after.
CS_DAY=2030-06-14
CS_NEXT=2030-06-15

ledger() {
	sed -n "s/^$1 = //p" "$D/state/dose" 2> /dev/null
}

ledger_on() {
	[ "$(ledger day)" = "$1" ]
}

wall_day_is() {
	[ "$(date +%F)" = "$1" ]
}

stim_events_on() {
	# rpms.stim events whose t_wall matches the regex $1 (after "T" too)
	grep '"topic":"rpms.stim"' "$D/events.jsonl" | grep -c -E "\"t_wall\":\"$1" || true
}

t_clockstep() {
	wall0=$(date +%s)
	up0=$(cut -d. -f1 /proc/uptime)
	clockstep_run || true
	date -s "@$((wall0 + $(cut -d. -f1 /proc/uptime) - up0))" > /dev/null
	say "wall clock put back: $(date '+%F %T')"
}

clockstep_run() {
	MODE=open_loop PULSES=45 FREQ=5
	# heartbeats too: the events must keep coming across the steps
	TAIL_TOPICS="-t rpms. -t rpms.heartbeat"
	period_us=$((1000000 / FREQ))
	tol_us=${PERIOD_TOL_US:-$((period_us / 2))}
	date -s "$CS_DAY 12:00:00" > /dev/null
	start_rpmsd || return 0
	check "the ledger is on $(ledger day) at start, not $CS_DAY" ledger_on $CS_DAY
	wait_until 20 has_rises 3 || fail "train did not start"

	n=$(rises)
	say "step forwards to $CS_DAY 23:59:58 from $(date '+%F %T') after $n pulses (ledger: $(ledger pulses) on $(ledger day))"
	date -s "$CS_DAY 23:59:58" > /dev/null
	wait_until 10 wall_day_is $CS_NEXT || fail "the wall clock did not reach $CS_NEXT"
	n_mid=$(rises)
	wait_until 5 ledger_on $CS_NEXT || fail "the ledger did not start $CS_NEXT within 5 s of midnight"
	n_new=$(rises)
	say "midnight after $n_mid pulses; the ledger on $(ledger day) ($(ledger pulses) reserved) after $n_new"
	wait_until 5 has_rises $((n_new + 3)) || fail "no pulses after midnight"

	before=$(ledger pulses)
	n_back=$(rises)
	say "step back 2 h after $n_back pulses (ledger: $before on $(ledger day)): $(rig-util step -7200)"
	wait_until 5 has_rises $((n_back + 3)) || fail "no pulses after the step back"
	after=$(ledger pulses)
	say "after the step back: ledger $after on $(ledger day), wall clock $(date '+%F %T')"
	check "the ledger went back to $(ledger day) with the clock" ledger_on $CS_NEXT
	check "the ledger's count went down across the step back ($before -> $after)" \
		[ "${after:-0}" -ge "${before:-0}" ]

	n_fwd=$(rises)
	say "step forwards 1 h after $n_fwd pulses: $(rig-util step 3600)"
	check "fewer than 3 pulses left after the last step: the train ended first" \
		[ "$n_fwd" -le $((PULSES - 3)) ]
	wait_until 30 has_rises "$PULSES" || fail "the train did not end: $(rises) of $PULSES pulses"
	sleep 0.5
	stop_rpmsd TERM
	show_run
	check "rpmsd exit status $RC, not 0" [ "$RC" = 0 ]
	check "monitor pulses differ from rpms.stim events" \
		rig-util pulses "$D/events.jsonl" "$D/mon.log" "$SHORT_US" "$LONG_US" "$SLACK_US" "$PULSES"
	rig-util clockstep "$D/events.jsonl" "$D/mon.log" "$period_us" "$tol_us" \
		> "$D/clockstep.out" || fail "the pulse schedule moved with CLOCK_REALTIME (or events stopped)"
	cat "$D/clockstep.out"
	sed -n 's/^clockstep-metric: /RIG: metric clockstep: /p' "$D/clockstep.out"
	check "lines not inactive at the end" rig-util final "$D/mon.log"

	# The ledger after a clean stop: the exact count of the new day, which
	# holds every pulse since midnight (but for those the main loop's tick,
	# 200 ms, had not yet seen) and none from before it.
	say "ledger at the end:"
	sed 's/^/  | /' "$D/state/dose"
	pre=$(stim_events_on "${CS_DAY}T(12|23:59)")
	post=$((PULSES - pre))
	got=$(ledger pulses)
	echo "RIG: metric clockstep ledger: $pre pulses on $CS_DAY before midnight, $post after it (wall clock back on $CS_DAY for $(stim_events_on "${CS_DAY}T2[23]:00")); the ledger counts ${got:-?} on $(ledger day) (exact $(ledger exact))"
	check "the ledger ends on $(ledger day), not $CS_NEXT" ledger_on $CS_NEXT
	check "the ledger is not exact after a clean stop" [ "$(ledger exact)" = true ]
	check "the ledger counts ${got:-?} on $CS_NEXT, more than the $post pulses after midnight" \
		[ "${got:-999999}" -le "$post" ]
	check "the ledger counts ${got:-?} on $CS_NEXT, fewer than the $post pulses after midnight less one tick (2)" \
		[ "${got:-0}" -ge $((post - 2)) ]
	check "the summary's pulses today differ from the ledger" \
		grep -q "pulses today: *$got " "$D/rpmsd.out"

	# Restart while the wall clock is still on $CS_DAY: future-dated ledger.
	say "restart on $(date '+%F %T') with the ledger dated $(ledger day)"
	old=$D
	D=$D/restart
	mkdir -p "$D"
	cp -a "$old/state" "$D/state"
	sum=$(md5sum < "$D/state/dose")
	launch_rpmsd || return 0
	wait_until 20 grep -q '"arm refused: the pulse ledger' "$D/events.jsonl" ||
		fail "no \"arm refused\" fault published within 20 s"
	sleep 0.5
	stop_rpmsd TERM
	show_run
	check "rpmsd exit status $RC, not 3 (the ledger unusable)" [ "$RC" = 3 ]
	check "rpmsd did not refuse the future-dated ledger" \
		grep -q "dated $CS_NEXT, after today $CS_DAY" "$D/rpmsd.err"
	check "ENABLE rose with a future-dated ledger" \
		[ "$(count 'ENABLE_RISE rise' "$D/mon.log")" = 0 ]
	check "a pulse fired with a future-dated ledger" [ "$(rises)" = 0 ]
	check "the refused ledger was changed" [ "$(md5sum < "$D/state/dose")" = "$sum" ]
	D=$old
}

# ---- the serial stimulators (magstim, magventure) ----------------------

# The device is an emulator on the host (tests/emu, through
# tests/rig/stim_bridge.py) on ttyS1; the test drives it over ttyS2, one
# command a line and one answer a line, at the moment it needs: the exchange
# is the synchronisation, no timed injection.
STIM_TTY=/dev/ttyS1
STIM_CTL=/dev/ttyS2

stim_open() {
	stty -F $STIM_CTL 115200 raw -echo
	exec 3<> $STIM_CTL
}

# emu COMMAND...: to the host's emulator; its answer in $EMU_ANS; 0 on "ok".
emu() {
	printf '%s\n' "$*" >&3
	EMU_ANS=""
	# shellcheck disable=SC3045 # busybox ash has read -t
	if ! read -r -t 30 EMU_ANS <&3; then
		say "emu $*: no answer from the host within 30 s"
		return 1
	fi
	say "emu $* -> $(echo "$EMU_ANS" | cut -c1-300)"
	case $EMU_ANS in
	ok*) return 0 ;;
	esac
	return 1
}

# emu_has PATTERN: the device's state now (JSON, sorted keys) matches.
emu_has() {
	emu state > /dev/null || return 1
	echo "$EMU_ANS" >> "$D/emu-states"
	echo "$EMU_ANS" | grep -q "$1"
}

# The device armed and ready (over the link, after rpmsd raised ENABLE);
# a state that is not ready taken after a pulse fired is a failure: the
# gate must hold every pulse until the device is ready.
dev_ready() {
	n=$(rises)
	emu_has "$STIM_READY" && return 0
	[ "$n" = 0 ] || fail "$n pulses fired before the device was armed and ready"
	return 1
}

published_fault() {
	grep '"topic":"rpms.state"' "$D/events.jsonl" | grep '"state":"fault"' | grep -q "$1"
}

# t_stimdev PLUGIN START_ARGS ARMED OUTPUT: closed loop with the stimulator set up and
# watched over ttyS1 and fired by TRIG; then the device goes silent.
t_stimdev() {
	if ! grep -q 'rig\.stim=1' /proc/cmdline; then
		echo "no stimulator emulator on the host (rig.sh: python3, tests/emu and the $1 plugin)"
		exit 77
	fi
	[ -e "/usr/lib/rpmsd/plugins/$1.so" ] || { echo "$1.so is not in the image"; exit 77; }
	stim_open
	# shellcheck disable=SC2086 # $2: the emulator's arguments, words
	emu start "$1" $2 || { fail "the host's $1 emulator did not start: $EMU_ANS"; return 0; }
	PLUGIN=$1 MODE=closed_loop PULSES=5 FREQ=20
	# reply_timeout_ms: under TCG the guest's UART, QEMU and the host's
	# bridge add tens of ms to a reply (the default 200 ms is for a cable).
	COIL_KEYS="tty = $STIM_TTY
fire = ttl
reply_timeout_ms = 1000"
	STIM_READY=$3
	start_rpmsd || { emu stop; return 0; }
	# ENABLE rose at rpmsd's arm; the plugin arms the device over the link
	# (Magstim: ready about 1 s later) and the gate holds pulses till then.
	wait_until 20 dev_ready || fail "the device was not armed and ready within 20 s of ENABLE"
	wait_until 30 has_rises 5 || fail "fewer than 5 trigger pulses within 30 s ($(rises))"
	n=$(rises)
	# The output rpmsd asked (30 %), applied by the device: the gate fires
	# only at the output the plugin confirmed by read-back.
	check "the device's output is not the 30 % asked" emu_has "$4"
	check "the device dropped out during the train" emu_has "$3"
	say "the device's states:"
	sed 's/^/  | /' "$D/emu-states"

	say "the device goes silent after $n pulses"
	t0=$(rig-util now)
	emu fault silent on || fail "the emulator refused: $EMU_ANS"
	if wait_until 20 is_disarmed; then
		t1=$(rig-util now)
		say "ENABLE dropped $(( (t1 - t0) / 1000000 )) ms after the fault (at most, by polling)"
	else
		fail "ENABLE still active 20 s after the device went silent"
	fi
	wait_until 10 published_fault "no reply" || fail "no fault naming \"no reply\" published"
	# Pulses may still be due (the burst detector): none may fire now.
	sleep 2
	stop_rpmsd TERM
	emu fault silent off || true
	emu stop || true
	show_run
	check "rpmsd exit status $RC, not 3 (a fault)" [ "$RC" = 3 ]
	grep '"state":"fault"' "$D/events.jsonl" | head -n 3
	check "the plugin did not log its set-up" grep -q "$1: $STIM_TTY at .* fired by the TTL trigger line" "$D/rpmsd.err"
	check "the plugin does not confirm the output" grep -q "confirms its output by read-back" "$D/rpmsd.err"
	check "pulse events not all at 30 %" \
		[ "$(grep '"topic":"rpms.stim"' "$D/events.jsonl" | grep -vc '"intensity_pct":30[,.}]')" = 0 ]
	check "device fault" rig-util devfault "$D/events.jsonl" "$D/mon.log" "$SHORT_US" "$LONG_US" \
		"$SLACK_US" 5 "no reply" $((1000000 / FREQ))
}

t_magstim() {
	# A Rapid2 (rTMS mode is the plugin's default; the emulator judges no
	# trigger here: TTL pulses reach rig-mon, not the host).
	# (sorted keys: armed ... ready ... remote)
	t_stimdev magstim "--model rapid2" '"armed": true, .*"ready": true, "remote": true' \
		'"power": 30,'
}

t_magventure() {
	t_stimdev magventure "--model r30" '"enabled": true' '"amp_a": 30,'
}

# ---- driver ----------------------------------------------------------------

run_one() {
	# CHIP, SIM and TRIGDIR, from setup
	# shellcheck source=/dev/null
	. $ENV
	D=/tmp/run-$1
	mkdir -p "$D"
	case " $ALL " in
	*" $1 "*) "t_$1" ;;
	*) echo "unknown test $1"; exit 77 ;;
	esac
	if [ "$failures" -gt 0 ]; then
		echo "first failure: $first_failure"
		exit 1
	fi
	exit 0
}

# Whatever a killed test left running must not hold the lines for the next.
cleanup_after() {
	for f in "/tmp/run-$1"/*.pid "/tmp/run-$1"/*/*.pid; do
		[ -f "$f" ] || continue
		kill -KILL "$(cat "$f")" 2>/dev/null || true
		rm -f "$f"
	done
}

main() {
	tests=$(sed -n 's/.*rig\.tests=\([^ ]*\).*/\1/p' /proc/cmdline)
	if [ -z "$tests" ] || [ "$tests" = all ]; then
		tests=$ALL
	fi
	tests=$(echo "$tests" | tr , ' ')
	echo "RIG: plan $tests"
	if ! setup > /tmp/setup.log 2>&1; then
		cat /tmp/setup.log
		for t in $tests; do
			echo "RIG: FAIL $t: rig set-up failed: $(tail -n 1 /tmp/setup.log)"
		done
		return 0
	fi
	cat /tmp/setup.log
	for t in $tests; do
		echo "rig: ---- $t ($(cut -d' ' -f1 /proc/uptime) s)"
		rc=0
		timeout -s KILL 150 sh /rig/tests.sh run "$t" > "/tmp/$t.log" 2>&1 || rc=$?
		cat "/tmp/$t.log"
		cleanup_after "$t"
		why=$(sed -n 's/^first failure: //p' "/tmp/$t.log")
		case $rc in
		0) echo "RIG: ok $t" ;;
		77) echo "RIG: skip $t: $(tail -n 1 "/tmp/$t.log")" ;;
		137) echo "RIG: FAIL $t: killed after 150 s" ;;
		*) echo "RIG: FAIL $t: ${why:-exit status $rc}" ;;
		esac
	done
}

case ${1:-} in
main) main ;;
run) run_one "$2" ;;
*) echo "usage: tests.sh main | run NAME" >&2; exit 2 ;;
esac
