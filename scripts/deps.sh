#!/bin/sh
# Install the Debian 12 packages rpmsd needs to build, test and run the demo,
# only those that are missing. Uses sudo when not root.
# Usage: scripts/deps.sh [build|test|bench]   (default: test, a superset of
# build; bench adds what the benchmarks and the detection evaluation need)
set -eu

build_pkgs="gcc pkg-config meson ninja-build libinih-dev libzmq3-dev libjansson-dev libiio-dev libgpiod-dev"
test_pkgs="$build_pkgs libiio-utils iiod umockdev libumockdev-dev iproute2 clang libclang-rt-14-dev cppcheck libcmocka-dev python3 python3-zmq python3-jsonschema systemd"
bench_pkgs="$test_pkgs python3-numpy python3-matplotlib"

case "${1:-test}" in
build) pkgs=$build_pkgs ;;
test) pkgs=$test_pkgs ;;
bench) pkgs=$bench_pkgs ;;
*) echo "deps.sh: unknown set '$1' (allowed: build, test, bench)" >&2; exit 2 ;;
esac

missing=""
for p in $pkgs; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
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
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
