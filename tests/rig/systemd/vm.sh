#!/bin/sh
# SPDX-License-Identifier: MIT
# The systemd VM (docs/rig.md, "The systemd VM"): the VM rig's PREEMPT_RT
# kernel, gpio-sim and IIO test device, booted with a Debian root file
# system and systemd as PID 1, rpmsd installed into it by `meson install`
# (the real unit, sysusers.d file, udev rule and plugins) and run as the
# service it is on a rig. guest/tests.sh proves, through systemctl and
# rig-mon's edges: the unit reaches READY (Type=notify); a hung RT thread
# (daemon.test_hooks: SIGUSR2 the acquire thread, SIGUSR1 the stim thread)
# drops the enable line before systemd's watchdog kills and restarts the
# service, and the coil stays disarmed throughout; `systemctl stop`
# mid-train leaves the lines inactive.
# Run by `meson test --suite rig` (test rig-systemd).
#
# Steps, cached under $RPMSD_BUILD_ROOT/rig-cache like rig.sh's:
#   1. rig.sh --kernel-only: the packages (scripts/deps.sh rig, which has
#      mmdebstrap and e2fsprogs), the kernel and the module tree with the
#      test modules.
#   2. the root file system: mmdebstrap --variant=minbase with systemd,
#      udev, gpiod and the packages of every library rpmsd, its
#      plugins and the rig's tools link (ldd, dpkg -S), from the host's
#      Debian sources; a tarball cached by that list and the host's
#      versions of it.
#   3. a stage-1 initramfs (busybox, virtio and ext4 modules): mounts
#      root=/dev/vda and switch_roots to init=/lib/systemd/systemd.
#   4. the image: the tarball, the module tree in /lib/modules, `meson
#      install --destdir`, systemd-sysusers --root, the test configuration
#      in place of the installed one, the rig's units and scripts; an ext4
#      image made by mke2fs -d (no mount, no loop device).
#   5. QEMU (TCG, or KVM as rig.sh decides), serial console captured; the
#      guest's rig-test.service prints RIG: lines and powers off.
# Prints the console, then the results, then "N passed, N failed" last.
# Exit status: 0 all passed, 1 a failure, 77 skipped (no root or sudo for
# the packages).
#
# Environment: RPMSD_RIG_SYSTEMD_TESTS=a,b (default all: boot install ready
# watchdog stall-stim stop), RPMSD_RIG_ACCEL=tcg|kvm|auto (default auto),
# RPMSD_RIG_SYSTEMD_TIMEOUT=seconds for the VM (default 300),
# RPMSD_RIG_CACHE=dir.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
src=${RPMSD_SOURCE_ROOT:-$(cd "$here/../../.." && pwd)}
build=${RPMSD_BUILD_ROOT:-$src/build}
cache=${RPMSD_RIG_CACHE:-$build/rig-cache}
rigmon=${RIG_MON:-$build/tests/rig/rig-mon}
rigutil=${RIG_UTIL:-$build/tests/rig/rig-util}
tests=${RPMSD_RIG_SYSTEMD_TESTS:-all}
accel=${RPMSD_RIG_ACCEL:-auto}
vm_timeout=${RPMSD_RIG_SYSTEMD_TIMEOUT:-300}

rig_name=rig-systemd
# say, die, step, and booting and judging the VM: shared with rig.sh
. "$here/../vm_lib.sh"

# ---- 1. packages, kernel, modules (rig.sh) ---------------------------------

mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
rc=0
out=$(RPMSD_RIG_CACHE=$cache "$here/../rig.sh" --kernel-only 2>&1) || rc=$?
echo "$out" | sed 's/^/  | /'
case $rc in
0) ;;
77) say "SKIP: rig.sh --kernel-only skipped"; echo "0 passed, 0 failed, 1 skipped"; exit 77 ;;
*) die "rig.sh --kernel-only failed (exit status $rc)" ;;
esac
kver=$(echo "$out" | sed -n 's/^rig: kver: //p')
vmlinuz=$(echo "$out" | sed -n 's/^rig: vmlinuz: //p')
mroot=$(echo "$out" | sed -n 's/^rig: module tree: //p')
[ -n "$kver" ] && [ -f "$vmlinuz" ] && [ -d "$mroot/lib/modules/$kver" ] ||
	die "rig.sh --kernel-only did not name the kernel and its module tree"
for t in mmdebstrap mke2fs systemd-sysusers meson; do
	command -v "$t" > /dev/null || die "$t is missing (scripts/deps.sh rig)"
done
step "kernel $kver and modules"

# ---- 2. the root file system (mmdebstrap), cached ------------------------------

