#!/bin/sh
# SPDX-License-Identifier: MIT
# /init of the VM rig's initramfs (tests/rig/rig.sh puts it there): PID 1
# under busybox sh. Mounts what the tests need, runs /rig/tests.sh, which
# prints the RIG: result lines on the serial console, and powers off. PID 1
# must never exit (the kernel would panic), so every path ends in poweroff.
/bin/busybox mkdir -p /proc /sys /dev /tmp /run /bin /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/usr/bin:/usr/sbin:/bin:/sbin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/shm /dev/pts
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /run
# rpmsd's control socket lives there by default (systemd's RuntimeDirectory=).
mkdir -p /run/rpmsd
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null || true
# rpmsd's events go over ipc://, but a loopback costs nothing.
ip link set lo up 2>/dev/null || true

echo "RIG: init $(cut -d' ' -f1 /proc/uptime) s"
sh /rig/tests.sh main
echo "RIG: done $(cut -d' ' -f1 /proc/uptime) s"
sync
poweroff -f
