# Sourced by the mailer's benchmark scripts: the one configuration they run a mailer with.
# bench_config FILE WORK [YAML]: writes to FILE a socket.io mailer on loopback port
# $HTTP_PORT with token $TOKEN, its SQLite store and outbox folder under WORK, SMTP on
# 127.0.0.1:$SMTP_PORT without TLS, logs at warn; YAML, if given, is one more top-level line.
bench_config() {
  cat > "$1" <<YAML
transport: { kind: socketio, socketio: { url: "http://127.0.0.1:$HTTP_PORT", token: $TOKEN } }
mailer:
  listen: 127.0.0.1:$HTTP_PORT
  database: "sqlite://$2/mailer.db?mode=rwc"
  smtp: { host: 127.0.0.1, port: $SMTP_PORT, tls: none }
  outbox_dir: $2/mail
log: { level: warn }
${3:-}
YAML
}
