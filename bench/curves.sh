#!/usr/bin/env bash
# Scale curves: how Mathia's cost grows with the work. Each point runs against a fresh
# mathia-local (release build), a fresh database and Redis prefix, with the same load generator
# and probe as bench/run.sh (latency from the send, server CPU and RSS beside it), and appends
# JSON lines to bench/results/<date>.jsonl; `python3 bench/plot_curves.py` draws them.
#
#   bash bench/curves.sh                    # every curve
#   bash bench/curves.sh room-size idle     # only those
#   QUICK=1 bash bench/curves.sh room-size  # shorter runs
#   ROOM_SIZES="1000" ROOM_RATE=30 bash bench/curves.sh room-size   # only that point, 30 msg/s
#   MATHIA_BIN=/path/to/mathia-local bash bench/curves.sh
#
# Curves (see bench/RESULTS.md for the goals):
#   room-size   one room of 100, 500, 1,000 and 2,000 people, one sender at 10 msg/s
#   many-rooms  10, 100 and 1,000 rooms of 5 people, 200 msg/s in all (one sender per room)
#   many-rooms-multi  10, 100, 1,000 and 10,000 rooms of 5 people, each person in 5 of them on
#               one socket (as people chat in several rooms at once), 200 msg/s in all: a
#               socket per person, so 10,000 rooms take 10,000 sockets, not 50,000
#   idle        5,000, 10,000 and 20,000 authenticated idle sockets (RSS per socket, opens/s);
#               IDLE_SIZES="5000 20000 50000" for others (past 20,000, several source addresses)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ALL=(room-size many-rooms many-rooms-multi idle)
CURVES=("$@")
[ ${#CURVES[@]} -eq 0 ] && CURVES=("${ALL[@]}")
for c in "${CURVES[@]}"; do
  case " ${ALL[*]} " in *" $c "*) ;; *) echo "unknown curve '$c' (known: ${ALL[*]})" >&2; exit 2 ;; esac
done
if [ "${QUICK:-0}" = 1 ]; then DURATION=5; HOLD=3; else DURATION=20; HOLD=10; fi

bench_prepare
BASE_DB=$DB_NAME
BASE_PREFIX=$REDIS_PREFIX
trap 'bench_cleanup $?' EXIT
failed=()

# point <name> <loadgen mode and args…>: one run against a server of its own.
point() {
  local name=$1; shift
  bench_stop_server
  psql "$PG_ADMIN_URL" -qAtc "DROP DATABASE IF EXISTS \"$DB_NAME\" WITH (FORCE)" >/dev/null 2>&1 || true
  DB_NAME=${BASE_DB}_${name//-/_}
  REDIS_PREFIX="${BASE_PREFIX}${name}:"
  bench_start_server
  bench_env_line
  loadgen "$name" "$@" --meta "curve=$CURVE" || failed+=("$name")
}

for CURVE in "${CURVES[@]}"; do
  case $CURVE in
    room-size)
      for n in ${ROOM_SIZES:-100 500 1000 2000}; do
        point "room-$n" fanout --rooms 1 --clients "$n" --senders 1 --rate "${ROOM_RATE:-10}" --duration "$DURATION" --meta "x=$n"
      done ;;
    many-rooms)
      for r in 10 100 1000; do
        point "rooms-$r" fanout --rooms "$r" --clients 5 --senders 1 \
          --rate "$(python3 -c "print(200 / $r)")" --duration "$DURATION" --meta "x=$r"
      done ;;
    many-rooms-multi)
      for r in ${MULTI_ROOMS:-10 100 1000 10000}; do
        point "multi-$r" fanout --rooms "$r" --clients 5 --rooms-per-client 5 --senders 1 \
          --rate "$(python3 -c "print(200 / $r)")" --duration "$DURATION" --meta "x=$r"
      done ;;
    idle)
      # One source address reaches one server port from about 28,000 ephemeral ports
      # (net.ipv4.ip_local_port_range): past 20,000 sockets they are opened from several
      # loopback addresses in turn, one per IDLE_PER_SOURCE (20,000). The server and the load
      # generator each need an open-files limit above the count (lib.sh raises it as far as the
      # hard limit allows).
      per=${IDLE_PER_SOURCE:-20000}
      for n in ${IDLE_SIZES:-5000 10000 20000}; do
        point "idle-$n" idle --connections "$n" --users 100 --hold "$HOLD" \
          --sources "$(( (n + per - 1) / per ))" --meta "x=$n"
      done ;;
  esac
done

log "results appended to $RESULTS"
if [ ${#failed[@]} -gt 0 ]; then
  log "failed: ${failed[*]}"
  exit 1
fi
