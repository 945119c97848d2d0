#!/usr/bin/env bash
# REST benchmark: `POST /mails` answered per second under wrk (2 threads, CONNECTIONS
# connections, each waiting for its answer before the next request), every request a new
# mail; then the wait until each accepted mail has reached the SMTP server. Prints requests/s,
# latency, mailer CPU per mail (accept to SMTP), the mails sent while the load ran, the
# store's commits and syncs, the bytes written per mail, the CPU of each of the mailer's
# threads, and peak memory.
# Usage (from the repository root; needs wrk and `npm ci --prefix tests/js`):
#   cargo build --release -p mailer --bin mailer
#   [BIN=path] [LOG_LEVEL=warn] mailer/bench/rest.sh [connections] [seconds]
set -euo pipefail
cd "$(dirname "$0")/../.."
CONNECTIONS=${1:-16}; SECONDS_LOAD=${2:-10}
BIN=${BIN:-target/release/mailer}
HTTP_PORT=18080; SMTP_PORT=2525; TOKEN=bench-token
. mailer/bench/config.sh
bench_workspace
bench_config "$WORK/config.yaml" "$WORK"
start_sink $SMTP_PORT "$WORK/sink.log"; PIDS+=($SINK_PID)
$BIN --config "$WORK/config.yaml" > "$WORK/mailer.log" 2>&1 & MAILER_PID=$!
PIDS+=($MAILER_PID)
wait_ready $MAILER_PID "$WORK/mailer.log"
# Peak of each part of the resident set, sampled every 0.2 s (as in run.sh).
( while kill -0 $MAILER_PID 2>/dev/null; do
    grep -E '^(RssAnon|RssFile|RssShmem):' "/proc/$MAILER_PID/status" 2>/dev/null || true; sleep 0.2
  done ) > "$WORK/rss.log" & PIDS+=($!)

sent() { curl -s "http://127.0.0.1:$HTTP_PORT/metrics" | awk '/^deliveries_total\{status="sent"[,}]/ {n += $2} END {print n + 0}'; }
accepted() { curl -s "http://127.0.0.1:$HTTP_PORT/metrics" | awk '/^mail_requests_total\{.*status="accepted"/ {n += $2} END {print n + 0}'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$MAILER_PID/stat"; }
# CPU ticks of each thread, by name (tokio's workers, the SQLite store's sync and checkpoint
# threads, ...).
thread_ticks() {
  for t in /proc/$MAILER_PID/task/*; do
    printf '%s %s\n' "$(cat "$t/comm")" "$(awk '{print $14 + $15}' "$t/stat")"
  done | awk '{s[$1] += $2} END {for (k in s) print k, s[k]}'
}
tck=$(getconf CLK_TCK)
io_bytes() { awk '$1 == "wchar:" {w = $2} $1 == "write_bytes:" {d = $2} END {print w, d}' "/proc/$MAILER_PID/io"; }
cpu0=$(cpu_ticks); thread_ticks > "$WORK/threads.start"; io0=$(io_bytes)
wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_LOAD}s" --latency -s mailer/bench/post_mails.lua \
  "http://127.0.0.1:$HTTP_PORT" -- "$TOKEN" > "$WORK/wrk.log"
total=$(accepted); sent_load=$(sent); io1=$(io_bytes); thread_ticks > "$WORK/threads.load"
for _ in $(seq 1 600); do [ "$(sent)" -ge "$total" ] && break; sleep 0.1; done
cpu1=$(cpu_ticks)
echo "load_average:    $(cut -d' ' -f1-3 /proc/loadavg) (after the run)"
awk '/Requests\/sec/ {printf "requests_per_s:  %.0f\n", $2} / (50|99)%/ {print "latency_" $1 "       " $2}' "$WORK/wrk.log"
grep wrk_errors "$WORK/wrk.log"
echo "mails_sent:      $(sent) of $total accepted ($sent_load while the load ran)"
printf 'cpu_ms_per_mail: %.3f (mailer user+system, accept to SMTP)\n' "$(echo "($cpu1 - $cpu0) * 1000 / $tck / $total" | bc -l)"
metric() { curl -s "http://127.0.0.1:$HTTP_PORT/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
echo "store_writes:    $(metric store_rows_written_total) rows in $(metric store_commits_total) commits, $(metric store_syncs_total) syncs"
# Bytes written (all files, by write calls) and bytes the disk took, per mail during the load.
echo "$io0 $io1" | awk -v n="$total" '{printf "writes_per_mail: %.1f KiB written, %.1f KiB to the disk (during the load)\n", ($3 - $1) / 1024 / n, ($4 - $2) / 1024 / n}'
# Each thread's CPU per accepted mail, during the load and in all.
thread_ticks > "$WORK/threads.end"
awk -v t="$tck" -v n="$total" 'FILENAME ~ /start$/ {s[$1] = $2; next}
  FILENAME ~ /load$/ {l[$1] = $2 - s[$1]; next}
  {printf "  %-20s %.1f us per mail during the load, %.1f in all\n", $1, l[$1] / t * 1e6 / n, ($2 - s[$1]) / t * 1e6 / n}' \
  "$WORK/threads.start" "$WORK/threads.load" "$WORK/threads.end"
grep -E 'VmHWM' "/proc/$MAILER_PID/status"
awk '{ if ($2 > max[$1]) max[$1] = $2 } END { printf "peak_parts:      RssAnon %d kB, RssFile %d kB, RssShmem %d kB\n", max["RssAnon:"], max["RssFile:"], max["RssShmem:"] }' "$WORK/rss.log"
