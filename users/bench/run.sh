#!/usr/bin/env bash
# Load test of the users service (docs/BENCHMARKS.md): a release build, SQLite, the AMQP
# transport on a local RabbitMQ with throw-away names, wrk on 127.0.0.1 only.
# Usage: users/bench/run.sh [seconds]   (from the repository root, after
#        cargo build --release -p users --bins; BIN=path runs another build of users)
set -euo pipefail
seconds="${1:-20}"
command -v wrk > /dev/null || { echo "users/bench/run.sh needs wrk (Debian: apt-get install wrk)" >&2; exit 1; }
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d)"
port=3907
suffix="$RANDOM$RANDOM"
cat > "$work/config.yaml" <<YAML
transport:
  kind: amqp
  amqp:
    url: amqp://guest:guest@127.0.0.1:5672/%2f
    exchange: bench.users.$suffix
    queue: bench.users.$suffix
users:
  listen: 127.0.0.1:$port
  database: sqlite://$work/users.db?mode=rwc
  admin_token: bench-admin-token
  limits:                 # wrk creates thousands of accounts from one address
    creates_per_client: 0
    login_failures_per_login: 0
    login_failures_per_client: 0
    reset_mails_per_address: 0
    resets_per_client: 0
log:
  level: info
YAML
"${BIN:-$root/target/release/users}" --config "$work/config.yaml" 2> "$work/users.log" &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" > /dev/null && break; sleep 0.1; done

rss() { awk '/VmRSS|VmHWM/ {printf "%s %s kB  ", $1, $2}' "/proc/$pid/status"; echo; }
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p')"
echo "idle: $(rss)"

id=$(curl -sf -X POST "http://127.0.0.1:$port/users" -H 'content-type: application/json' \
  -d '{"login":"reader","email":"reader@bench.example","password":"bench-password-1","first_name":"Read","last_name":"Er"}' \
  | sed -E 's/.*"id":"([^"]+)".*/\1/')

echo "== GET /users/{id}"
wrk -t2 -c64 -d"${seconds}s" --latency -H "Authorization: Bearer bench-admin-token" \
  "http://127.0.0.1:$port/users/$id"
echo "after GET: $(rss)"

token=$(curl -sf -X POST "http://127.0.0.1:$port/authenticate" -H 'content-type: application/json' \
  -d '{"login":"reader","password":"bench-password-1"}' | sed -E 's/.*"token":"([^"]+)".*/\1/')
echo "== GET /users/{id} (session token)"
wrk -t2 -c64 -d"${seconds}s" --latency -H "Authorization: Bearer $token" \
  "http://127.0.0.1:$port/users/$id"

echo "== POST /authenticate"
wrk -t2 -c16 -d"${seconds}s" --latency -s "$root/users/bench/authenticate.lua" "http://127.0.0.1:$port/authenticate"

echo "== POST /users"
( sleep $((seconds / 2)); echo "during POST: $(rss)" ) &
sampler=$!
wrk -t2 -c16 -d"${seconds}s" --latency -s "$root/users/bench/post_users.lua" "http://127.0.0.1:$port"
wait "$sampler"
echo "after POST: $(rss)"
curl -s "http://127.0.0.1:$port/health"; echo
curl -s "http://127.0.0.1:$port/metrics" | grep -E '^http_requests_total\{route="/users",method="POST"|^outbox_published_total|^outbox_publish_failures_total'
