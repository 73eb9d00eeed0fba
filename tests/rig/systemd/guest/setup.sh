#!/bin/sh
# SPDX-License-Identifier: MIT
# rig-setup.service in the systemd VM: the same hardware as the busybox
# rig's (tests/rig/guest/tests.sh, setup), made after systemd-modules-load
# loaded the modules (gpio-sim with its loopback option from modprobe.d):
#   gpio-sim, one bank of 9 lines: 0 TRIG, 1 ENABLE (rpmsd's outputs),
#   2 STOP, 3 READY (pulled up), 4 CONFIRM (wired to TRIG), 5/6 TRIG_RISE/
#   TRIG_FALL and 7/8 ENABLE_RISE/ENABLE_FALL (rig-mon's, wired to TRIG and
#   ENABLE); the hrtimer trigger trig0 at 1 kHz and the rpms_emg device emg0
#   (no timestamp channel under TCG) playing 6 s of data/emg/emg_1.txt.
# Writes CHIP, SIM and TRIGDIR to /run/rig/env for tests.sh.
set -eu
CFS=/sys/kernel/config
SIMCFG=$CFS/gpio-sim/rig
EMGCFG=$CFS/iio/devices/rpms_emg/emg0
TRIGCFG=$CFS/iio/triggers/hrtimer/trig0

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

mkdir $TRIGCFG
accel=$(sed -n 's/.*rig\.accel=\([^ ]*\).*/\1/p' /proc/cmdline)
if [ "$accel" = tcg ]; then
	echo 0 > /sys/module/rpms_emg/parameters/timestamp
fi
mkdir $EMGCFG
cat /usr/local/lib/rig/wave.s16 > $EMGCFG/waveform
trigdir=""
for d in /sys/bus/iio/devices/trigger*; do
	[ "$(cat "$d/name")" = trig0 ] && trigdir=$d
done
[ -n "$trigdir" ] || { echo "no IIO trigger trig0"; exit 1; }
echo 1000 > "$trigdir/sampling_frequency"
# rpmsd's rule (60-rpmsd.rules) must have run on the new nodes before
# rpmsd starts.
udevadm settle -t 30
mkdir -p /run/rig
printf 'CHIP=%s\nSIM=%s\nTRIGDIR=%s\n' "$chip" "$sim" "$trigdir" > /run/rig/env
echo "gpio-sim $chip ($sim); trigger $(cat "$trigdir/name") at $(cat "$trigdir/sampling_frequency") Hz"