# The packages of the libraries the guest's binaries link, by ldd and
# dpkg -S (a merged-/usr host knows some files by their /lib path, some
# by /usr/lib: both are asked).
bins="$build/daemon/rpmsd $build/tools/rpmsctl $rigmon $rigutil"
for p in "$build"/plugins/*/*.so; do
	bins="$bins $p"
done
# shellcheck disable=SC2086
libs=$(for b in $bins; do ldd "$b"; done | awk '/=> \// { print $3 }' | sort -u)
[ -n "$libs" ] || die "ldd found no libraries in $bins"
libpkgs=$(for l in $libs; do
	r=$(readlink -f "$l")
	printf '%s\n' "$l" "$r" "${r#/usr}" "/usr$r"
done | sort -u | xargs dpkg -S 2> /dev/null | sed 's/[:,].*//' | sort -u)
# No procps: the image proves the unit needs nothing beyond a minimal
# system (its ExecReload= uses the shell's kill, not procps' /bin/kill).
pkgs=$(printf '%s\n' systemd systemd-sysv udev kmod gpiod $libpkgs | sort -u | tr '\n' ' ')
# The host's Debian sources (deb822 or one-line files), so the guest gets
# the same mirror and suites (updates, security) as the host's libraries.
. /etc/os-release
suite=${VERSION_CODENAME:-bookworm}
sources=""
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
	[ -f "$f" ] && grep -Eq "^[[:space:]]*(deb[[:space:]].*[[:space:]]|Suites:.*[[:space:]])$suite([[:space:]]|$)" "$f" &&
		sources="$sources $f"
done
# Keyed by the list, the sources and the host's versions of the packages:
# an update of the host's libraries (which rpmsd is built against) makes a
# new root with the same.
# shellcheck disable=SC2086
key=$({ echo "$suite minbase $pkgs"; dpkg-query -W $pkgs 2>/dev/null; [ -z "$sources" ] || cat $sources; } |
	cksum | cut -d' ' -f1)
tarball=$cache/sd-rootfs-$key.tar
if [ ! -f "$tarball" ]; then
	rm -f "$cache"/sd-rootfs-*
	say "mmdebstrap $suite: $pkgs"
	# shellcheck disable=SC2086 # one argument per sources file
	# One more try: a mirror's hiccup should not fail the test.
	mmdebstrap --variant=minbase --format=tar --include="$(echo $pkgs | tr ' ' ,)" \
		"$suite" "$tarball.tmp" $sources > "$cache/sd-rootfs.log" 2>&1 ||
		mmdebstrap --variant=minbase --format=tar --include="$(echo $pkgs | tr ' ' ,)" \
			"$suite" "$tarball.tmp" $sources > "$cache/sd-rootfs.log" 2>&1 ||
		{ cat "$cache/sd-rootfs.log"; rm -f "$tarball.tmp"; die "mmdebstrap failed"; }
	mv "$tarball.tmp" "$tarball"
fi
say "root file system $(basename "$tarball"), $(($(wc -c < "$tarball") / 1048576)) MiB"
step "root file system"

# ---- 3. stage-1 initramfs: virtio disk and ext4, then switch_root ---------------

run=$cache/sd-run
rm -rf "$run"
ird=$run/initrd
mkdir -p "$ird/bin" "$ird/proc" "$ird/sys" "$ird/dev" "$ird/newroot"
cp /bin/busybox "$ird/bin/busybox"
ln -s busybox "$ird/bin/sh"
cp "$here/initrd-init.sh" "$ird/init"
chmod 755 "$ird/init"
for m in virtio_pci virtio_blk crc32c_generic ext4; do
	modprobe -d "$mroot" -S "$kver" --show-depends "$m" | sed -n 's/^insmod \([^ ]*\).*/\1/p'
done | awk '!seen[$0]++' | sed "s|^$mroot||" | while read -r ko; do
	# an alias may name a module the tree does not have (crc32c-intel)
	[ -f "$mroot$ko" ] || continue
	mkdir -p "$ird$(dirname "$ko")"
	cp "$mroot$ko" "$ird$ko"
	echo "$ko"
done > "$ird/modules.list"
(cd "$ird" && find . | cpio -o -H newc -R 0:0 --quiet) > "$run/initrd.cpio"
say "stage 1: $(sed 's|.*/||' "$ird/modules.list" | tr '\n' ' ')"

# ---- 4. the image ----------------------------------------------------------------

root=$run/root
mkdir -p "$root"
tar -x -p --numeric-owner -f "$tarball" -C "$root"
# Merged /usr: lib is a relative link to usr/lib, safe to write through.
mkdir -p "$root/usr/lib/modules"
cp -a "$mroot/lib/modules/$kver" "$root/usr/lib/modules/"
# rpmsd as a package would install it: unit, sysusers.d, udev rule, config,
# plugins, at the build's prefix.
meson install -C "$build" --no-rebuild --destdir "$root" > "$run/install.log" 2>&1 ||
	{ cat "$run/install.log"; die "meson install --destdir failed"; }
unit=""
for d in etc/systemd/system lib/systemd/system usr/lib/systemd/system usr/local/lib/systemd/system; do
	[ -f "$root/$d/rpmsd.service" ] && { unit=$root/$d/rpmsd.service; break; }
