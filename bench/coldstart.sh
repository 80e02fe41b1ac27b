#!/usr/bin/env bash
# Lambda cold start: each function binary (release build), from exec to its first
# `GET …/runtime/invocation/next` on a local stand-in for the Runtime API, 20 runs each, with
# binary sizes. A fresh mathia-local creates and migrates the database the functions connect to.
#
#   bash bench/coldstart.sh               # local backend (Postgres + Redis), 20 runs
#   RUNS=50 bash bench/coldstart.sh
#   BIN_DIR=/path/to/release bash bench/coldstart.sh   # skip the build
set -euo pipefail
source "$(dirname "$0")/lib.sh"

bench_prepare
trap bench_cleanup EXIT
if [ -z "${BIN_DIR:-}" ]; then
  log "building the function binaries (release)"
  (cd "$ROOT" && cargo build --release --quiet --workspace --bins)
  BIN_DIR=${CARGO_TARGET_DIR:-$ROOT/target}/release
fi
bench_start_server
bench_env_line

export DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DB_NAME
export REDIS_URL=redis://127.0.0.1:6379
export MATHIA_REDIS_PREFIX=$REDIS_PREFIX
export MATHIA_MASTER_KEY=${MATHIA_MASTER_KEY:-$(python3 -c 'import os, base64; print(base64.b64encode(os.urandom(32)).decode())')}
python3 "$BENCH_DIR/coldstart.py" --bin-dir "$BIN_DIR" --runs "${RUNS:-20}" --backend local --json \
  | tee -a "$WORK/coldstart.jsonl" >>"$RESULTS"
log "results appended to $RESULTS"
