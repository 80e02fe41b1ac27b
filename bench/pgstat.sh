#!/usr/bin/env bash
# Where Postgres's time goes at a fixed load: 10 rooms × 10 people carry RATE msg/s per sender
# for DURATION s against a fresh mathia-local, `pg_stat_statements` is reset SKIP_S s in, and
# at the end the statements of the run's database are written, most total time first, with
# their calls, plans made, rows and µs of execution (and of planning) per call and per row, to
# bench/results/pgstat-<date>[-<PROFILE_TAG>].txt. The load generator's own line goes to the
# results file as usual (its `usage` holds each process's CPU).
#
# Needs Postgres started with `shared_preload_libraries = 'pg_stat_statements'` (a restart;
# `pg_stat_statements.track_planning = on` for planning times); the script says so otherwise.
#
#   MATHIA_BIN=/path/to/mathia-local RATE=300 bash bench/pgstat.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"
RATE=${RATE:-300}
DURATION=${DURATION:-30}
SKIP_S=${SKIP_S:-10}
ROOMS=${ROOMS:-10}
CLIENTS=${CLIENTS:-10}
TOP=${TOP:-15}
OUT=$BENCH_DIR/results/pgstat-$(date -u +%F)${PROFILE_TAG:+-$PROFILE_TAG}.txt
if ! psql "$PG_ADMIN_URL" -qAtc "SHOW shared_preload_libraries" | grep -q pg_stat_statements; then
  log "Postgres was not started with shared_preload_libraries = 'pg_stat_statements'"; exit 2
fi
psql "$PG_ADMIN_URL" -qAtc "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null
bench_prepare
trap 'bench_cleanup $?' EXIT
bench_start_server
bench_env_line
(sleep "$SKIP_S"; psql "$PG_ADMIN_URL" -qAtc "SELECT pg_stat_statements_reset()" >/dev/null) &
RESET_PID=$!
loadgen pgstat fanout --rooms "$ROOMS" --clients "$CLIENTS" --senders 1 --rate "$RATE" --duration "$DURATION" \
  --meta "profile=pgstat"
wait "$RESET_PID"
{
  echo "# pg_stat_statements, $RATE msg/s per sender, $ROOMS rooms x $CLIENTS people, the last $((DURATION - SKIP_S)) of $DURATION s;" \
    "server $SERVER_BIN; git $GIT_REV; $(date -u +%FT%TZ)"
  psql "$PG_ADMIN_URL" -P pager=off -c "
    SELECT calls, plans, rows, round(total_exec_time::numeric, 1) AS exec_ms,
           round((1000 * total_exec_time / nullif(calls, 0))::numeric, 1) AS exec_us_per_call,
           round((1000 * total_exec_time / nullif(rows, 0))::numeric, 1) AS exec_us_per_row,
           round((1000 * total_plan_time / nullif(calls, 0))::numeric, 1) AS plan_us_per_call,
           left(regexp_replace(query, '\s+', ' ', 'g'), 90) AS statement
    FROM pg_stat_statements
    WHERE dbid = (SELECT oid FROM pg_database WHERE datname = '$DB_NAME')
    ORDER BY total_exec_time + total_plan_time DESC LIMIT $TOP"
} >"$OUT"
cat "$OUT" >&2
log "written to $OUT"