done
[ -n "$unit" ] || die "meson install put no rpmsd.service in the image"
# The test configuration goes where the installed unit reads it.
conf=$(sed -n 's/^ExecStart=.*--config[ =]\([^ ]*\).*/\1/p' "$unit" | head -n 1)
[ -n "$conf" ] || die "no --config in the installed unit's ExecStart"
mkdir -p "$root$(dirname "$conf")"
cat > "$root$conf" << 'EOF'
# The systemd VM's configuration (tests/rig/systemd/vm.sh): the rig's
# gpio-sim lines and IIO device, open-loop trains to stop mid-way, armed
# by the control socket only, and the test hooks (SIGUSR2 hangs the
# acquire thread). Never on a patient rig.
[daemon]
arm_on_start = false
state_dir = /var/lib/rpmsd
require_rt = true
cpu_dma_latency = true
test_hooks = true

[source]
type = iio
uri = local:
device = emg0
channels = voltage0,voltage1
trigger = trig0
rate_hz = 1000
block_frames = 8

[detect]
calibration_s = 2
k_on = 6

[stim]
plugin = gpio
mode = open_loop
protocol = train
train_pulses = 40
train_frequency_hz = 10
open_loop_pulses = 40
intensity_pct = 30
pulse_width_us = 5000
refractory_ms = 500

[safety]
motor_threshold_pct = 40
acquisition_timeout_ms = 300

[publish]
endpoint = ipc:///run/rpmsd/events

[coil.gpio]
chip = gpiochip0
trigger_line = TRIG
enable_line = ENABLE
estop_line = STOP
estop_bias = as-is
ready_line = READY
ready_bias = as-is
confirm_line = CONFIRM
confirm_bias = as-is
confirm_timeout_us = 100000
EOF
chmod 644 "$root$conf"
# What a package's postinst does (dh_installsysusers): the rpmsd user.
systemd-sysusers --root="$root" > "$run/sysusers.log" 2>&1 ||
	{ cat "$run/sysusers.log"; die "systemd-sysusers --root failed"; }
# The rig: tools, scripts, waveform, units, modules loaded at boot.
mkdir -p "$root/usr/local/lib/rig"
cp "$rigmon" "$root/usr/local/bin/rig-mon"
cp "$rigutil" "$root/usr/local/bin/rig-util"
cp "$here"/guest/*.sh "$root/usr/local/lib/rig/"
chmod 755 "$root"/usr/local/lib/rig/*.sh
cp "$here"/guest/*.service "$here"/guest/*.target "$root/etc/systemd/system/"
"$rigutil" wave "$src/data/emg/emg_1.txt" 12 6 "$root/usr/local/lib/rig/wave.s16" > /dev/null
printf '%s\n' configfs industrialio-configfs industrialio-sw-trigger iio-trig-hrtimer rpms_emg gpio-sim \
	> "$root/etc/modules-load.d/rig.conf"
echo "options gpio_sim loopback=0:4,0:5,0:6,1:7,1:8" > "$root/etc/modprobe.d/rig.conf"
echo rig > "$root/etc/hostname"
# Nothing on the console but the tests; no first-boot questions, no timers.
for u in serial-getty@ttyS0.service getty@tty1.service systemd-firstboot.service \
	proc-sys-fs-binfmt_misc.automount apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer dpkg-db-backup.timer; do
	ln -sf /dev/null "$root/etc/systemd/system/$u"
done
size=$(($(du -sm "$root" | cut -f1) + 256))
truncate -s "${size}M" "$run/root.ext4"
mke2fs -q -t ext4 -L rig-root -d "$root" -F "$run/root.ext4" > "$run/mke2fs.log" 2>&1 ||
	{ cat "$run/mke2fs.log"; die "mke2fs -d failed"; }
say "image $size MiB: unit $(echo "$unit" | sed "s|^$root||"), config $conf"
step "image"

# ---- 5. boot ---------------------------------------------------------------------

console=$run/console.log

boot() {
	: > "$console"
	qemu-system-x86_64 -accel "$1" -cpu max -smp 2 -m 1024 \
		-nographic -no-reboot -monitor none -nic none \
		-kernel "$vmlinuz" -initrd "$run/initrd.cpio" \
		-drive "file=$run/root.ext4,if=virtio,format=raw,cache=unsafe" \
		-append "console=ttyS0 root=/dev/vda rw init=/lib/systemd/systemd quiet loglevel=3 panic=-1 fsck.mode=skip systemd.unit=rig.target rig.tests=$tests rig.accel=$1" \
		< /dev/null > "$console" 2>&1 &
	qemu_pid=$!
}

# KVM as rig.sh decides it (its probe's verdict is cached in kvm-broken).
if [ "$accel" = kvm ] && ! { [ -r /dev/kvm ] && [ -w /dev/kvm ] && [ ! -f "$cache/kvm-broken" ]; }; then
	die "RPMSD_RIG_ACCEL=kvm and KVM is not usable here"
fi
vm_run "$vm_timeout"

# ---- results ---------------------------------------------------------------------

vm_results
