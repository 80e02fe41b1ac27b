#!/usr/bin/env bash
# What one chat message asks of AWS, and what 1,000,000 of them cost at list prices.
#
# Starts moto and the release `mathia-local emulate` (the eight function binaries behind
# emulated API Gateway, SQS event source mappings and EventBridge) on loopback, puts 10 people
# with open sockets in one room, and has `mathia-loadgen aws-cost` send 200 plain messages
# round-robin. The emulator's counters before and after give the AWS calls, PostToConnection
# calls and function durations per message; the cost model below prices them next to a model
# of AWS's simple-websockets-chat-app. See bench/README.md and bench/RESULTS.md.
#
#   bash bench/aws-cost.sh                       # 2 runs, each on a fresh stack
#   RUNS=1 MESSAGES=500 bash bench/aws-cost.sh
#   MATHIA_BIN=/path/to/release/mathia-local bash bench/aws-cost.sh   # no build; the function
#                                                # binaries must be beside it (or MATHIA_FUNCTIONS_DIR)
#   SERVER_GIT_REV=<sha> MATHIA_BIN=…            # the binaries are a build of that commit
#
# Environment: RUNS (2), CLIENTS (10), MESSAGES (200), WARMUP (20), RATE (10 msg/s),
# IDLE_S (10), SCHEDULER_S (1), SERVER_RUST_LOG (info, as infra/template.yaml sets it),
# RESULTS, KEEP=1 (keep the databases, Redis keys and logs). One `env` line and one `aws_cost`
# line per run go to bench/results/<date>.jsonl; a summary and the cost table go to stdout.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

RUNS=${RUNS:-2}
CLIENTS=${CLIENTS:-10}
MESSAGES=${MESSAGES:-200}
WARMUP=${WARMUP:-20}
RATE=${RATE:-10}
IDLE_S=${IDLE_S:-10}
SCHEDULER_S=${SCHEDULER_S:-1}
MOTO_SERVER=${MOTO_SERVER:-$ROOT/.venv-moto/bin/moto_server}
MOTO_PID=
CURRENT_DB=
CURRENT_PREFIX=

stop_stack() {
  bench_stop_server
  if [ -n "$MOTO_PID" ] && kill -0 "$MOTO_PID" 2>/dev/null; then
    kill -TERM "$MOTO_PID" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$MOTO_PID" 2>/dev/null || break; sleep 0.25; done
    kill -KILL "$MOTO_PID" 2>/dev/null || true
    wait "$MOTO_PID" 2>/dev/null || true
  fi
  MOTO_PID=
  if [ -n "$CURRENT_DB" ] && [ "${KEEP:-0}" != 1 ]; then
    psql "$PG_ADMIN_URL" -qAtc "DROP DATABASE IF EXISTS \"$CURRENT_DB\" WITH (FORCE)" >/dev/null 2>&1 ||
      log "could not drop database $CURRENT_DB"
    redis-cli -h 127.0.0.1 -p 6379 --scan --pattern "${CURRENT_PREFIX}*" 2>/dev/null |
      xargs -r -n 500 redis-cli -h 127.0.0.1 -p 6379 del >/dev/null 2>&1 || true
  fi
  CURRENT_DB=
}

