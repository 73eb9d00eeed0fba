#!/bin/sh
# Build and run the whole rpmsd test suite: installs missing Debian packages,
# then builds with gcc (build/) and clang (build-clang/, with ASan+UBSan) and
# runs every registered test in both.
set -eu
cd "$(dirname "$0")"
scripts/deps.sh test

if [ ! -d build ]; then
	meson setup build
fi
meson compile -C build
meson test -C build --print-errorlogs

if [ ! -d build-clang ]; then
	CC=clang meson setup build-clang -Db_sanitize=address,undefined -Db_lundef=false
fi
meson compile -C build-clang
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	meson test -C build-clang --print-errorlogs
