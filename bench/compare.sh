#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Run the benchmarks of two builds interleaved, so that the load of a
# shared machine falls on both alike: round 1 runs A then B for each
# benchmark, round 2 B then A, and so on.
#
#   bench/compare.sh BUILD_A BUILD_B OUTDIR ROUNDS [BENCHMARK...]
#
# BUILD_A and BUILD_B are configured and compiled build directories (the
# same meson options, e.g. the default debugoptimized with -Dtests=true),
# usually of an older and a newer commit. BENCHMARK names are those of
# bench/meson.build, run by 'meson test --benchmark' in each build, except:
#   replay_fast, replay_nomains  this tree's bench/bench_replay.py against
#       each build (the second with dsp.mains_hz = 0), so that both are
#       timed by the same script (older copies fail on the pulse ledger's
#       state_dir);
#   iio_latency, iio_nomains  this tree's bench/bench_iio.py against each
#       build (root; older copies fail when cleaning up the ledger's
#       directory), the second with dsp.mains_hz = 0;
#   detect_cli  (not in meson.build) rpms-detect -m 0 (no mains filter at
#       all, so the same configuration in any commit that has -m) on
#       data/emg/emg.txt, 11 runs, the CPU time of each.
# Default: pipeline detect_throughput detect_throughput_cusum stim_timing
# estop_latency replay_fast replay_nomains detect_cli. A benchmark a
# build does not define is skipped for it. Each run's output is kept in OUTDIR as
# r<round>-<A|B>-<benchmark>.log; bench/compare_summary.py OUTDIR reads
# them. Nothing is rebuilt (--no-rebuild): build both first.
set -eu

if [ $# -lt 4 ]; then
	echo "usage: $0 BUILD_A BUILD_B OUTDIR ROUNDS [BENCHMARK...]" >&2
	exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
a=$(cd "$1" && pwd)
b=$(cd "$2" && pwd)
out=$3
rounds=$4
shift 4
if [ $# -eq 0 ]; then
	set -- pipeline detect_throughput detect_throughput_cusum stim_timing \
		estop_latency replay_fast replay_nomains detect_cli
fi
# The source tree of a build directory, for rpms-detect's input file.
srcdir() {
	python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["directories"]["source"])' \
		"$1/meson-info/meson-info.json"
}

detect_cli() {
	src=$(srcdir "$1")
	i=0
	while [ $i -lt 11 ]; do
		# CPU seconds (user + system) of one run, from the shell's times.
		python3 - "$1/tools/rpms-detect" "$src/data/emg/emg.txt" <<'EOF'
import os, resource, subprocess, sys
r = subprocess.run([sys.argv[1], "-m", "0", sys.argv[2]], capture_output=True, text=True)
if r.returncode != 0:
    sys.exit("rpms-detect failed: " + r.stderr)
u = resource.getrusage(resource.RUSAGE_CHILDREN)
print("detect_cli cpu_ms %.3f events %d" % ((u.ru_utime + u.ru_stime) * 1e3,
      r.stdout.count("\n")))
EOF
		i=$((i + 1))
	done
}

run_one() {
	dir=$1 tag=$2 name=$3 round=$4
	log="$out/r$round-$tag-$name.log"
	case $name in
	detect_cli)
		echo "round $round: $tag $name"
		detect_cli "$dir" > "$log" 2>&1
		return
		;;
	replay_fast | replay_nomains)
		echo "round $round: $tag $name"
		mode=
		[ "$name" = replay_nomains ] && mode=nomains
		python3 "$here/bench_replay.py" "$dir" "$(srcdir "$dir")" $mode > "$log" 2>&1 ||
			echo "round $round: $tag $name FAILED (see $log)"
		return
		;;
	iio_latency | iio_nomains)
		# this tree's script, the build's own fake-device rig and iio_gen
		echo "round $round: $tag $name"
		src=$(srcdir "$dir")
		mode=
		[ "$name" = iio_nomains ] && mode=nomains
		env RPMSD_IIO_GEN="$dir/bench/bench_iio_gen" RPMSD_BUILD_ROOT="$dir" \
			RPMSD_SOURCE_ROOT="$src" PYTHONPATH="$src/tests/iio" \
			PYTHONDONTWRITEBYTECODE=1 LD_LIBRARY_PATH="$dir/plugins/sim" \
			unshare -m -n --propagation private /usr/bin/python3 \
			"$here/bench_iio.py" $mode > "$log" 2>&1 ||
			echo "round $round: $tag $name FAILED (see $log)"
		return
		;;
	esac
	if ! meson test -C "$dir" --benchmark --list 2>/dev/null | grep -q " / $name\$"; then
		echo "$tag has no benchmark $name: skipped" | tee "$log"
		return
	fi
	echo "round $round: $tag $name"
	meson test -C "$dir" --benchmark --no-rebuild --verbose "$name" > "$log" 2>&1 ||
		echo "round $round: $tag $name FAILED (see $log)"
}

mkdir -p "$out"
{
	for x in "$a" "$b"; do
		echo "build $x: $(git -C "$(srcdir "$x")" rev-parse HEAD)"
	done
	date -u '+%Y-%m-%dT%H:%M:%SZ'
	uname -r
	nproc
} > "$out/info.txt"

r=1
while [ "$r" -le "$rounds" ]; do
	for name in "$@"; do
		if [ $((r % 2)) -eq 1 ]; then
			run_one "$a" A "$name" "$r"
			run_one "$b" B "$name" "$r"
		else
			run_one "$b" B "$name" "$r"
			run_one "$a" A "$name" "$r"
		fi
	done
	r=$((r + 1))
done