cleanup() {
  local rc=$?
  stop_stack
  if [ "${KEEP:-0}" = 1 ] || [ $rc -ne 0 ]; then log "logs kept in $WORK"; else rm -rf "$WORK"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$WORK" "$(dirname "$RESULTS")"
ulimit -n 65536 2>/dev/null || true
bash "$ROOT/scripts/services"
[ -x "$MOTO_SERVER" ] || bash "$ROOT/scripts/aws-tools"

log "building the load generator (target dir $LOADGEN_TARGET_DIR)"
CARGO_TARGET_DIR=$LOADGEN_TARGET_DIR timeout 1800 cargo build --release --quiet \
  --manifest-path "$BENCH_DIR/loadgen/Cargo.toml"
if [ -n "${MATHIA_BIN:-}" ]; then
  SERVER_BIN=$MATHIA_BIN
else
  log "building mathia-local and the eight function binaries (release)"
  (cd "$ROOT" && timeout 3600 cargo build --release --quiet --workspace --bins) || {
    log "the build failed; MATHIA_BIN=/path/to/release/mathia-local uses existing binaries"
    exit 1
  }
  SERVER_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/mathia-local
fi
[ -x "$SERVER_BIN" ] || { log "no server binary at $SERVER_BIN"; exit 1; }
case "$SERVER_BIN" in */release/*) SERVER_PROFILE=release ;; */debug/*) SERVER_PROFILE=debug ;; *) SERVER_PROFILE=unknown ;; esac
BENCH_GIT=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
BENCH_DIRTY=$([ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ] && echo true || echo false)
# The revision the server binaries were built from: this checkout's, or SERVER_GIT_REV when
# MATHIA_BIN points at a build of a clean export of some commit.
if [ -n "${SERVER_GIT_REV:-}" ]; then
  GIT_REV=$SERVER_GIT_REV GIT_DIRTY=false
else
  GIT_REV=$BENCH_GIT GIT_DIRTY=$BENCH_DIRTY
fi
CPU_MODEL=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n1)
NPROC=$(nproc)

# Starts moto and the emulator for run $1; sets SITE, SERVER_PID, TABLE, MOTO_URL.
start_stack() {
  local run=$1
  local moto_port
  moto_port=$(free_port)
  MOTO_URL=http://127.0.0.1:$moto_port
  "$MOTO_SERVER" -H 127.0.0.1 -p "$moto_port" >"$WORK/moto-$run.log" 2>&1 &
  MOTO_PID=$!
  for _ in $(seq 1 100); do curl -fsS "$MOTO_URL/moto-api/" >/dev/null 2>&1 && break; sleep 0.2; done
  curl -fsS "$MOTO_URL/moto-api/" >/dev/null 2>&1 || { log "moto did not start"; exit 1; }

  CURRENT_DB=mathia_awscost_${TS}_$run
  CURRENT_PREFIX="mathia-awscost-${TS}_$run:"
  local queue_prefix=awscost${run}-
  TABLE=${queue_prefix}connections
  EMU_LOG=$WORK/emulator-$run.log
  : >"$EMU_LOG"
  (
    cd "$ROOT" || exit 1
    export MATHIA_BIND=127.0.0.1:0 MATHIA_EMULATOR_WS_BIND=127.0.0.1:0 MATHIA_EMULATOR_AWS_BIND=127.0.0.1:0
    export AWS_ENDPOINT_URL=$MOTO_URL AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/$CURRENT_DB
    export REDIS_URL=redis://127.0.0.1:6379 MATHIA_REDIS_PREFIX=$CURRENT_PREFIX
    export MATHIA_MASTER_KEY
    MATHIA_MASTER_KEY=$(python3 -c 'import os, base64; print(base64.b64encode(os.urandom(32)).decode())')
    export MATHIA_SCHEDULER_INTERVAL_S=$SCHEDULER_S
    export MATHIA_CONNECTIONS_TABLE=$TABLE MATHIA_QUEUE_PREFIX=$queue_prefix MATHIA_FILES_BUCKET=${queue_prefix}files
    # The benchmark sends faster than a person: lift the 30 messages/minute limit.
    export MATHIA_RATE_LIMIT_PER_MIN=1000000
    export MATHIA_SOCKETS_PER_PERSON=1000000 MATHIA_HISTORY_PAGES_PER_MIN=1000000
    export MATHIA_STATIC_DIR=$ROOT/static
    # The functions inherit it: info is what infra/template.yaml sets, so the log bytes are real.
    export RUST_LOG=${SERVER_RUST_LOG:-info}
    unset MATHIA_BACKEND MATHIA_AI_BASE_URL
    exec "$SERVER_BIN" emulate
  ) >>"$EMU_LOG" 2>&1 &
  SERVER_PID=$!
  local line=
  for _ in $(seq 1 180); do
    line=$(grep -m1 -a '^mathia emulate: site ' "$EMU_LOG" || true)
    [ -n "$line" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { log "the emulator exited:"; tail -n 30 "$EMU_LOG" >&2; exit 1; }
    sleep 0.5
  done
  [ -n "$line" ] || { log "the emulator was not ready within 90 s:"; tail -n 30 "$EMU_LOG" >&2; exit 1; }
  SITE=$(sed -E 's/^mathia emulate: site ([^ ]+) websocket .*/\1/' <<<"$line")
  log "run $run: $line (pid $SERVER_PID, moto $MOTO_URL, database $CURRENT_DB)"
}

