#!/usr/bin/env bash
# The flood's effect on w1: w1 alone, then w1 while 1 and 10 extra members (one per room) flood
# every action the protocol has as fast as their sockets take them — each against a fresh
# mathia-local with the production per-socket frame budget (100 frames/s, 200 at once). The
# message rate limit stays lifted (a w1 sender sends 20 messages/s, past the 30/minute of a
# person), so the flooders' own new messages (1 frame in 14) get through too.
#
#   bash bench/flood.sh                 # MATHIA_BIN=… and QUICK=1 as for bench/run.sh
#
# Prints one line per run and appends the JSON lines to bench/results/<date>.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
export MATHIA_WS_FRAMES_PER_S=${MATHIA_WS_FRAMES_PER_S:-100}
export MATHIA_WS_FRAME_BURST=${MATHIA_WS_FRAME_BURST:-200}
results=bench/results/$(date -u +%F).jsonl
before=$(wc -l <"$results" 2>/dev/null || echo 0)
for s in w1 w1-flood1 w1-flood10; do
  bash bench/run.sh "$s"
done
tail -n +"$((before + 1))" "$results" | python3 "$(dirname "$0")/flood_table.py"
