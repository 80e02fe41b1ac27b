#!/usr/bin/env bash
# Where the server's time goes near saturation: perf samples mathia-local (release, symbols kept)
# while 10 rooms × 10 people carry RATE msg/s per sender (default 300: 30,000 deliveries/s, near
# the knee on 2 cores), and writes the hottest symbols, self time, to
# bench/results/profile-<date>.txt. perf uses the cpu-clock software event where the machine has
# no hardware counters.
#
#   MATHIA_BIN=/path/to/mathia-local bash bench/profile.sh
#   RATE=200 DURATION=20 bash bench/profile.sh
#   ROOMS=1 CLIENTS=1000 RATE=10 SKIP_S=20 bash bench/profile.sh   # one room of 1,000, sampled
#                                  after the first 20 s (the sign-ups' password hashing)
#   MODE=connect-rate bash bench/profile.sh   # ticket + handshake + close, 16 at a time
#   PERF_KEEP=/tmp/perf.data bash bench/profile.sh   # keep the samples (e.g. for perf report --children)
#   SCOPE=machine PROFILE_TAG=machine bash bench/profile.sh   # every process (Postgres, Redis, the
#                                  load generator, the kernel), by command, library and symbol
set -euo pipefail
source "$(dirname "$0")/lib.sh"
RATE=${RATE:-300}
DURATION=${DURATION:-20}
ROOMS=${ROOMS:-10}
CLIENTS=${CLIENTS:-10}
SKIP_S=${SKIP_S:-0}
FREQ=${FREQ:-499}
TOP=${TOP:-60}
MODE=${MODE:-fanout}
SCOPE=${SCOPE:-server}
OUT=$BENCH_DIR/results/profile-$(date -u +%F)${PROFILE_TAG:+-$PROFILE_TAG}.txt
bench_prepare
trap 'bench_cleanup $?' EXIT
bench_start_server
bench_env_line
DELAY=()
[ "$SKIP_S" -gt 0 ] && DELAY=(-D "$((SKIP_S * 1000))")
case $SCOPE in
  server) TARGET=(-g -p "$SERVER_PID"); SORT=dso,symbol ;;
  machine) TARGET=(-a); SORT=comm,dso,symbol ;;
  *) log "unknown SCOPE '$SCOPE' (server, machine)"; exit 2 ;;
esac
perf record -F "$FREQ" "${DELAY[@]}" -o "$WORK/perf.data" "${TARGET[@]}" -- sleep "$((DURATION + 8))" >"$WORK/perf.log" 2>&1 &
PERF_PID=$!
case $MODE in
  fanout) loadgen profile fanout --rooms "$ROOMS" --clients "$CLIENTS" --senders 1 --rate "$RATE" --duration "$DURATION" --meta "profile=perf" ;;
  connect-rate) loadgen profile connect-rate --duration "$DURATION" --users 20 --concurrency 16 --meta "profile=perf" ;;
  *) log "unknown MODE '$MODE' (fanout, connect-rate)"; exit 2 ;;
esac
wait "$PERF_PID" || true
{
  if [ "$MODE" = fanout ]; then
    echo "# mathia-local at $RATE msg/s per sender, $ROOMS rooms x $CLIENTS people, $DURATION s; git $GIT_REV; $(date -u +%FT%TZ)"
  else
    echo "# mathia-local under $MODE (16 at a time), $DURATION s; git $GIT_REV; $(date -u +%FT%TZ)"
  fi
  echo "# perf report --no-children --sort $SORT (self time; scope: $SCOPE), top $TOP"
  perf report -i "$WORK/perf.data" --no-children --sort "$SORT" --stdio --percent-limit 0.2 2>/dev/null |
    grep -v "^$" | grep -E "^ +[0-9]" | sed -E "s/[[:space:]]+-[[:space:]]+-[[:space:]]*$//; s/[[:space:]]+$//" | head -"$TOP"
} >"$OUT"
log "profile written to $OUT"
if [ -n "${PERF_KEEP:-}" ]; then cp "$WORK/perf.data" "$PERF_KEEP" && log "samples kept in $PERF_KEEP"; fi
