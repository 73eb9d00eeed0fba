#!/bin/sh
# SPDX-License-Identifier: MIT
# /init of the systemd VM's stage-1 initramfs (tests/rig/systemd/vm.sh):
# Debian's kernel has virtio and ext4 as modules, so this loads them, mounts
# root= (default /dev/vda) and hands over to init= (default systemd), as
# initramfs-tools would. PID 1 must never exit: a failure powers off.
/bin/busybox mkdir -p /proc /sys /dev /newroot /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "RIG: init $(cut -d' ' -f1 /proc/uptime) s"

fail() {
	echo "RIG: stage 1: $*"
	poweroff -f
	sleep 60
}

while read -r ko; do
	insmod "$ko" || fail "insmod $ko failed"
done < /modules.list

root=/dev/vda
init=/lib/systemd/systemd
for arg in $(cat /proc/cmdline); do
	case $arg in
	root=*) root=${arg#root=} ;;
	init=*) init=${arg#init=} ;;
	esac
done
n=100
while [ ! -b "$root" ] && [ $n -gt 0 ]; do
	sleep 0.1
	n=$((n - 1))
done
[ -b "$root" ] || fail "no $root"
mount -t ext4 -o rw "$root" /newroot || fail "cannot mount $root"
[ -x "/newroot$init" ] || fail "no $init on $root"
mount --move /dev /newroot/dev
umount /sys /proc
exec switch_root /newroot "$init"
