#!/bin/sh
# SPDX-License-Identifier: MIT
# The PREEMPT_RT VM rig (docs/rig.md): boots Debian's linux-image-rt-amd64
# in QEMU with gpio-sim, IIO configfs and the project's own test IIO driver,
# and runs rpmsd against them (tests/rig/guest/tests.sh). Run by
# `meson test --suite rig`, which sets the RIG_* paths of the binaries.
#
# Steps, each cached under $RPMSD_BUILD_ROOT/rig-cache. On the 2-core
# machines here a cold run (nothing installed or cached) took 110 s, a warm
# one (the initramfs rebuilt, the VM booted) 45 to 55 s:
#   1. scripts/deps.sh rig: QEMU, busybox, kmod, the RT kernel's headers and
#      linux-source-6.1 of exactly that version (ABI derived from Debian's
#      metapackage at run time).
#   2. the kernel: linux-image-<abi>-rt-amd64 downloaded (apt-get download,
#      not installed) and unpacked: vmlinuz and the IIO/configfs modules.
#   3. the test modules, built out of tree from sources extracted from
#      Debian's linux-source tarball (never committed): irq_sim (one call
#      changed: irq_to_desc is not exported), gpio-sim (+ the rig's
#      loopback, kmod/rig_loopback.h), industrialio-configfs, -sw-device,
#      -sw-trigger, iio-trig-hrtimer; and our own kmod/rpms_emg.c.
#   4. an initramfs: static busybox, the module closure, rpmsd, rpmsctl, the
#      gpio plugin (and magstim, magventure when built), rig-mon, rig-util, cyclictest, gpioinfo and their ldd
#      libraries at the host's paths, the guest scripts and the waveform.
#   5. QEMU (TCG; KVM first with RPMSD_RIG_ACCEL=auto when /dev/kvm works,
#      falling back to TCG if the guest shows no sign of life in 10 s),
#      serial console captured; the guest prints RIG: lines. ttyS1 and
#      ttyS2 go to tests/rig/stim_bridge.py on the host: a stimulator
#      emulator (tests/emu) and its control line (docs/rig.md).
# Prints the console, then the results, then "N passed, N failed" last.
# With --build-only it stops after step 4 and prints the kernel and
# initramfs paths, to boot on a real machine. With --kernel-only it stops
# after step 3 and prints the kernel, its ABI and the module tree (the
# image's modules, those that boot from a virtio disk, and the test modules,
# depmod'ed): the systemd VM (systemd/vm.sh) boots them with a Debian root.
# Exit status: 0 all passed, 1 a failure, 77 skipped (cannot install the
# packages: not root and no sudo).
#
# Environment: RPMSD_RIG_TESTS=a,b (default all: pulses estop stall sigterm
# sigkill timestamps cyclictest clockstep magstim magventure), RPMSD_RIG_ACCEL=tcg|kvm|auto
# (default auto), RPMSD_RIG_TIMEOUT=seconds for the VM (default 420),
# RPMSD_RIG_CACHE=dir.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
src=${RPMSD_SOURCE_ROOT:-$(cd "$here/../.." && pwd)}
build=${RPMSD_BUILD_ROOT:-$src/build}
cache=${RPMSD_RIG_CACHE:-$build/rig-cache}
rpmsd=${RIG_RPMSD:-$build/daemon/rpmsd}
rpmsctl=${RIG_RPMSCTL:-$build/tools/rpmsctl}
plugin=${RIG_GPIO_PLUGIN:-$build/plugins/gpio/gpio.so}
# The serial stimulator plugins, when built (the magstim and magventure tests).
stim_plugins=${RIG_STIM_PLUGINS-$build/plugins/magstim/magstim.so $build/plugins/magventure/magventure.so}
rigmon=${RIG_MON:-$build/tests/rig/rig-mon}
rigutil=${RIG_UTIL:-$build/tests/rig/rig-util}
tests=${RPMSD_RIG_TESTS:-all}
accel=${RPMSD_RIG_ACCEL:-auto}
vm_timeout=${RPMSD_RIG_TIMEOUT:-420}

build_only=0
case ${1:-} in
--build-only) build_only=1 ;;
--kernel-only) build_only=kernel ;;
"") ;;
*) echo "usage: rig.sh [--build-only | --kernel-only]" >&2; exit 2 ;;
esac

rig_name=rig
# say, die, step, and booting and judging the VM: shared with tests/rig/systemd
. "$here/vm_lib.sh"

for f in "$rpmsd" "$rpmsctl" "$plugin" "$rigmon" "$rigutil"; do
	[ -e "$f" ] || die "$f is not built"
done

# ---- 1. packages --------------------------------------------------------

