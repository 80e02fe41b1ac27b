#!/usr/bin/env bash
# Message search benchmark: seeds a room of 100,000 sealed and indexed messages through the real
# keyring and store (an #[ignore]d harness, functions/mathia-local/tests/api/search_bench.rs),
# times searches of common and rare words over HTTP, and appends a section to bench/RESULTS.md.
#
#   bash bench/search.sh            # debug build, as the tests run
#   PROFILE=--release bash bench/search.sh
#   SEARCH_BENCH_MESSAGES=10000 bash bench/search.sh   # a quick look
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${PROFILE:-}
cmd="cargo test $profile -p mathia-local --test api search_bench::search_bench -- --ignored --nocapture --exact"
out=$(mktemp)
# shellcheck disable=SC2086
$cmd 2>&1 | tee "$out" >&2
lines=$(grep '^SEARCH_BENCH ' "$out" | sed 's/^SEARCH_BENCH /- /')
rm -f "$out"
[ -n "$lines" ] || { echo "no results" >&2; exit 1; }
cpu=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
{
  printf '\n## Message search, %s\n\n' "$(date -u +%Y-%m-%d)"
  printf 'Target: a room of 100,000 messages answers in under 300 ms at p99.\n\n'
  printf -- '- machine: %s cores (%s), %s; Postgres %s\n' "$(nproc)" "$cpu" \
    "$(free -g | awk '/^Mem:/ {print $2 " GiB"}')" "$(psql -h 127.0.0.1 -U postgres -tAc 'SHOW server_version' 2>/dev/null || echo '?')"
  printf -- '- git revision: `%s`%s\n' "$(git rev-parse --short HEAD)" "$(git diff --quiet || echo '+dirty')"
  printf -- '- command: `bash bench/search.sh` (%s; `%s`)\n' "${profile:-debug build}" "$cmd"
  printf -- '- each query: 60 timed requests (after 5 to warm up), `limit=20`, over HTTP with a bearer token, one at a time\n\n'
  printf '%s\n' "$lines"
} >> bench/RESULTS.md
echo "appended to bench/RESULTS.md" >&2
