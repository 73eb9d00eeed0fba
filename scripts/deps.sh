#!/bin/sh
# Install the Debian 12 packages rpmsd needs to build, test and run the demo,
# only those that are missing. Uses sudo when not root.
# Usage: scripts/deps.sh [build|test|bench|rig]   (default: test, a superset
# of build; bench adds what the benchmarks and the detection evaluation need;
# rig is what the PREEMPT_RT VM rig needs, tests/rig and docs/rig.md)
set -eu

build_pkgs="gcc pkg-config meson ninja-build tzdata libinih-dev libzmq3-dev libjansson-dev libiio-dev libgpiod-dev libedf-dev libsystemd-dev libsqlite3-dev libpq-dev libsodium-dev"
# nodejs and npm: tests/integration/test_bids.py installs the npm
# bids-validator (1.15.0) with them into the build directory (docs/bids.md).
test_pkgs="$build_pkgs libiio-utils iiod umockdev libumockdev-dev iproute2 clang libclang-rt-14-dev cppcheck libcmocka-dev python3 python3-zmq python3-jsonschema systemd python3-mne python3-matplotlib groff-base man-db bsdutils jq postgresql-15 openssl nodejs npm"
bench_pkgs="$test_pkgs python3-numpy python3-matplotlib"
# The VM rig: QEMU, busybox and the guest's tools, plus what builds its test
# kernel modules: the headers of Debian's PREEMPT_RT kernel and the kernel
# source of exactly that version (gpio-sim includes gpiolib.h, whose layout
# must match). The ABI (6.1.0-N) moves with Debian's updates, so it is taken
# from the metapackage, and again after an apt-get update. The kernel image
# is not installed on the host (no initramfs or boot loader hooks):
# tests/rig/rig.sh downloads it into its cache. The systemd VM
# (tests/rig/systemd) makes a Debian root with mmdebstrap and an ext4 image
# of it with mke2fs -d, and runs systemd-sysusers --root on it.
rig_tools="$build_pkgs qemu-system-x86 busybox-static kmod cpio xz-utils make rt-tests gpiod mmdebstrap e2fsprogs systemd"

rig_kernel_pkgs() {
	abi=$(apt-cache depends linux-image-rt-amd64 2>/dev/null |
		sed -n 's/^ *Depends: linux-image-\(.*\)-rt-amd64$/\1/p' | head -n 1)
	ver=$(apt-cache policy "linux-image-$abi-rt-amd64" 2>/dev/null |
		sed -n 's/^ *Candidate: //p' | head -n 1)
	if [ -n "$abi" ] && [ -n "$ver" ] && [ "$ver" != "(none)" ]; then
		echo "linux-headers-$abi-rt-amd64=$ver linux-source-6.1=$ver"
	else
		# no package lists yet: found again after the update below
		echo "linux-headers-rt-amd64 linux-source-6.1"
	fi
}

set_name=${1:-test}
case "$set_name" in
build) pkgs=$build_pkgs ;;
test) pkgs=$test_pkgs ;;
bench) pkgs=$bench_pkgs ;;
rig) pkgs="$rig_tools $(rig_kernel_pkgs)" ;;
*) echo "deps.sh: unknown set '$1' (allowed: build, test, bench, rig)" >&2; exit 2 ;;
esac

# NAME or NAME=VERSION, installed (at that version). A NAME an installed
# package provides counts too: NodeSource's nodejs provides (and conflicts
# with) npm, which apt would otherwise try to install beside it.
installed() {
	st=$(dpkg-query -W -f='${Status} ${Version}' "${1%%=*}" 2>/dev/null) || st=""
	case $1 in
	*=*) [ "$st" = "install ok installed ${1#*=}" ] ;;
	*) case $st in
		"install ok installed "*) return 0 ;;
		*) provided "$1" ;;
		esac ;;
	esac
}

provided() {
	dpkg-query -W -f='${Status}|${Provides}\n' 2>/dev/null |
		sed -n 's/^install ok installed|//p' | tr ',' '\n' |
		sed 's/^ *//; s/ .*//' | grep -qx "$1"
}

missing_of() {
	m=""
	for p in $1; do
		installed "$p" || m="$m $p"
	done
	echo "$m"
}

missing=$(missing_of "$pkgs")
[ -z "$missing" ] && exit 0

echo "deps.sh: installing:$missing" >&2
if [ "$(id -u)" -eq 0 ]; then
	sudo=""
elif command -v sudo >/dev/null 2>&1; then
	sudo="sudo"
else
	echo "deps.sh: need root or sudo to install:$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive

# Another apt (unattended-upgrades, a package manager window) may hold apt's
# locks for minutes: wait for them rather than give up at once. apt-get
# waits for the dpkg lock with DPkg::Lock::Timeout (apt >= 1.9.11), but
# apt-get update does not wait for its own lock on the package lists
# (/var/lib/apt/lists/lock, apt 2.6): that one is retried here, as long.
lock_wait=600
apt_opts="-o DPkg::Lock::Timeout=$lock_wait"

apt_update() {
	waited=0
	while :; do
		# shellcheck disable=SC2086
		if out=$($sudo apt-get $apt_opts update -qq 2>&1); then
			[ -z "$out" ] || printf '%s\n' "$out" >&2
			return 0
		fi
		case $out in
		*"Could not get lock"*) ;;
		*) printf '%s\n' "$out" >&2; return 1 ;;
		esac
		if [ "$waited" -ge "$lock_wait" ]; then
			printf '%s\n' "$out" >&2
			echo "deps.sh: apt's package lists stayed locked for $lock_wait s" >&2
			return 1
		fi
		[ "$waited" -gt 0 ] || echo "deps.sh: another apt is running; waiting up to $lock_wait s for it" >&2
		sleep 2
		waited=$((waited + 2))
	done
}

apt_update
if [ "$set_name" = rig ]; then
	missing=$(missing_of "$rig_tools $(rig_kernel_pkgs)")
	[ -z "$missing" ] && exit 0
	echo "deps.sh: after the update, installing:$missing" >&2
fi
# shellcheck disable=SC2086
$sudo apt-get $apt_opts install -y -qq --no-install-recommends $missing >/dev/null
