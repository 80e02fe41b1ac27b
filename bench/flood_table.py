#!/usr/bin/env python3
"""The table bench/flood.sh prints: one row per w1 fanout run read from JSON lines on stdin."""

import json
import sys

print(f"{'scenario':<12} {'delivered':>9} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'server CPU %':>12} "
      f"{'flood frames/s':>14} flood answers")
for line in sys.stdin:
    if not line.strip().startswith("{"):
        continue
    r = json.loads(line)
    if r.get("type") != "fanout" or not str(r.get("scenario", "")).startswith("w1"):
        continue
    lat, flood, usage = r["latency_ms"], r.get("flood") or {}, r.get("usage") or {}
    cpu = (usage.get("server") or {}).get("cpu_pct", "")
    print(f"{r['scenario']:<12} {r['delivery_ratio']:>9} {lat['p50']:>7} {lat['p99']:>7} {lat['max']:>7} {cpu!s:>12} "
          f"{flood.get('frames_per_s', '-')!s:>14} {json.dumps(flood.get('errors', {}))}")
