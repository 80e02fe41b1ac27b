#!/usr/bin/env bash
# History-depth benchmark: one room grown to 0, 100,000 and 1,000,000 sealed messages (an
# #[ignore]d harness, functions/mathia-local/tests/api/history_bench.rs, seeding with COPY of rows
# sealed by the real keyring), timing sends and the latest and a deep history page at each depth
# over real connections; appends a section to bench/RESULTS.md.
#
#   bash bench/history.sh
#   HISTORY_BENCH_DEPTHS=0,100000,1000000,10000000 bash bench/history.sh
#   PROFILE=--release bash bench/history.sh
#   HISTORY_BENCH_RUNS=2000 bash bench/history.sh   # timed sends and page loads per depth (200)
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${PROFILE:-}
cmd="cargo test $profile -p mathia-local --test api history_bench::history_bench -- --ignored --nocapture --exact"
out=$(mktemp)
# shellcheck disable=SC2086
$cmd 2>&1 | tee "$out" >&2
lines=$(grep '^HISTORY_BENCH ' "$out" | sed 's/^HISTORY_BENCH /- /')
rm -f "$out"
[ -n "$lines" ] || { echo "no results" >&2; exit 1; }
cpu=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
{
  printf '\n## History depth, %s\n\n' "$(date -u +%Y-%m-%d)"
  printf 'Goal: flat — send p99 at the deepest history within 1.2× of an empty room.\n\n'
  printf -- '- machine: %s cores (%s), %s; Postgres %s\n' "$(nproc)" "$cpu" \
    "$(free -g | awk '/^Mem:/ {print $2 " GiB"}')" "$(psql -h 127.0.0.1 -U postgres -tAc 'SHOW server_version' 2>/dev/null || echo '?')"
  printf -- '- git revision: `%s`%s\n' "$(git rev-parse --short HEAD)" "$(git diff --quiet || echo '+dirty')"
  printf -- '- command: `bash bench/history.sh` (%s; `%s`; depths %s; HISTORY_BENCH_RUNS=%s)\n' "${profile:-debug build}" "$cmd" "${HISTORY_BENCH_DEPTHS:-0,100000,1000000}" "${HISTORY_BENCH_RUNS:-200}"
  printf -- '- at each depth, after seeding, `VACUUM (ANALYZE)` and a `CHECKPOINT` (settle_s), then: %s timed sends (`new_message` → `ack`, one at a time, after 10 to warm up) and %s of each page (50 messages, bearer token over HTTP); the deep page is the one before the 200th message\n\n' "${HISTORY_BENCH_RUNS:-200}" "${HISTORY_BENCH_RUNS:-200}"
  printf '%s\n' "$lines"
} >> bench/RESULTS.md
echo "appended to bench/RESULTS.md" >&2