bench_env_line
for run in $(seq 1 "$RUNS"); do
  start_stack "$run"
  out=$WORK/aws-cost-$run.json
  # The loadgen bounds its own waits (--timeout); `timeout` bounds the whole run.
  timeout 600 "$LOADGEN" aws-cost --url "$SITE" --json --scenario aws-cost \
    --clients "$CLIENTS" --messages "$MESSAGES" --warmup "$WARMUP" --rate "$RATE" \
    --idle-window "$IDLE_S" --emulator-pid "$SERVER_PID" --log-file "$EMU_LOG" \
    --dynamodb-url "$MOTO_URL" --connections-table "$TABLE" \
    --meta "git=$GIT_REV" --meta "git_dirty=$GIT_DIRTY" --meta "server_profile=$SERVER_PROFILE" \
    --meta "bench_git=$BENCH_GIT" --meta "bench_git_dirty=$BENCH_DIRTY" \
    --meta "cpu_model=$CPU_MODEL" --meta "nproc=$NPROC" --meta "run=$run" \
    --meta "scheduler_interval_s=$SCHEDULER_S" --meta "rust_log=${SERVER_RUST_LOG:-info}" >"$out" || {
    rc=$?
    cat "$out" >>"$RESULTS"
    log "run $run failed (exit $rc); emulator log: $EMU_LOG"
    exit $rc
  }
  cat "$out" >>"$RESULTS"
  stop_stack
done

# The summary and the price list, from the lines just written.
python3 - "$WORK" "$RUNS" <<'EOF'
import json, math, sys

work, runs = sys.argv[1], int(sys.argv[2])
lines = [json.loads(open(f"{work}/aws-cost-{i}.json").read()) for i in range(1, runs + 1)]

# us-east-1 list prices, x86. Checked 2026-12-02 (see bench/RESULTS.md for the sources and
# which of them could not be read on AWS's own pages).
PRICE = {
    "lambda_request": 0.20 / 1e6,            # per invocation
    "lambda_gb_s": 0.0000166667,             # per GB-second, x86, first 6 billion GB-s a month
    "ws_message": 1.00 / 1e6,                # per message (sent or received), 32 KB increments, first 1 billion
    "ws_connection_minute": 0.25 / 1e6,      # per connection-minute
    "ddb_rru": 0.125 / 1e6,                  # on-demand read request unit
    "ddb_wru": 0.625 / 1e6,                  # on-demand write request unit
    "sqs_request": 0.40 / 1e6,               # standard queue, per request (64 KB chunks)
    "logs_gb": 0.50,                         # CloudWatch Logs ingestion, per GB (standard)
}
MEMORY_GB = 256 / 1024                      # infra/template.yaml, and the sample's template
MILLION = 1_000_000
PLATFORM_LOG_BYTES = 330                    # START + END + REPORT lines per invocation (modelled)

def pm(line, *path, default=0.0):
    v = line["per_message"]
    for p in path:
        v = v.get(p, {}) if isinstance(v, dict) else {}
    return v if isinstance(v, (int, float)) else default

