#!/usr/bin/env bash
# Soak: 1,000 sockets for 10 minutes under a steady load, then checks that
#   - no acknowledged message is missing from the rooms' history (the loadgen's --verify),
#   - every message reached every socket (delivery ratio ≥ SOAK_MIN_DELIVERY),
#   - the server's RSS stays flat: VmRSS is sampled every 30 s, and the last third of the
#     samples must stay within SOAK_RSS_TOLERANCE (default 10 %) of the sample taken after
#     the warm-up (the first 2 minutes).
# Appends the loadgen's JSON line and a `soak_check` line to bench/results/<date>.jsonl.
# Takes ~12 minutes and keeps both cores busy: not for a shared machine in the middle of work.
#
#   bash bench/soak.sh
#   SOAK_DURATION=1800 SOAK_RATE=2 bash bench/soak.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROOMS=${SOAK_ROOMS:-50}
CLIENTS=${SOAK_CLIENTS:-20}          # 50 × 20 = 1,000 sockets
RATE=${SOAK_RATE:-1}                 # msg/s per room (one sender each): 50 msg/s, 1,000 deliveries/s
DURATION=${SOAK_DURATION:-600}
WARMUP=${SOAK_WARMUP:-120}
TOLERANCE=${SOAK_RSS_TOLERANCE:-0.10}
MIN_DELIVERY=${SOAK_MIN_DELIVERY:-0.999}

bench_prepare
trap bench_cleanup EXIT
bench_start_server
bench_env_line

status=0
loadgen soak fanout --rooms "$ROOMS" --clients "$CLIENTS" --senders 1 --rate "$RATE" \
  --duration "$DURATION" --verify --rss-every 30 --progress 60 --drain 10 || status=$?
# Exit 1 from the loadgen means the run finished but verify found missing messages.
[ "$status" -le 1 ] || { log "the soak run failed (exit $status)"; exit "$status"; }

python3 - "$WORK/soak.jsonl" "$WARMUP" "$TOLERANCE" "$MIN_DELIVERY" <<'EOF' | tee -a "$RESULTS"
import json, sys, time
path, warmup, tol, min_delivery = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
run = [json.loads(l) for l in open(path) if l.strip()][-1]
samples = run.get("rss_samples", [])
after_warmup = [s for s in samples if s["t_s"] >= warmup]
baseline = after_warmup[0]["rss_kb"] if after_warmup else None
tail = after_warmup[len(after_warmup) * 2 // 3:] if after_warmup else []
worst = max((s["rss_kb"] for s in tail), default=None)
growth = (worst - baseline) / baseline if baseline and worst else None
verify = run.get("verify", {})
checks = {
    "no_acked_message_missing": verify.get("missing") == 0 and not verify.get("failures"),
    "delivery": run.get("delivery_ratio", 0) >= min_delivery,
    "rss_flat": growth is not None and growth <= tol,
    "no_disconnects": run.get("disconnects", 0) == 0,
}
print(json.dumps({
    "type": "soak_check", "ts_unix_ms": int(time.time() * 1000), "run_id": run.get("run_id"),
    "ok": all(checks.values()), "checks": checks,
    "acked": verify.get("acked"), "missing": verify.get("missing"),
    "delivery_ratio": run.get("delivery_ratio"), "latency_ms": run.get("latency_ms"),
    "rss_kb_after_warmup": baseline, "rss_kb_worst_last_third": worst,
    "rss_growth": None if growth is None else round(growth, 4), "rss_tolerance": tol,
    "rss_samples": len(samples),
}))
for k, v in checks.items():
    print(f"[soak] {k}: {'ok' if v else 'FAILED'}", file=sys.stderr)
sys.exit(0 if all(checks.values()) else 1)
EOF
