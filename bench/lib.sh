# shellcheck shell=bash
# Shared by bench/run.sh, bench/soak.sh and bench/faults.sh (sourced, not run).
#
# Builds the load generator and mathia-local (release), starts mathia-local on a free port
# against a fresh Postgres database and a unique Redis key prefix, and cleans everything up on
# exit. Environment:
#   MATHIA_BIN        use this mathia-local binary instead of building one (e.g. a debug build)
#   CARGO_TARGET_DIR  where `cargo build --release -p mathia-local` puts it (cargo's default: ./target)
#   LOADGEN_TARGET_DIR  the load generator's own target dir (default /root/.cache/mathia-bench-target)
#   LOADGEN_BIN       use this mathia-loadgen binary instead of building one (e.g. to compare two)
#   RESULTS           the JSON-lines file results are appended to (default bench/results/<date>.jsonl)
#   KEEP=1            keep the database, the Redis keys and the server log afterwards

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
TS=$(date +%Y%m%d_%H%M%S)_$$
RESULTS=${RESULTS:-$BENCH_DIR/results/$(date +%F).jsonl}
LOADGEN_TARGET_DIR=${LOADGEN_TARGET_DIR:-/root/.cache/mathia-bench-target}
LOADGEN=${LOADGEN_BIN:-$LOADGEN_TARGET_DIR/release/mathia-loadgen}
WORK=${WORK:-/tmp/mathia-bench-$TS}
PG_ADMIN_URL=postgres://postgres@127.0.0.1:5432/postgres
DB_NAME=mathia_bench_$TS
REDIS_PREFIX="mathia-bench-$TS:"
SERVER_PID=
PORT=
URL=

log() { printf '[bench] %s\n' "$*" >&2; }

