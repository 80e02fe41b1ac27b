#!/usr/bin/env bash
# Fault injection under a steady load: Redis, then Postgres, stopped for FAULT_S seconds each
# while clients chat, without restarting Mathia. Records
#   - what clients saw while a dependency was down (socket `error` codes per second, ticket /
#     handshake failures per second, disconnects, /healthz each second),
#   - whether service recovered by itself (acks and connections resume; a fresh probe run with
#     new users, tickets and sockets delivers everything; the server pid is unchanged),
#   - that no ACKNOWLEDGED message is missing from history afterwards (the loadgen pages
#     through `GET /api/rooms/{id}/messages?after=…` and looks for every acked message_id).
# Appends every loadgen line plus a `faults_check` summary to bench/results/<date>.jsonl.
#
# DISRUPTIVE: it shuts down the machine's shared Redis (`redis-cli shutdown nosave`: every key,
# other programs' too, is lost) and stops the Postgres cluster (every database). Run it only
# when nothing else (tests, a dev server) depends on them. ~2.5 minutes.
#
#   bash bench/faults.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"

FAULT_S=${FAULT_S:-10}        # how long each dependency stays down
WARM_S=${WARM_S:-15}          # steady load before the first fault
RECOVER_S=${RECOVER_S:-25}    # steady load after each restart
LOAD_S=$((WARM_S + FAULT_S + RECOVER_S + FAULT_S + RECOVER_S + 10))
PG_VERSION=$(ls /etc/postgresql | sort -V | tail -n 1)
EVENTS=

redis_up() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]; }
pg_up() { psql "$PG_ADMIN_URL" -qAtc 'select 1' >/dev/null 2>&1; }

restore_services() {
  # Whatever happened, leave Redis and Postgres running.
  redis_up || redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no >/dev/null || true
  pg_up || pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" main start || true
  for _ in $(seq 1 60); do redis_up && pg_up && break; sleep 0.5; done
}

on_exit() {
  local rc=$?
  restore_services
  # Stop background loadgens still running (only the ones this script started).
  for p in ${LOAD_PID:-} ${CONN_PID:-}; do pkill -TERM -P "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
  bench_cleanup "$rc"
}

event() { # event NAME: a timestamped line in the events file
  printf '{"type":"fault_event","event":"%s","unix_ms":%s}\n' "$1" "$(date +%s%3N)" >>"$EVENTS"
  log "event: $1"
}

