#!/usr/bin/env bash
# Runs Mathia's benchmark scenarios against a fresh mathia-local (release build) and appends
# one JSON line per result to bench/results/<date>.jsonl. See bench/README.md.
#
#   bash bench/run.sh                    # every scenario: w1 w2 saturate idle connect-rate ai ai-model w1-flood1 w1-flood10 w1-join-flood room1000-typing-flood room1000-presence-flood
#   bash bench/run.sh w1 idle            # only those
#   QUICK=1 bash bench/run.sh w1         # shortened durations and sizes (a smoke run)
#   MATHIA_BIN=/path/to/mathia-local bash bench/run.sh   # skip building the server
#
# Each scenario runs against the same server process; run one scenario per invocation for
# measurements that must not be influenced by an earlier one.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ALL=(w1 w2 saturate idle connect-rate ai ai-model w1-flood1 w1-flood10 w1-join-flood room1000-typing-flood room1000-presence-flood)
SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -eq 0 ] && SCENARIOS=("${ALL[@]}")
for s in "${SCENARIOS[@]}"; do
  case " ${ALL[*]} " in *" $s "*) ;; *) echo "unknown scenario '$s' (known: ${ALL[*]})" >&2; exit 2 ;; esac
done

if [ "${QUICK:-0}" = 1 ]; then
  FANOUT_S=5; STEP_S=2; BISECT=1; SAT_MAX=1600; IDLE_N=500; HOLD_S=3; CONNECT_S=3; PROMPTS=5
else
  FANOUT_S=20; STEP_S=10; BISECT=3; SAT_MAX=100000; IDLE_N=5000; HOLD_S=10; CONNECT_S=10; PROMPTS=20
fi
# EXTRA_ARGS: more mathia-loadgen flags for every scenario run (e.g. "--body-bytes 200").
read -r -a EXTRA <<<"${EXTRA_ARGS:-}"

bench_prepare
# The model runs only for ai-model. Under set -e a failing kill here would end the trap before
# the cleanup, leaving the server running and its database behind.
trap 'rc=$?; if [ -n "${MODEL_PID:-}" ]; then kill "$MODEL_PID" 2>/dev/null || true; fi; bench_cleanup "$rc"' EXIT
case " ${SCENARIOS[*]} " in
  *" ai-model "*) # The server talks to bench/fake_model.py: every scenario of this run does.
    MODEL_PORT=$(free_port)
    python3 "$BENCH_DIR/fake_model.py" "$MODEL_PORT" 40 20 >"$WORK/fake-model.log" 2>&1 &
    MODEL_PID=$!
    for _ in $(seq 1 50); do curl -fsS "http://127.0.0.1:$MODEL_PORT/" >/dev/null 2>&1 && break; sleep 0.1; done
    export MATHIA_AI_BASE_URL=http://127.0.0.1:$MODEL_PORT/v1
    log "fake model on $MATHIA_AI_BASE_URL (40 tokens, one every 20 ms)" ;;
esac
bench_start_server
bench_env_line

failed=()
for s in "${SCENARIOS[@]}"; do
  case $s in
    w1) # 10 rooms × 10 clients, 1 sender per room at 20 msg/s.
      loadgen w1 fanout --rooms 10 --clients 10 --senders 1 --rate 20 --duration "$FANOUT_S" "${EXTRA[@]}" || failed+=("$s") ;;
    w1-flood1|w1-flood10) # w1, while 1 (or 10: one per room) extra members flood every action
        # flat out. Meant for the production frame budget: see bench/flood.sh.
      loadgen "$s" fanout --rooms 10 --clients 10 --senders 1 --rate 20 --duration "$FANOUT_S" \
        --flooders "${s#w1-flood}" "${EXTRA[@]}" || failed+=("$s") ;;
    w1-join-flood) # w1, while one more person joins their room again and again from 16 sockets
        # (each join reads a page of history). Meant for the production frame budget and history
        # pages: MATHIA_WS_FRAMES_PER_S=100 MATHIA_WS_FRAME_BURST=200 MATHIA_HISTORY_PAGES_PER_MIN=1200
        # EXTRA_ARGS="--flood-rate 100".
      loadgen "$s" fanout --rooms 10 --clients 10 --senders 1 --rate 20 --duration "$FANOUT_S" \
        --flooders 1 --flood-sockets 16 --flood-actions join "${EXTRA[@]}" || failed+=("$s") ;;
    room1000-typing-flood|room1000-presence-flood) # 1 room × 1,000 clients, 1 sender at 10 msg/s,
        # while one more member sends typing starts and stops (or leaves and joins the room) flat
        # out. Meant for the production frame budget (see bench/flood.sh): 100 frames a second.
      actions=${s#room1000-}; actions=${actions%-flood}
      loadgen "$s" fanout --rooms 1 --clients 1000 --senders 1 --rate 10 --duration "$FANOUT_S" \
        --flooders 1 --flood-actions "$actions" "${EXTRA[@]}" || failed+=("$s") ;;
    w2) # 1 room × 200 clients, 1 sender at 10 msg/s.
      loadgen w2 fanout --rooms 1 --clients 200 --senders 1 --rate 10 --duration "$FANOUT_S" "${EXTRA[@]}" || failed+=("$s") ;;
    saturate) # 10 × 10, doubling then bisecting the offered load.
      loadgen saturation saturate --rooms 10 --clients 10 --senders 1 --step-duration "$STEP_S" --bisect "$BISECT" --max-rate "$SAT_MAX" "${EXTRA[@]}" || failed+=("$s") ;;
    idle) # N authenticated idle sockets: server RSS per connection, connect rate.
      loadgen idle idle --connections "$IDLE_N" --users 100 --hold "$HOLD_S" "${EXTRA[@]}" || failed+=("$s") ;;
    connect-rate) # ticket + handshake + close, 16 at a time.
      loadgen connect-rate connect-rate --duration "$CONNECT_S" --users 20 --concurrency 16 "${EXTRA[@]}" || failed+=("$s") ;;
    ai) # @mathia questions one at a time: first-chunk latency, chunk gaps (offline responder
        # unless the caller exports MATHIA_AI_BASE_URL… for the server — see README).
      loadgen ai ai --rooms 1 --prompts "$PROMPTS" "${EXTRA[@]}" || failed+=("$s") ;;
    ai-model) # The same against bench/fake_model.py: each token's added latency, model → socket.
      loadgen ai-model ai --rooms 1 --prompts "$PROMPTS" "${EXTRA[@]}" || failed+=("$s") ;;
  esac
done

log "results appended to $RESULTS"
if [ ${#failed[@]} -gt 0 ]; then
  log "failed: ${failed[*]}"
  exit 1
fi
