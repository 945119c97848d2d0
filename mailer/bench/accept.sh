#!/usr/bin/env bash
# The accept stage alone: `POST /mails` under wrk (2 threads, CONNECTIONS connections) for
# SECONDS while the SMTP server takes connections and never answers, so no delivery gets
# past its greeting and the mailer does nothing but store and answer requests. Prints
# requests/s, the mailer's CPU per accepted request, each thread's share of it, and the
# store's commits and syncs. PERF=file also records a `perf` profile of the mailer over the
# load (`perf report -i file --sort comm,dso`). CALLGRIND=1 runs the mailer under valgrind's
# callgrind instead and prints the instructions per accepted request (user space only; the
# mailer is some 50 times slower there, so use fewer connections: 8); KEEP=folder copies
# callgrind's output there, for `callgrind_annotate --inclusive=yes`.
# Usage (from the repository root; needs wrk and python3):
#   cargo build --release -p mailer --bin mailer
#   [BIN=path] [PERF=file | CALLGRIND=1 [KEEP=folder]] mailer/bench/accept.sh [connections] [seconds]
set -euo pipefail
cd "$(dirname "$0")/../.."
CONNECTIONS=${1:-16}; SECONDS_LOAD=${2:-10}
BIN=${BIN:-target/release/mailer}
HTTP_PORT=18080; SMTP_PORT=2525; TOKEN=bench-token
. mailer/bench/config.sh
bench_workspace
bench_config "$WORK/config.yaml" "$WORK"
# An SMTP server that accepts connections and says nothing: each try waits for a greeting.
python3 -c "
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $SMTP_PORT)); s.listen(1024); held = []
while True: held.append(s.accept())" & PIDS+=($!)
if [ -n "${CALLGRIND:-}" ]; then
  valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" "$BIN" \
    --config "$WORK/config.yaml" > "$WORK/mailer.log" 2>&1 & MAILER_PID=$!
else
  $BIN --config "$WORK/config.yaml" > "$WORK/mailer.log" 2>&1 & MAILER_PID=$!
fi
PIDS+=($MAILER_PID)
wait_ready $MAILER_PID "$WORK/mailer.log"

metric() { curl -s "http://127.0.0.1:$HTTP_PORT/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
accepted() { curl -s "http://127.0.0.1:$HTTP_PORT/metrics" | awk '/^mail_requests_total\{.*status="accepted"/ {n += $2} END {print n + 0}'; }
# Per thread: CPU ticks and context switches, by name.
thread_ticks() {
  for t in /proc/$MAILER_PID/task/*; do
    printf '%s %s %s\n' "$(cat "$t/comm")" "$(awk '{print $14 + $15}' "$t/stat")" \
      "$(awk '/ctxt_switches/ {n += $2} END {print n}' "$t/status")"
  done | awk '{s[$1] += $2; c[$1] += $3} END {for (k in s) print k, s[k], c[k]}'
}
tck=$(getconf CLK_TCK)
thread_ticks > "$WORK/threads.start"
commits0=$(metric store_commits_total); syncs0=$(metric store_syncs_total)
accepted0=$(accepted)
[ -n "${CALLGRIND:-}" ] && callgrind_control -z $MAILER_PID > /dev/null
if [ -n "${PERF:-}" ]; then
  perf record -e cpu-clock -F 2000 -p $MAILER_PID -o "$PERF" > /dev/null 2>&1 & PERF_PID=$!
fi
wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_LOAD}s" -s mailer/bench/post_mails.lua \
  "http://127.0.0.1:$HTTP_PORT" -- "$TOKEN" > "$WORK/wrk.log"
thread_ticks > "$WORK/threads.end"
[ -n "${PERF:-}" ] && { kill -INT $PERF_PID; wait $PERF_PID || true; }
total=$(( $(accepted) - accepted0 ))
if [ -n "${CALLGRIND:-}" ]; then
  # The dump holds the counts since they were zeroed, all threads together.
  callgrind_control -d $MAILER_PID > /dev/null
  counted=$(grep -h '^summary:' "$WORK"/callgrind.out.* | awk '{print $2}' | sort -n | tail -1)
  echo "instructions_per_request: $(( counted / total )) ($total requests)"
  if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp "$WORK"/callgrind.out.* "$KEEP"/; fi
fi
echo "load_average:    $(cut -d' ' -f1-3 /proc/loadavg) (after the run)"
awk '/Requests\/sec/ {printf "requests_per_s:  %.0f\n", $2}' "$WORK/wrk.log"
sent=$(curl -s "http://127.0.0.1:$HTTP_PORT/metrics" | awk '/^deliveries_total\{status="sent"[,}]/ {n += $2} END {print n + 0}')
echo "accepted:        $total ($sent handed to SMTP)"
awk -v t="$tck" -v n="$total" 'FILENAME ~ /start$/ {s[$1] = $2; x[$1] = $3; next}
  {c = ($2 - s[$1]) / t * 1e6 / n; sum += c; line[$1] = c; sw[$1] = ($3 - x[$1]) / n}
  END {printf "cpu_us_per_request: %.1f\n", sum
       for (k in line) if (line[k] > 0) printf "  %-20s %.1f us, %.2f context switches per request\n", k, line[k], sw[k]}' \
  "$WORK/threads.start" "$WORK/threads.end"
echo "store:           $(( $(metric store_commits_total) - ${commits0:-0} )) commits, $(( $(metric store_syncs_total) - ${syncs0:-0} )) syncs"
