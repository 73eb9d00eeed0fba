#!/bin/sh
# Build and run the whole rpmsd test suite: installs missing Debian packages,
# then builds with gcc (build/) and runs every registered test, runs them
# again built with clang under ASan+UBSan (build-clang/), and runs the unit
# and integration tests under TSan (build-tsan/), then runs each libFuzzer
# harness for a bounded time (build-fuzz/, clang, ASan+UBSan). The VM rig
# (suite rig, docs/rig.md) runs once, in build/.
set -eu
cd "$(dirname "$0")"
scripts/deps.sh test

# build/ is shared with the demo, which may have set it up without tests.
if [ -d build ]; then
	meson configure build -Dtests=true
else
	meson setup build
fi
meson compile -C build
# The npm bids-validator of the bids test: npm installs it once, here, for
# all the builds below (tests/integration/test_bids.py, docs/bids.md).
RPMSD_BIDS_VALIDATOR_DIR="$(pwd)/build/bids-validator-1.15.0"
export RPMSD_BIDS_VALIDATOR_DIR
meson test -C build --print-errorlogs --no-suite rig
# The PREEMPT_RT VM rig in QEMU (docs/rig.md; installs its own packages),
# verbose so that its console and figures are in the log.
meson test -C build --suite rig --verbose

if [ ! -d build-clang ]; then
	CC=clang meson setup build-clang -Db_sanitize=address,undefined -Db_lundef=false
fi
meson compile -C build-clang
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	meson test -C build-clang --print-errorlogs

# ThreadSanitizer over the threads, rings and the virtual-clock hand-off.
# libzmq (not instrumented) is suppressed; see tests/sanitizers/tsan.supp.
if [ ! -d build-tsan ]; then
	CC=clang meson setup build-tsan -Db_sanitize=thread -Db_lundef=false
fi
meson compile -C build-tsan
TSAN_OPTIONS="halt_on_error=1 suppressions=$(pwd)/tests/sanitizers/tsan.supp" \
	meson test -C build-tsan --print-errorlogs --suite unit --suite integration

# Fuzzing: the config parser, the replay reader and the event encoder, each
# for fuzz_seconds (30 s); any crash, leak, hang or undefined behaviour fails.
if [ ! -d build-fuzz ]; then
	CC=clang meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false
fi
meson compile -C build-fuzz
meson test -C build-fuzz --print-errorlogs --suite fuzz