bench_prepare() {
  mkdir -p "$WORK" "$(dirname "$RESULTS")"
  # Thousands of sockets: the loadgen and the server (started from this shell) need the fds.
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  log "open files limit: $(ulimit -n)"
  bash "$ROOT/scripts/services"

  if [ -n "${LOADGEN_BIN:-}" ]; then
    log "using $LOADGEN (LOADGEN_BIN)"
  else
    log "building the load generator (target dir $LOADGEN_TARGET_DIR)"
    CARGO_TARGET_DIR=$LOADGEN_TARGET_DIR cargo build --release --quiet \
      --manifest-path "$BENCH_DIR/loadgen/Cargo.toml"
  fi

  if [ -n "${MATHIA_BIN:-}" ]; then
    SERVER_BIN=$MATHIA_BIN
    log "using $SERVER_BIN (MATHIA_BIN)"
  else
    log "building mathia-local (release)"
    (cd "$ROOT" && cargo build --release --quiet -p mathia-local) || {
      log "building mathia-local failed; MATHIA_BIN=/path/to/mathia-local uses an existing binary"
      exit 1
    }
    SERVER_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/mathia-local
  fi
  [ -x "$SERVER_BIN" ] || { log "no server binary at $SERVER_BIN"; exit 1; }
  case "$SERVER_BIN" in
    */debug/*) SERVER_PROFILE=debug ;;
    */release/*) SERVER_PROFILE=release ;;
    *) SERVER_PROFILE=unknown ;;
  esac
  GIT_REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
  GIT_DIRTY=$([ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ] && echo true || echo false)
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

bench_start_server() {
  PORT=$(free_port)
  URL=http://127.0.0.1:$PORT
  SERVER_LOG=$WORK/server.log
  log "starting mathia-local on $URL (database $DB_NAME, Redis prefix $REDIS_PREFIX)"
  (
    cd "$ROOT" || exit 1
    export MATHIA_BIND=127.0.0.1:$PORT
    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DB_NAME
    export REDIS_URL=redis://127.0.0.1:6379
    export MATHIA_REDIS_PREFIX=$REDIS_PREFIX
    # Benchmarks send far more than a person: lift the 30 messages/minute/user limit.
    export MATHIA_RATE_LIMIT_PER_MIN=${MATHIA_RATE_LIMIT_PER_MIN:-1000000}
    # …and the per-socket frame budget (100 a second): one loadgen sender stands for many people.
    export MATHIA_WS_FRAMES_PER_S=${MATHIA_WS_FRAMES_PER_S:-1000000}
    export MATHIA_WS_FRAME_BURST=${MATHIA_WS_FRAME_BURST:-1000000}
    # …and the 1,024 connections an address may hold: the load generator opens up to 20,000
    # from each of its addresses.
    export MATHIA_CONNECTIONS_PER_ADDRESS=${MATHIA_CONNECTIONS_PER_ADDRESS:-1000000}
    # …and the 10 minutes a connection may pass no byte: the idle-socket curves' sockets say
    # nothing, and opening and measuring 50,000 of them may take longer than that.
    export MATHIA_IDLE_TIMEOUT_S=${MATHIA_IDLE_TIMEOUT_S:-86400}
    # …and the 16 sockets a person may hold: the idle-socket curves share 100 users.
    export MATHIA_SOCKETS_PER_PERSON=${MATHIA_SOCKETS_PER_PERSON:-1000000}
    # …and the 1,200 history pages a person may read a minute: the history-depth probe reads more.
    export MATHIA_HISTORY_PAGES_PER_MIN=${MATHIA_HISTORY_PAGES_PER_MIN:-1000000}
    # …and the 10 welcome credits an address gets a day: every load-generator user signs up
    # from this one, and the assistant scenarios bill their workspaces.
    export MATHIA_WELCOME_CREDITS_PER_ADDRESS_PER_DAY=${MATHIA_WELCOME_CREDITS_PER_ADDRESS_PER_DAY:-1000000}
    export MATHIA_MASTER_KEY=${MATHIA_MASTER_KEY:-$(python3 -c 'import os, base64; print(base64.b64encode(os.urandom(32)).decode())')}
    export MATHIA_STATIC_DIR=$ROOT/static
    export RUST_LOG=${SERVER_RUST_LOG:-warn}
    # Local backend always; the AI model is whatever the caller exported (offline responder if none).
    unset AWS_ENDPOINT_URL MATHIA_BACKEND
    exec "$SERVER_BIN"
  ) >"$SERVER_LOG" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 120); do
    if curl -fsS "$URL/healthz" >/dev/null 2>&1; then
      log "server up (pid $SERVER_PID)"
      return 0
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      log "server exited during start:"; tail -n 30 "$SERVER_LOG" >&2; exit 1
    fi
    sleep 0.5
  done
  log "server did not answer /healthz in 60 s:"; tail -n 30 "$SERVER_LOG" >&2; exit 1
}

bench_stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.25; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=
}

bench_cleanup() {
  local rc=${1:-$?}
  bench_stop_server
  if [ "${KEEP:-0}" = 1 ]; then
    log "kept database $DB_NAME, Redis prefix $REDIS_PREFIX and $WORK"
  else
    psql "$PG_ADMIN_URL" -qAtc "DROP DATABASE IF EXISTS \"$DB_NAME\" WITH (FORCE)" >/dev/null 2>&1 ||
      log "could not drop database $DB_NAME"
    redis-cli -h 127.0.0.1 -p 6379 --scan --pattern "${REDIS_PREFIX}*" 2>/dev/null |
      xargs -r -n 500 redis-cli -h 127.0.0.1 -p 6379 del >/dev/null 2>&1 || true
    if [ $rc -eq 0 ]; then rm -rf "$WORK"; else log "server log kept in $WORK"; fi
  fi
  return $rc
}

# One JSON line describing the machine and the build, so results can be compared.
bench_env_line() {
  python3 - <<EOF >>"$RESULTS"
import json, os, platform, subprocess, time
def sh(*a):
    try: return subprocess.run(a, capture_output=True, text=True).stdout.strip()
    except Exception: return None
print(json.dumps({
  "type": "env", "ts_unix_ms": int(time.time() * 1000), "script": "$(basename "$0")",
  "git": "$GIT_REV", "git_dirty": $([ "$GIT_DIRTY" = true ] && echo True || echo False),
  "server_bin": "$SERVER_BIN", "server_profile": "$SERVER_PROFILE",
  "quick": os.environ.get("QUICK", "0") == "1",
  "nproc": os.cpu_count(), "kernel": platform.release(),
  "cpu_model": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), None),
  "mem_total_kb": int(next(l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal"))),
  "rustc": sh("rustc", "--version"), "postgres": sh("psql", "--version"), "redis": sh("redis-server", "--version"),
  "loadavg": open("/proc/loadavg").read().split()[:3],
  # Postgres settings every server connection starts with (libpq's PGOPTIONS), when any.
  "pgoptions": os.environ.get("PGOPTIONS"),
}))
EOF
}

# loadgen <scenario> <mode> [args…]: runs the load generator against the server, appending its
# JSON lines to $RESULTS (and echoing them to $WORK/<scenario>.jsonl).
loadgen() {
  local scenario=$1; shift
  local mode=$1; shift
  log "scenario $scenario: mathia-loadgen $mode $*"
  "$LOADGEN" "$mode" --url "$URL" --server-pid "$SERVER_PID" --json --scenario "$scenario" \
    --meta "git=$GIT_REV" --meta "git_dirty=$GIT_DIRTY" --meta "server_profile=$SERVER_PROFILE" \
    --meta "quick=${QUICK:-0}" --meta "ws_frame_budget=${MATHIA_WS_FRAMES_PER_S:-lifted}/s,${MATHIA_WS_FRAME_BURST:-lifted}" "$@" \
    | tee -a "$WORK/$scenario.jsonl" >>"$RESULTS"
  return "${PIPESTATUS[0]}"
}