if ! "$src/scripts/deps.sh" rig; then
	if [ "$(id -u)" -ne 0 ] && ! command -v sudo > /dev/null 2>&1; then
		say "SKIP: the rig's Debian packages are missing and this user cannot install them (scripts/deps.sh rig as root)"
		echo "0 passed, 0 failed, 1 skipped"
		exit 77
	fi
	die "scripts/deps.sh rig failed"
fi

# The RT kernel Debian ships now: ABI (6.1.0-N), package version, and the
# headers and source of that exact version (scripts/deps.sh rig installs
# them; it derives the ABI the same way).
resolve_kernel() {
	abi=$(apt-cache depends linux-image-rt-amd64 2>/dev/null |
		sed -n 's/^ *Depends: linux-image-\(.*\)-rt-amd64$/\1/p' | head -n 1)
	ver=$(apt-cache policy "linux-image-$abi-rt-amd64" 2>/dev/null |
		sed -n 's/^ *Candidate: //p' | head -n 1)
	if [ -z "$abi" ] || [ -z "$ver" ]; then
		say "cannot tell the ABI of linux-image-rt-amd64 (apt-cache depends)"
		return 1
	fi
	kver=$abi-rt-amd64
	headers=/usr/src/linux-headers-$kver
	if [ ! -d "$headers" ]; then
		say "$headers is missing"
		return 1
	fi
	have_src=$(dpkg-query -W -f='${Version}' linux-source-6.1 2>/dev/null || true)
	if [ "$have_src" != "$ver" ]; then
		say "linux-source-6.1 is ${have_src:-not installed}, the kernel $ver"
		return 1
	fi
}