sample_health() { # sample_health SECONDS: /healthz once a second
  local end=$(( $(date +%s) + $1 ))
  while [ "$(date +%s)" -lt "$end" ]; do
    local code body
    body=$(curl -sS -m 2 -w '\n%{http_code}' "$URL/healthz" 2>/dev/null || printf '\n000')
    code=${body##*$'\n'}; body=${body%$'\n'*}
    python3 -c 'import json,sys,time; b=sys.argv[2]
try: b=json.loads(b)
except Exception: pass
print(json.dumps({"type":"health","unix_ms":int(time.time()*1000),"status":int(sys.argv[1]),"body":b}))' "$code" "$body" >>"$EVENTS"
    sleep 1
  done
}

bench_prepare
trap on_exit EXIT
bench_start_server
bench_env_line
EVENTS=$WORK/events.jsonl
: >"$EVENTS"
SERVER_PID_AT_START=$SERVER_PID

# Steady load: 5 rooms × 10 clients, 1 sender per room at 5 msg/s, sockets reconnect when
# dropped, every ack tracked. Alongside, 2 workers fetch tickets and open sockets every 200 ms.
loadgen faults-load fanout --rooms 5 --clients 10 --senders 1 --rate 5 --duration "$LOAD_S" \
  --reconnect --verify --timeline --drain 15 2>"$WORK/load.log" &
LOAD_PID=$!
for _ in $(seq 1 600); do
  grep -q '^fanout: ' "$WORK/load.log" 2>/dev/null && break
  kill -0 "$LOAD_PID" 2>/dev/null || { cat "$WORK/load.log" >&2; exit 1; }
  sleep 0.2
done
loadgen faults-connect connect-rate --duration "$((LOAD_S - 5))" --users 4 --concurrency 2 \
  --pause-ms 200 --timeline 2>"$WORK/connect.log" &
CONN_PID=$!
event load_started

sample_health "$WARM_S"

event redis_down
redis-cli -h 127.0.0.1 -p 6379 shutdown nosave >/dev/null 2>&1 || true
sample_health "$FAULT_S"
redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no >/dev/null
for _ in $(seq 1 60); do redis_up && break; sleep 0.25; done
event redis_up
sample_health "$RECOVER_S"

event postgres_down
pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" main stop
sample_health "$FAULT_S"
pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" main start
for _ in $(seq 1 120); do pg_up && break; sleep 0.25; done
event postgres_up
sample_health "$RECOVER_S"

load_rc=0; wait "$LOAD_PID" || load_rc=$?; LOAD_PID=
conn_rc=0; wait "$CONN_PID" || conn_rc=$?; CONN_PID=
event load_finished
log "load exit $load_rc (1 = acknowledged messages missing), connect-rate exit $conn_rc"

# Recovery probe: new users, new tickets, new sockets, all through the same server process.
probe_rc=0
loadgen faults-probe fanout --rooms 2 --clients 5 --senders 1 --rate 5 --duration 10 --verify || probe_rc=$?
server_alive=false
kill -0 "$SERVER_PID_AT_START" 2>/dev/null && server_alive=true

cat "$EVENTS" >>"$RESULTS"
python3 - "$WORK" "$server_alive" "$load_rc" "$probe_rc" <<'EOF' | tee -a "$RESULTS"
import json, sys, time
work, server_alive, load_rc, probe_rc = sys.argv[1], sys.argv[2] == "true", int(sys.argv[3]), int(sys.argv[4])
def lines(name):
    try:
        return [json.loads(l) for l in open(f"{work}/{name}") if l.strip()]
    except FileNotFoundError:
        return []
events = lines("events.jsonl")
at = {e["event"]: e["unix_ms"] for e in events if e.get("type") == "fault_event"}
health = [e for e in events if e.get("type") == "health"]
load = (lines("faults-load.jsonl") or [{}])[-1]
conn = (lines("faults-connect.jsonl") or [{}])[-1]
probe = (lines("faults-probe.jsonl") or [{}])[-1]
tl, ctl = load.get("timeline", []), conn.get("timeline", [])

def window(name, down, up):
    a, b = at.get(down), at.get(up)
    if a is None or b is None:
        return {"recorded": False}
    during = [s for s in tl if a <= s["unix_ms"] <= b + 1000]
    cduring = [s for s in ctl if a <= s["unix_ms"] <= b + 1000]
    after = [s for s in tl if s["unix_ms"] > b]
    cafter = [s for s in ctl if s["unix_ms"] > b]
    first_ack = next((s for s in after if s["acked"] > 0), None)
    first_conn = next((s for s in cafter if s["ok"] > 0), None)
    hs = [h for h in health if a <= h["unix_ms"] <= b]
    return {
        "recorded": True,
        "down_s": round((b - a) / 1000, 1),
        "socket_errors_during": sum(s["errors"] for s in during),
        "acks_during": sum(s["acked"] for s in during),
        "deliveries_during": sum(s["delivered"] for s in during),
        "connect_failures_during": sum(s["failed"] for s in cduring),
        "connects_ok_during": sum(s["ok"] for s in cduring),
        "max_disconnects": max((s["disconnects"] for s in during), default=0),
        "healthz_during": sorted({f'{h["status"]} {h["body"].get("status") if isinstance(h["body"], dict) else h["body"]}' for h in hs}),
        "acks_resume_after_s": round((first_ack["unix_ms"] - b) / 1000, 1) if first_ack else None,
        "connects_resume_after_s": round((first_conn["unix_ms"] - b) / 1000, 1) if first_conn else None,
    }

redis = window("redis", "redis_down", "redis_up")
pg = window("postgres", "postgres_down", "postgres_up")
verify = load.get("verify", {})
checks = {
    "no_acked_message_missing": verify.get("missing") == 0 and not verify.get("failures") and load_rc == 0,
    "server_not_restarted": server_alive,
    "acks_resume_after_redis": redis.get("acks_resume_after_s") is not None,
    "acks_resume_after_postgres": pg.get("acks_resume_after_s") is not None,
    "connects_resume_after_redis": redis.get("connects_resume_after_s") is not None,
    "connects_resume_after_postgres": pg.get("connects_resume_after_s") is not None,
    "probe_after_faults_ok": probe_rc == 0 and probe.get("delivery_ratio", 0) >= 0.99,
}
print(json.dumps({
    "type": "faults_check", "ts_unix_ms": int(time.time() * 1000), "ok": all(checks.values()), "checks": checks,
    "redis": redis, "postgres": pg,
    "load_error_codes": load.get("total_errors"), "connect_failures": conn.get("timings", {}).get("failures"),
    "acked": verify.get("acked"), "missing": verify.get("missing"), "missing_ids": verify.get("missing_ids"),
    "load_delivery_ratio": load.get("delivery_ratio"), "probe_delivery_ratio": probe.get("delivery_ratio"),
    "disconnects": load.get("disconnects"), "reconnects": load.get("reconnects"),
}))
for k, v in checks.items():
    print(f"[faults] {k}: {'ok' if v else 'FAILED'}", file=sys.stderr)
sys.exit(0 if all(checks.values()) else 1)
EOF
