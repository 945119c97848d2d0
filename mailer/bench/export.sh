#!/usr/bin/env bash
# Export benchmark: the answer time of `POST /mails` at a fixed rate with span export off,
# with the OTLP endpoint down (nothing listens: each export is refused at once), with it
# black-holed (a listener that takes connections and never answers: each export waits for
# its 5 s timeout while spans pile up), and, as mode `up`, with an endpoint that takes every
# export at once (it answers 200 with an empty body, a valid empty OTLP response, and decodes
# nothing), which shows what exporting itself costs. One mailer process per run, the modes alternating
# round by round, so that the machine's drift falls on all of them alike.
# Usage (from the repository root):
#   cargo build --release -p mailer --bin mailer --example post_mails_load
#   mailer/bench/export.sh [rate] [seconds] [rounds] [modes]
# rate: requests per second (default 1000); modes: default "off down blackhole", or any of
# "off down blackhole up".
# BIN=path picks another mailer binary.
set -euo pipefail
cd "$(dirname "$0")/../.."
RATE=${1:-1000}; SECONDS_LOAD=${2:-20}; ROUNDS=${3:-3}; MODES=${4:-off down blackhole}
BIN=${BIN:-target/release/mailer}
LOADER=target/release/examples/post_mails_load
HTTP_PORT=18080; SMTP_PORT=2525; TOKEN=bench-token; DOWN_PORT=14318; HOLE_PORT=14319; UP_PORT=14320
. mailer/bench/config.sh
bench_workspace
start_sink $SMTP_PORT "$WORK/sink.log"; PIDS+=($SINK_PID)
# The black hole: accepts every connection and holds it open, reading nothing.
python3 - $HOLE_PORT <<'PY' & PIDS+=($!)
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1024)
held = []
while True:
    held.append(s.accept()[0])
PY
# The endpoint that takes everything: reads each body, answers 200 with nothing in it.
python3 - $UP_PORT <<'PY' & PIDS+=($!)
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class Take(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Take).serve_forever()
PY
sleep 0.3
if (exec 3<>/dev/tcp/127.0.0.1/$DOWN_PORT) 2>/dev/null; then
  echo "port $DOWN_PORT is taken: the 'down' endpoint must have nothing listening" >&2; exit 1
fi

endpoint() {
  case $1 in
    off) echo null ;;
    down) echo "http://127.0.0.1:$DOWN_PORT" ;;
    blackhole) echo "http://127.0.0.1:$HOLE_PORT" ;;
    up) echo "http://127.0.0.1:$UP_PORT" ;;
    *) echo "unknown mode $1" >&2; exit 1 ;;
  esac
}
tck=$(getconf CLK_TCK)

for round in $(seq 1 "$ROUNDS"); do
  for mode in $MODES; do
    rm -rf "$WORK/mailer.db"* "$WORK/mail"
    bench_config "$WORK/config.yaml" "$WORK" "telemetry: { otlp_endpoint: $(endpoint "$mode") }"
    $BIN --config "$WORK/config.yaml" > "$WORK/mailer.log" 2>&1 & MAILER_PID=$!
    wait_ready $MAILER_PID "$WORK/mailer.log"
    # A second of warm-up: connections, the store's first pages, the first export attempt.
    $LOADER "http://127.0.0.1:$HTTP_PORT" $TOKEN "$RATE" 1 > /dev/null
    cpu0=$(awk '{print $14 + $15}' "/proc/$MAILER_PID/stat")
    load=$($LOADER "http://127.0.0.1:$HTTP_PORT" $TOKEN "$RATE" "$SECONDS_LOAD")
    cpu1=$(awk '{print $14 + $15}' "/proc/$MAILER_PID/stat")
    requests=$(echo "$load" | sed -E 's/.*"requests":([0-9]+).*/\1/')
    dropped=$(curl -s "http://127.0.0.1:$HTTP_PORT/metrics" | awk '/^telemetry_spans_dropped_total/ {printf "%s=%s ", $1, $2}' | sed -E 's/telemetry_spans_dropped_total\{reason="([a-z_]+)"\}/\1/g')
    printf 'round %d %-9s %s cpu_ms_per_request=%.3f load=%s dropped: %s\n' "$round" "$mode" \
      "$(date +%H:%M:%S)" "$(echo "($cpu1 - $cpu0) * 1000 / $tck / $requests" | bc -l)" \
      "$load" "${dropped:-none}"
    kill $MAILER_PID; wait $MAILER_PID 2>/dev/null || true
  done
done
