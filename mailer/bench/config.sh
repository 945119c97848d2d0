# Sourced by the mailer's benchmark scripts: the one configuration they run a mailer with, and
# the one SMTP server they hand mails to.
# bench_config FILE WORK [YAML]: writes to FILE a socket.io mailer on loopback port
# $HTTP_PORT with token $TOKEN, its SQLite store and outbox folder under WORK, SMTP on
# 127.0.0.1:$SMTP_PORT without TLS, logs at $LOG_LEVEL (default info, as the configuration's
# default: a mailer as shipped writes its delivery lines); YAML, if given, is one more top-level line.
bench_config() {
  cat > "$1" <<YAML
transport: { kind: socketio, socketio: { url: "http://127.0.0.1:$HTTP_PORT", token: $TOKEN } }
mailer:
  listen: 127.0.0.1:$HTTP_PORT
  database: "sqlite://$2/mailer.db?mode=rwc"
  smtp: { host: 127.0.0.1, port: $SMTP_PORT, tls: none }
  outbox_dir: $2/mail
log: { level: ${LOG_LEVEL:-info} }
${3:-}
YAML
}

# bench_workspace: a folder of the run's own in WORK and a list of processes to stop in PIDS,
# both cleaned up when the script exits.
bench_workspace() {
  WORK=$(mktemp -d)
  PIDS=()
  # Waits for them too: the next run's mailer needs the port this one's holds.
  trap 'kill "${PIDS[@]}" 2>/dev/null || true; wait; rm -rf "$WORK"' EXIT
}

# wait_ready PID LOG: returns once the mailer of PID answers /health on $HTTP_PORT; stops the
# script, with the end of its LOG, if it exits first (a port still held by the last run).
wait_ready() {
  until curl -sf -o /dev/null "http://127.0.0.1:$HTTP_PORT/health"; do
    if ! kill -0 "$1" 2>/dev/null; then
      echo "the mailer exited before it was ready:" >&2; tail -3 "$2" >&2; exit 1
    fi
    sleep 0.005
  done
}

# start_sink PORT LOG: starts nodemailer's smtp-server (tests/js/smtp-server.js, needs
# `npm ci --prefix tests/js`) on 127.0.0.1:PORT, counting mails into LOG; it offers PIPELINING
# as production servers do. Returns once it listens; its pid is in SINK_PID.
start_sink() {
  NODE_PATH=tests/js/node_modules node tests/js/smtp-server.js --port "$1" --count-only > "$2" & SINK_PID=$!
  until grep -q listening "$2" 2>/dev/null; do sleep 0.05; done
}
