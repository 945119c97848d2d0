#!/usr/bin/env bash
# Instructions per mail, counted by valgrind's callgrind: the same figure for the same build
# whatever else the machine does, so two builds compare on a busy machine too. It counts
# user-space instructions only: no system time, no cache misses, no waiting.
# One mailer under callgrind (about 50 times slower), one socket.io client keeping 16
# `send-mail` requests in flight for SECONDS, nodemailer's smtp-server; the counters are
# zeroed once the mailer is ready and read once every accepted mail is handed to SMTP.
# Usage (from the repository root; needs valgrind and `npm ci --prefix tests/js`):
#   cargo build --release -p mailer --bin mailer --example send_mail_load
#   [BIN=path] [KEEP=folder] mailer/bench/instructions.sh [seconds]
# KEEP=folder copies callgrind's output there, for `callgrind_annotate --inclusive=yes`.
# Under callgrind the mailer takes a few hundred mails a second and batches its writes by
# what arrives, so the count moves by about 2 % with that rate: compare several runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_LOAD=${1:-15}
BIN=${BIN:-target/release/mailer}
HTTP_PORT=18080; SMTP_PORT=2525; TOKEN=bench-token
. mailer/bench/config.sh
bench_workspace
bench_config "$WORK/config.yaml" "$WORK"
start_sink $SMTP_PORT "$WORK/sink.log"; PIDS+=($SINK_PID)
valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" "$BIN" --config "$WORK/config.yaml" > "$WORK/mailer.log" 2>&1 & VG=$!
PIDS+=($VG)
wait_ready $VG "$WORK/mailer.log"
sleep 1
callgrind_control -z $VG > /dev/null
load=$(target/release/examples/send_mail_load "http://127.0.0.1:$HTTP_PORT" $TOKEN 1 16 "$SECONDS_LOAD")
accepted=$(echo "$load" | sed -E 's/.*"accepted":([0-9]+).*/\1/')
sent() { curl -s "http://127.0.0.1:$HTTP_PORT/metrics" | awk '/^deliveries_total\{status="sent"[,}]/ {n += $2} END {print n + 0}'; }
for _ in $(seq 1 600); do s=$(sent); [ "${s:-0}" -ge "$accepted" ] && break; sleep 0.2; done
total=$(sent)
callgrind_control -d $VG > /dev/null
sleep 1
instructions=$(grep -h '^summary:' "$WORK"/callgrind.out.* | awk '{n += $2} END {print n}')
echo "load:            $load"
echo "mails_sent:      $total of $accepted accepted"
printf 'instructions_per_mail: %.0f (%s instructions from ready to the last mail handed over)\n' \
  "$(echo "$instructions / $total" | bc -l)" "$instructions"
if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp "$WORK"/callgrind.out.* "$KEEP"/; fi
