#!/bin/sh
# rpmsd demo: installs what is missing, builds, and runs the daemon in real
# time on a bundled real EMG recording (data/emg/emg_1.txt, 64 s) through the
# simulated coil. Live events are printed by `rpmsctl tail`, a real ZeroMQ
# subscriber; the daemon prints a session summary at the end.
# Extra arguments go to rpmsd (e.g. ./demo.sh --fast).
set -eu
cd "$(dirname "$0")"
scripts/deps.sh build

# The demo needs no test tools: without an existing build/, set it up
# without the test suite (./test.sh turns it back on).
if [ ! -d build ]; then
	meson setup build -Dtests=false >/dev/null
fi
meson compile -C build >/dev/null
# config/demo.conf keeps its pulse ledger here (daemon.state_dir).
mkdir -p build/demo-state

endpoint=$(sed -n '/^\[publish\]/,/^\[/s/^endpoint *= *//p' config/demo.conf)
./build/tools/rpmsctl tail --endpoint "$endpoint" &
tail_pid=$!

summary=$(mktemp)
trap 'kill "$tail_pid" 2>/dev/null || true; rm -f "$summary"' EXIT
# Ctrl-C reaches rpmsd too, which stops cleanly and writes its summary:
# the script only has to carry on and show it.
trap ':' INT TERM

status=0
./build/daemon/rpmsd --config config/demo.conf --wait-subscriber=10 "$@" >"$summary" || status=$?
# Let the subscriber print the last events, then show the summary below them.
sleep 0.5
kill "$tail_pid" 2>/dev/null || true
wait "$tail_pid" 2>/dev/null || true
cat "$summary"
exit "$status"