def mathia_costs(line):
    """Per-message costs, each a (label, units per message, unit price) triple."""
    aws = line["per_message"]["aws_calls"]
    calls = {k: v["per_message"] for k, v in aws.items()}
    fns = line["functions"]
    items = line.get("dynamodb_items") or {}
    invocations = sum(v["per_message"] or 0 for k, v in fns.items() if k != "scheduler")
    billed_ms = sum(v["billed_ms_per_message"] or 0 for k, v in fns.items() if k != "scheduler")
    ws_msgs = line["per_message"]["websocket_messages"]["total"]
    # Reads: one consistent Query of the sender's connection items, one eventually consistent
    # Query of the room's index (dynamo.rs); billed on the bytes read, in 4 KB units.
    rru = 0.0
    queries = calls.get("dynamodb.Query", 0)
    if queries:
        rru = math.ceil(items["largest_connection_bytes"] / 4096) + 0.5 * math.ceil(items["largest_room_index_bytes"] / 4096)
        rru *= queries / 2  # the model is for two Queries a message; scaled if more were measured
    rru += 0.5 * calls.get("dynamodb.GetItem", 0)
    wru = sum(calls.get(k, 0) for k in ("dynamodb.PutItem", "dynamodb.UpdateItem", "dynamodb.DeleteItem"))
    sqs_direct = sum(v for k, v in calls.items() if k.startswith("sqs."))
    # The event source mapping's ReceiveMessage and DeleteMessageBatch per worker batch
    # (Lambda's pollers are billed as SQS requests; the emulator's own polling is not counted).
    worker_batches = sum((fns.get(f) or {}).get("per_message") or 0 for f in ("moderation-worker", "ai-worker", "reminder-worker"))
    sqs = sqs_direct + 2 * worker_batches
    log_bytes = (line["per_message"].get("log") or {}).get("bytes_per_message", 0) + PLATFORM_LOG_BYTES * invocations
    return [
        ("Lambda requests", invocations, PRICE["lambda_request"]),
        ("Lambda GB-seconds", billed_ms / 1000 * MEMORY_GB, PRICE["lambda_gb_s"]),
        ("API Gateway WebSocket messages", ws_msgs, PRICE["ws_message"]),
        ("DynamoDB read request units", rru, PRICE["ddb_rru"]),
        ("DynamoDB write request units", wru, PRICE["ddb_wru"]),
        ("SQS requests", sqs, PRICE["sqs_request"]),
        ("CloudWatch Logs ingestion (GB)", log_bytes / 1e9, PRICE["logs_gb"]),
    ]

def sample_costs(table_connections, fanout, ms):
    """simple-websockets-chat-app: one `sendmessage` invocation per message, which Scans the
    whole connections table (items of one attribute, connectionId, 12 + 16 bytes) and posts
    to every connection in it; nothing is stored, nothing answers the sender."""
    scan_bytes = table_connections * (12 + 16)
    return [
        ("Lambda requests", 1, PRICE["lambda_request"]),
        ("Lambda GB-seconds", ms / 1000 * MEMORY_GB, PRICE["lambda_gb_s"]),
        ("API Gateway WebSocket messages", 1 + fanout, PRICE["ws_message"]),
        ("DynamoDB read request units", 0.5 * math.ceil(scan_bytes / 4096), PRICE["ddb_rru"]),
        ("DynamoDB write request units", 0, PRICE["ddb_wru"]),
        ("SQS requests", 0, PRICE["sqs_request"]),
        ("CloudWatch Logs ingestion (GB)", PLATFORM_LOG_BYTES / 1e9, PRICE["logs_gb"]),
    ]

def total(rows):
    return sum(u * p for _, u, p in rows) * MILLION

