#!/bin/sh
# Run one libFuzzer harness for a bounded time: new inputs go to a work
# corpus in the build directory, the committed seeds are only read.
# Usage: run.sh FUZZER SEED_DIR WORK_DIR SECONDS
# Longer runs by hand: the same with SECONDS=3600 (docs/reliability.md).
set -eu
# Undefined behaviour is a finding, not a warning.
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
fuzzer=$1 seeds=$2 work=$3 secs=$4
mkdir -p "$work"
# -timeout: one input taking over 10 s is a hang, reported as a failure.
exec "$fuzzer" "$work" "$seeds" -max_total_time="$secs" -timeout=10 \
	-rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$work/"
