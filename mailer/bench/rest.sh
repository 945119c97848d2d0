#!/usr/bin/env bash
# REST benchmark: `POST /mails` answered per second under wrk (2 threads, CONNECTIONS
# connections, each waiting for its answer before the next request), every request a new
# mail; then the wait until each accepted mail has reached the SMTP server. Prints requests/s,
# latency, mailer CPU per mail (accept to SMTP) and peak memory.
# Usage (from the repository root; needs wrk and `npm ci --prefix tests/js`):
#   cargo build --release -p mailer --bin mailer
#   [BIN=path] [LOG_LEVEL=warn] mailer/bench/rest.sh [connections] [seconds]
set -euo pipefail
cd "$(dirname "$0")/../.."
CONNECTIONS=${1:-16}; SECONDS_LOAD=${2:-10}
BIN=${BIN:-target/release/mailer}
HTTP_PORT=18080; SMTP_PORT=2525; TOKEN=bench-token
WORK=$(mktemp -d)
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; rm -rf "$WORK"' EXIT
. mailer/bench/config.sh
bench_config "$WORK/config.yaml" "$WORK"
start_sink $SMTP_PORT "$WORK/sink.log"; PIDS+=($SINK_PID)
$BIN --config "$WORK/config.yaml" > "$WORK/mailer.log" 2>&1 & MAILER_PID=$!
PIDS+=($MAILER_PID)
until curl -sf -o /dev/null "http://127.0.0.1:$HTTP_PORT/health"; do sleep 0.01; done

sent() { curl -s "http://127.0.0.1:$HTTP_PORT/metrics" | awk '/^deliveries_total\{status="sent"[,}]/ {n += $2} END {print n + 0}'; }
accepted() { curl -s "http://127.0.0.1:$HTTP_PORT/metrics" | awk '/^mail_requests_total\{.*status="accepted"/ {n += $2} END {print n + 0}'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$MAILER_PID/stat"; }
tck=$(getconf CLK_TCK)
cpu0=$(cpu_ticks)
wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_LOAD}s" --latency -s mailer/bench/post_mails.lua \
  "http://127.0.0.1:$HTTP_PORT" -- "$TOKEN" > "$WORK/wrk.log"
total=$(accepted)
for _ in $(seq 1 600); do [ "$(sent)" -ge "$total" ] && break; sleep 0.1; done
cpu1=$(cpu_ticks)
echo "load_average:    $(cut -d' ' -f1-3 /proc/loadavg) (after the run)"
awk '/Requests\/sec/ {printf "requests_per_s:  %.0f\n", $2} / (50|99)%/ {print "latency_" $1 "       " $2}' "$WORK/wrk.log"
grep wrk_errors "$WORK/wrk.log"
echo "mails_sent:      $(sent) of $total accepted"
printf 'cpu_ms_per_mail: %.3f (mailer user+system, accept to SMTP)\n' "$(echo "($cpu1 - $cpu0) * 1000 / $tck / $total" | bc -l)"
grep -E 'VmHWM' "/proc/$MAILER_PID/status"