print()
for line in lines:
    meta = line["meta"]
    print(f"== aws-cost run {meta.get('run')} — server binaries of git {meta.get('git')}{' (dirty)' if meta.get('git_dirty') == 'true' else ''}, "
          f"{meta.get('cpu_model')}, {meta.get('nproc')} cores")
    print(f"   {line['messages']} messages to {line['room_size']} sockets in one room; delivered to every socket: "
          f"{line['delivered_all']} ({line['acks']} acks, errors {line['errors'] or 'none'}); "
          f"{line['scheduler_ticks_in_window']:.0f} scheduler ticks in the {line['window_s']} s window")
    print("   per message:")
    for k, v in line["per_message"]["aws_calls"].items():
        print(f"     {k:<34} {v['per_message']:>8.3f}   (window {v['window']:.0f}, scheduler {v['scheduler_estimate']:.0f})")
    for k, v in line["per_message"]["management_api"].items():
        print(f"     management API {k:<19} {v['per_message']:>8.3f}")
    ws = line["per_message"]["websocket_messages"]
    print(f"     WebSocket messages {'(1 in + out)':<15} {ws['total']:>8.3f}")
    log = line["per_message"].get("log") or {}
    if log:
        print(f"     function log bytes {'':<15} {log['bytes_per_message']:>8.1f}   ({log['lines_per_message']} lines)")
    print("   functions (window only):")
    for f, v in line["functions"].items():
        d = v["duration_ms"]
        per = f"{v['per_message']:.3f}/msg" if v["per_message"] is not None else "per tick"
        print(f"     {f:<18} {v['invocations']:>5.0f} inv ({per}), p50 {d['p50']} ms, p99 {d['p99']} ms, mean {d['mean']} ms "
              f"({d.get('n_over_40ms')} of {d['n']} took 40 ms or more), cpu {v['cpu_ms_per_invocation']} ms/inv, cold starts {v['cold_starts']:.0f}")
    print(f"   cold starts: setup {line['setup']['cold_starts']}, warm-up {line['warmup']['cold_starts']}, window {line['cold_starts_in_window'] or 'none'}")
    u = line.get("usage_window") or {}
    if u:
        print(f"   machine during the window: {u.get('system_cpu_busy_pct')} % busy (of all cores), emulator {u['server'].get('cpu_pct')} %, "
              f"Postgres {u.get('postgres_cpu_pct')} %, Redis {u.get('redis_cpu_pct')} %, load generator {u.get('loadgen_cpu_pct')} %, "
              f"functions + moto + anything else {u.get('other_cpu_pct')} % (of one core); load average {line.get('loadavg_after')}")
    items = line.get("dynamodb_items") or {}
    if items:
        print(f"   registry items: META {items['meta']}, ROOM {items['room']}, sender's connection "
              f"{items['largest_connection_bytes']} B, room index {items['largest_room_index_bytes']} B")
    print()

last = lines[-1]
ws_mean = last["functions"]["ws-message"]["duration_ms"]["mean"]
print(f"Cost of 1,000,000 messages, us-east-1 list prices, 256 MB x86 (Mathia: run {last['meta'].get('run')}, measured; sample: modelled)")
cols = [
    ("Mathia, room of 10", mathia_costs(last)),
    ("sample, 10 connected", sample_costs(10, 10, ws_mean)),
    ("sample, 1,000 connected", sample_costs(1000, 1000, ws_mean)),
]
print(f"   {'':<32}" + "".join(f"{c:>26}" for c, _ in cols))
for i, (label, _, price) in enumerate(cols[0][1]):
    print(f"   {label:<32}" + "".join(f"{rows[i][1]:>13.4g} ${rows[i][1] * price * MILLION:>10.4f}" for _, rows in cols))
print(f"   {'total':<32}" + "".join(f"{'':>13} ${total(rows):>10.2f}" for _, rows in cols))
print(f"   (the sample's Lambda duration is assumed equal to Mathia's measured ws-message mean, {ws_mean} ms)")
items = last.get("dynamodb_items") or {}
if items:
    room_item = items["room"]["mean_bytes"]
    print(f"   Mathia's room read at 1,000 members: 1,000 index items of {room_item} B = "
          f"{0.5 * math.ceil(1000 * room_item / 4096)} RRU; the sample's Scan of 1,000 connections: "
          f"{0.5 * math.ceil(1000 * 28 / 4096)} RRU, whatever the fan-out")
print(f"   connection minutes, per person connected for an hour: 60 x ${PRICE['ws_connection_minute'] * MILLION}/M = ${60 * PRICE['ws_connection_minute']:.6f}")
EOF
log "results appended to $RESULTS"