# The image: downloaded (not installed: no initramfs or boot loader hooks
# on the host) and unpacked, only vmlinuz and the modules the rig loads,
# and those the systemd VM needs to mount its root from a virtio disk.
fetch_kernel() {
	kdir=$cache/kernel-$kver-$ver
	m=./lib/modules/$kver/kernel
	kpaths="./boot/vmlinuz-$kver ./lib/modules/$kver/modules.* $m/drivers/iio/* $m/fs/configfs/*
		$m/drivers/virtio/* $m/drivers/block/virtio_blk.ko $m/fs/ext4/* $m/fs/jbd2/*
		$m/fs/mbcache.ko $m/lib/crc16.ko $m/crypto/crc32c_generic.ko"
	[ -f "$kdir/.done" ] && [ "$(cat "$kdir/.done")" = "$kpaths" ] && return 0
	rm -rf "$kdir"
	mkdir -p "$kdir/deb"
	# As root, apt-get download warns that _apt cannot write here: harmless.
	(cd "$kdir/deb" && apt-get download -q "linux-image-$kver=$ver" 2>&1) || return 1
	deb=$(echo "$kdir"/deb/*.deb)
	set -f
	# shellcheck disable=SC2086 # the patterns, one word each
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$kdir" --wildcards $kpaths || { set +f; return 1; }
	set +f
	rm -rf "$kdir/deb"
	echo "$kpaths" > "$kdir/.done"
}

mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
if ! { resolve_kernel && fetch_kernel; }; then
	# Package lists older than the archive name a kernel it has dropped.
	say "updating the package lists and trying once more"
	if [ "$(id -u)" -eq 0 ]; then
		apt-get update -qq || true
	fi
	"$src/scripts/deps.sh" rig || die "scripts/deps.sh rig failed"
	{ resolve_kernel && fetch_kernel; } || die "cannot get Debian's RT kernel $kver $ver"
fi
say "kernel $kver ($ver)"
step "packages and kernel image"

# ---- 3. the test modules -------------------------------------------------

# Rebuilt when our module sources or this script change.
kmod_hash=$(cat "$here"/kmod/* "$0" | cksum | cut -d' ' -f1)
mdir=$cache/kmod-$kver-$ver-$kmod_hash
if [ ! -f "$mdir/.done" ]; then
	rm -rf "$cache"/kmod-"$kver"-*
	# The few kernel files needed, extracted once per kernel version (the
	# tarball is 140 MB of xz: about 10 s).
	sdir=$cache/src-$ver
	if [ ! -f "$sdir/.done" ]; then
		rm -rf "$cache"/src-*
		mkdir -p "$sdir"
		tar -xJf /usr/src/linux-source-6.1.tar.xz -C "$sdir" --strip-components=1 \
			linux-source-6.1/drivers/gpio/gpio-sim.c linux-source-6.1/drivers/gpio/gpiolib.h \
			linux-source-6.1/kernel/irq/irq_sim.c \
			linux-source-6.1/drivers/iio/industrialio-configfs.c \
			linux-source-6.1/drivers/iio/industrialio-sw-device.c \
			linux-source-6.1/drivers/iio/industrialio-sw-trigger.c \
			linux-source-6.1/drivers/iio/trigger/iio-trig-hrtimer.c
		touch "$sdir/.done"
	fi
	b=$mdir/build
	mkdir -p "$b"
	cp "$sdir"/drivers/gpio/gpio-sim.c "$sdir"/drivers/gpio/gpiolib.h \
		"$sdir"/kernel/irq/irq_sim.c "$sdir"/drivers/iio/industrialio-*.c \
		"$sdir"/drivers/iio/trigger/iio-trig-hrtimer.c "$here"/kmod/* "$b"/
	# irq_sim as a module: irq_to_desc is not exported to modules, and it is
	# not a module upstream (no licence tag).
	sed -i 's/handle_simple_irq(irq_to_desc(irqnum));/generic_handle_irq_safe(irqnum);/' "$b/irq_sim.c"
	printf '\nMODULE_LICENSE("GPL");\nMODULE_DESCRIPTION("IRQ simulator (rig build)");\n' >> "$b/irq_sim.c"
	# gpio-sim: the rig's wires (kmod/rig_loopback.h) after every place an
	# output's level changes, once the chip lock is dropped.
	after_unlock='s/^\tmutex_unlock(&chip->lock);$/&\n\t'
	sed -i -e '/^static int gpio_sim_get(struct gpio_chip \*gc, unsigned int offset)$/i #include "rig_loopback.h"\n' \
		-e "/^static void gpio_sim_set(struct gpio_chip/,/^}/ ${after_unlock}rig_loop_follow(chip, offset);/" \
		-e "/^static void gpio_sim_set_multiple(/,/^}/ ${after_unlock}rig_loop_follow_mask(chip, mask);/" \
		-e "/^static int gpio_sim_direction_output(/,/^}/ ${after_unlock}rig_loop_follow(chip, offset);/" \
		-e "/^static void gpio_sim_free(/,/^}/ ${after_unlock}rig_loop_follow(chip, offset);/" \
		"$b/gpio-sim.c"
	if [ "$(grep -c 'rig_loop_follow' "$b/gpio-sim.c")" != 4 ] ||
		! grep -q 'generic_handle_irq_safe' "$b/irq_sim.c"; then
		die "linux-source $ver: the rig's edits of gpio-sim.c or irq_sim.c no longer apply"
	fi
	make -s -C "$headers" M="$b" modules > "$mdir/make.log" 2>&1 ||
		{ cat "$mdir/make.log"; die "building the test modules failed"; }
	# A module tree the host's modprobe can resolve: the image's part + ours.
	cp -a "$kdir/lib" "$mdir/root-lib"
	mkdir -p "$mdir/root" "$mdir/root-lib/modules/$kver/extra"
	mv "$mdir/root-lib" "$mdir/root/lib"
	cp "$b"/*.ko "$mdir/root/lib/modules/$kver/extra/"
	depmod -b "$mdir/root" "$kver"
	for m in configfs industrialio-configfs industrialio-sw-trigger iio-trig-hrtimer rpms_emg irq_sim gpio-sim; do
		modprobe -d "$mdir/root" -S "$kver" --show-depends "$m" | sed -n 's/^insmod \([^ ]*\).*/\1/p'
	done | awk '!seen[$0]++' | sed "s|^$mdir/root||" > "$mdir/modules.list"
	touch "$mdir/.done"
fi
say "modules: $(sed 's|.*/||' "$mdir/modules.list" | tr '\n' ' ')"
step "test modules"
if [ "$build_only" = kernel ]; then
	say "kver: $kver"
	say "vmlinuz: $kdir/boot/vmlinuz-$kver"
	say "module tree: $mdir/root"
	exit 0
fi

# ---- 4. the initramfs ------------------------------------------------------

run=$cache/run
rm -rf "$run"
root=$run/root
mkdir -p "$root/bin" "$root/usr/bin" "$root/usr/lib/rpmsd/plugins" "$root/rig" "$root/etc" \
	"$root/proc" "$root/sys" "$root/dev" "$root/tmp" "$root/run" "$root/sbin" "$root/usr/sbin"
cp /bin/busybox "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
cp "$rpmsd" "$rpmsctl" "$rigmon" "$rigutil" /usr/bin/cyclictest /usr/bin/gpioinfo "$root/usr/bin/"
cp "$plugin" "$root/usr/lib/rpmsd/plugins/gpio.so"
for p in $stim_plugins; do
	[ -e "$p" ] && cp "$p" "$root/usr/lib/rpmsd/plugins/"
done
cp "$here/guest/init.sh" "$root/init"
cp "$here/guest/tests.sh" "$root/rig/tests.sh"
chmod 755 "$root/init"
while read -r ko; do
	mkdir -p "$root$(dirname "$ko")"
	cp "$mdir/root$ko" "$root$ko"
done < "$mdir/modules.list"
cp "$mdir/modules.list" "$root/rig/modules.list"
# The shared libraries, at the host's paths (the guest runs Debian 12's).
for bin in "$root"/usr/bin/* "$root"/usr/lib/rpmsd/plugins/*.so; do
	ldd "$bin" | awk '/=> \// { print $3 } /^\t\/[^ ]*ld-linux/ { print $1 }'
done | sort -u | while read -r lib; do
	mkdir -p "$root$(dirname "$lib")"
	cp -L "$lib" "$root$lib"
done
# 6 s of the bundled recording from 12 s: rest, then a burst at 3.5 s.
"$rigutil" wave "$src/data/emg/emg_1.txt" 12 6 "$root/rig/wave.s16" > /dev/null
(cd "$root" && find . | cpio -o -H newc -R 0:0 --quiet) > "$run/initramfs.cpio"
say "initramfs $(($(wc -c < "$run/initramfs.cpio") / 1024 / 1024)) MiB"
step "initramfs"
if [ "$build_only" = 1 ]; then
	# For a real machine (docs/rig.md): boot these, e.g. with kexec.
	say "kernel:    $kdir/boot/vmlinuz-$kver"
	say "initramfs: $run/initramfs.cpio"
	say "command line: console=ttyS0 quiet loglevel=3 rig.tests=$tests rig.accel=metal"
	exit 0
fi

# ---- 5. boot ---------------------------------------------------------------

console=$run/console.log

# The stimulator on the host (tests/rig/stim_bridge.py): the guest's ttyS1
# is the unit's serial cable, its ttyS2 the test's control line; both are
# Unix sockets the bridge listens on, QEMU the client. Without Python 3,
# the emulators or the plugins the guest's magstim/magventure tests skip.
stim_dir=$run/stim
bridge_pid=""
stim_args=""
stim_cmdline=""
if command -v python3 > /dev/null 2>&1 && [ -f "$src/tests/emu/magstim.py" ] &&
	[ -e "$root/usr/lib/rpmsd/plugins/magstim.so" ]; then
	mkdir -p "$stim_dir"
	stim_cmdline=" rig.stim=1"
	stim_args="-chardev socket,id=stim,path=$stim_dir/data.sock
		-chardev socket,id=stimctl,path=$stim_dir/ctl.sock
		-serial chardev:stim -serial chardev:stimctl"
else
	say "no stimulator emulator on the host (python3, tests/emu or the plugins missing): magstim and magventure will skip"
fi

stop_bridge() {
	if [ -n "$bridge_pid" ] && kill -0 "$bridge_pid" 2> /dev/null; then
		kill -TERM "$bridge_pid" 2> /dev/null || true
		wait "$bridge_pid" 2> /dev/null || true
	fi
	bridge_pid=""
}

# A fresh bridge (and device) for each boot; listening before QEMU starts.
start_bridge() {
	stop_bridge
	rm -f "$stim_dir/ready"
	python3 "$here/stim_bridge.py" "$stim_dir/data.sock" "$stim_dir/ctl.sock" \
		"$src/tests/emu" "$stim_dir/ready" 2>> "$run/stim-bridge.log" &
	bridge_pid=$!
	n=50
	while [ ! -s "$stim_dir/ready" ] && [ "$n" -gt 0 ]; do
		kill -0 "$bridge_pid" 2> /dev/null || die "the stimulator bridge exited: $(cat "$run/stim-bridge.log")"
		sleep 0.1
		n=$((n - 1))
	done
	[ -s "$stim_dir/ready" ] || die "the stimulator bridge did not listen within 5 s"
}

# boot ACCEL: start QEMU, its pid in $qemu_pid. ttyS0, the console, is
# named first: with any -serial, -nographic adds none of its own.
boot() {
	: > "$console"
	[ -z "$stim_args" ] || start_bridge
	# shellcheck disable=SC2086 # stim_args: words
	qemu-system-x86_64 -accel "$1" -cpu max -smp 2 -m 512 \
		-nographic -no-reboot -monitor none -serial stdio $stim_args \
		-kernel "$kdir/boot/vmlinuz-$kver" -initrd "$run/initramfs.cpio" \
		-append "console=ttyS0 quiet loglevel=3 panic=-1 rig.tests=$tests rig.accel=$1$stim_cmdline" \
		< /dev/null > "$console" 2>&1 &
	qemu_pid=$!
}

vm_run "$vm_timeout"
stop_bridge
if [ -s "$run/stim-bridge.log" ]; then
	say "stimulator bridge log:"
	sed 's/^/  | /' "$run/stim-bridge.log"
fi

# ---- results ---------------------------------------------------------------

vm_results
