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
tail -n +"$((before + 1))" "$results" | python3 -c '
import json, sys
print(f"{\"scenario\":<12} {\"delivered\":>9} {\"p50 ms\":>7} {\"p99 ms\":>7} {\"max ms\":>7} {\"server CPU %\":>12} {\"flood frames/s\":>14} {\"flood answers\":<40}")
for line in sys.stdin:
    r = json.loads(line)
    if r.get("type") != "fanout" or not str(r.get("scenario", "")).startswith("w1"):
        continue
    l, f, u = r["latency_ms"], r.get("flood") or {}, r.get("usage") or {}
    cpu = (u.get("server") or {}).get("cpu_pct", "")
    print(f"{r[\"scenario\"]:<12} {r[\"delivery_ratio\"]:>9} {l[\"p50\"]:>7} {l[\"p99\"]:>7} {l[\"max\"]:>7} {cpu!s:>12} {f.get(\"frames_per_s\", \"-\")!s:>14} {json.dumps(f.get(\"errors\", {}))}")
'
