#!/usr/bin/env bash
# Mailer benchmark: send-mail acks/s and latency from concurrent socket.io clients, mails/s
# handed to a local SMTP server, CPU per mail, peak RSS, and time to ready.
# Usage (from the repository root):
#   cargo build --release -p mailer --bin mailer --example send_mail_load
#   [LOADER=node|rust] mailer/bench/run.sh [clients] [window] [seconds]
# LOADER=node (default) drives the load with the official socket.io-client; LOADER=rust with
# the transport crate's client (examples/send_mail_load.rs), which needs less CPU.
# The mails go to nodemailer's smtp-server (see `start_sink` in config.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
CLIENTS=${1:-50}; WINDOW=${2:-4}; SECONDS_LOAD=${3:-15}
BIN=${BIN:-target/release/mailer}   # BIN=path compares another build
WORK=$(mktemp -d); trap 'kill $MAILER_PID $SINK_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
HTTP_PORT=18080; SMTP_PORT=2525; TOKEN=bench-token
. mailer/bench/config.sh
bench_config "$WORK/config.yaml" "$WORK"

start_sink $SMTP_PORT "$WORK/sink.log"
start_ns=$(date +%s%N)
$BIN --config "$WORK/config.yaml" > "$WORK/mailer.log" 2>&1 & MAILER_PID=$!
wait_ready $MAILER_PID "$WORK/mailer.log"
ready_ms=$(( ($(date +%s%N) - start_ns) / 1000000 ))

cpu_ticks() { awk '{print $14 + $15}' "/proc/$MAILER_PID/stat"; }
sent() { curl -s "http://127.0.0.1:$HTTP_PORT/metrics" | awk '/^deliveries_total\{status="sent"[,}]/ {n += $2} END {print n + 0}'; }
tck=$(getconf CLK_TCK)
# Peak of each part of the resident set (anonymous memory, mapped files such as SQLite's
# WAL index, shared memory), sampled every 0.2 s: VmHWM gives only their peak sum.
( while kill -0 $MAILER_PID 2>/dev/null; do
    grep -E '^(RssAnon|RssFile|RssShmem):' "/proc/$MAILER_PID/status" 2>/dev/null || true; sleep 0.2
  done ) > "$WORK/rss.log" & SAMPLER_PID=$!
cpu0=$(cpu_ticks); t0=$(date +%s%N)
if [ "${LOADER:-node}" = rust ]; then
  load=$(target/release/examples/send_mail_load "http://127.0.0.1:$HTTP_PORT" $TOKEN "$CLIENTS" "$WINDOW" "$SECONDS_LOAD")
else
  load=$(NODE_PATH=tests/js/node_modules node mailer/bench/send_mail_load.js "http://127.0.0.1:$HTTP_PORT" $TOKEN "$CLIENTS" "$WINDOW" "$SECONDS_LOAD")
fi
accepted=$(echo "$load" | sed -E 's/.*"accepted":([0-9]+).*/\1/')
cpu_load=$(cpu_ticks); t_load=$(date +%s%N); sent_load=$(sent)
# Wait until every accepted request has been handed to the SMTP sink (at most 120 s).
for _ in $(seq 1 1200); do s=$(sent); [ "${s:-0}" -ge "$accepted" ] && break; sleep 0.1; done
t1=$(date +%s%N); cpu1=$(cpu_ticks)
total_sent=$(sent)
elapsed=$(echo "($t1 - $t0) / 1000000000" | bc -l)
cpu_s=$(echo "($cpu1 - $cpu0) / $tck" | bc -l)
echo "load:            $load"
printf 'cpu_during_load: %.2f s of mailer CPU over %.1f s\n' "$(echo "($cpu_load - $cpu0) / $tck" | bc -l)" "$(echo "($t_load - $t0) / 1000000000" | bc -l)"
echo "ready_ms:        $ready_ms"
echo "mails_sent:      $total_sent of $accepted accepted"
printf 'mails_per_s:     %.0f (accept to SMTP, over %.1f s including the load)\n' "$(echo "$total_sent / $elapsed" | bc -l)" "$elapsed"
printf 'cpu_ms_per_mail: %.3f (mailer user+system CPU %.2f s)\n' "$(echo "$cpu_s * 1000 / $total_sent" | bc -l)" "$cpu_s"
drain_s=$(echo "($t1 - $t_load) / 1000000000" | bc -l)
drained=$((total_sent - sent_load))
if [ "$drained" -gt 0 ]; then
  printf 'drain_mails_per_s: %.0f (%d mails handed to SMTP after the load ended, in %.1f s, no acks competing)\n' "$(echo "$drained / $drain_s" | bc -l)" "$drained" "$drain_s"
  printf 'drain_cpu_ms_per_mail: %.3f\n' "$(echo "($cpu1 - $cpu_load) * 1000 / $tck / $drained" | bc -l)"
else
  echo "drain_mails_per_s: none (sending kept up with the load)"
fi
metric() { curl -s "http://127.0.0.1:$HTTP_PORT/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
commits=$(metric store_commits_total); rows=$(metric store_rows_written_total)
if [ -n "$commits" ] && [ "$commits" -gt 0 ]; then
  printf 'store_writes:    %d rows in %d SQLite commits (%.1f per commit)\n' "$rows" "$commits" "$(echo "$rows / $commits" | bc -l)"
  echo "checkpoint_waits: $(metric store_checkpoint_waits_total) (the writer paused for a checkpoint of a WAL past 4,096 frames)"
fi
awk -v t="$tck" -v n="$total_sent" '{printf "cpu_split:       user %.1f us, system %.1f us per mail\n", $14 / t * 1e6 / n, $15 / t * 1e6 / n}' "/proc/$MAILER_PID/stat"
echo "minor_faults:    $(awk '{print $10}' "/proc/$MAILER_PID/stat")"
# Context switches of all the mailer's threads: each is a sleep and a wake-up, which on a
# virtual machine costs more than most of the work between them.
switches=$(cat /proc/$MAILER_PID/task/*/status | awk '/^(voluntary|nonvoluntary)_ctxt_switches/ {n += $2} END {print n}')
printf 'ctx_switches:    %d (%.2f per mail)\n' "$switches" "$(echo "$switches / $total_sent" | bc -l)"
# The same by thread name (tokio's workers, its blocking pool, the SQLite writer, ...).
for t in /proc/$MAILER_PID/task/*; do
  printf '%s %s\n' "$(cat "$t/comm")" "$(awk '/^(voluntary|nonvoluntary)_ctxt_switches/ {n += $2} END {print n}' "$t/status")"
done | awk -v n="$total_sent" '{s[$1] += $2; c[$1]++} END {for (k in s) printf "  %-20s %d threads, %.2f per mail\n", k, c[k], s[k] / n}'
grep -E 'VmHWM|VmRSS' "/proc/$MAILER_PID/status"
kill $SAMPLER_PID 2>/dev/null || true
awk '{ if ($2 > max[$1]) max[$1] = $2 } END { printf "peak_parts:      RssAnon %d kB, RssFile %d kB, RssShmem %d kB\n", max["RssAnon:"], max["RssFile:"], max["RssShmem:"] }' "$WORK/rss.log"
tail -1 "$WORK/sink.log"
