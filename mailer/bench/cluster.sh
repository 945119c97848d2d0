#!/usr/bin/env bash
# Several mailers benchmark: send-mail acks/s and mails/s from 8 service clients, against one
# mailer and against two mailers sharing one PostgreSQL store and one Redis (mailer.cluster),
# and what crossing Redis costs per event.
# Usage (from the repository root; needs PostgreSQL on 127.0.0.1:5432 with trust auth, the
# redis-server binary, and `npm ci --prefix tests/js` for the SMTP server):
#   cargo build --release -p mailer --bin mailer --example send_mail_load
#   [RUNS="one one+redis two"] mailer/bench/cluster.sh [window] [seconds]
# Three runs, each on a fresh database: `one` (one mailer, no cluster), `one+redis` (one
# mailer with mailer.cluster: every emit goes through Redis, with nobody on the other side)
# and `two` (two mailers, 4 clients on each). The load comes from the transport crate's
# client (examples/send_mail_load.rs), one process per mailer; the mails go to nodemailer's
# smtp-server (see `start_sink` in config.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
WINDOW=${1:-16}; SECONDS_LOAD=${2:-10}
BIN=${BIN:-target/release/mailer}; EXAMPLES=${EXAMPLES:-target/release/examples}
PG=${PG:-postgres://postgres@127.0.0.1:5432}
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
TOKEN=bench-token-for-the-cluster-benchmark; SMTP_PORT=2526; REDIS_PORT=16399
tck=$(getconf CLK_TCK)

redis-server --port $REDIS_PORT --save "" --appendonly no --daemonize no > "$WORK/redis.log" 2>&1 &
REDIS_PID=$!; PIDS+=($REDIS_PID)
until redis-cli -p $REDIS_PORT ping >/dev/null 2>&1; do sleep 0.05; done
. mailer/bench/config.sh
start_sink $SMTP_PORT "$WORK/sink.log"; PIDS+=($SINK_PID)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
metric() { curl -s "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m {print $2}'; }
# Every template's count of sent mails.
sent() { curl -s "http://127.0.0.1:$1/metrics" | awk '/^deliveries_total\{status="sent"[,}]/ {n += $2} END {print n + 0}'; }
publishes() { redis-cli -p $REDIS_PORT info commandstats | awk -F'[=,]' '/^cmdstat_publish:/ {print $2}'; }

# start_mailer NAME PORT CLUSTER(yes|no) DATABASE: starts a mailer and waits for /health.
start_mailer() {
  local cluster=""
  [ "$3" = yes ] && cluster="  cluster: { redis_url: \"redis://127.0.0.1:$REDIS_PORT\" }"
  cat > "$WORK/$1.yaml" <<YAML
transport: { kind: socketio, socketio: { url: "http://127.0.0.1:$2", token: $TOKEN } }
mailer:
  listen: 127.0.0.1:$2
  database: "$4"
  smtp: { host: 127.0.0.1, port: $SMTP_PORT, tls: none }
$cluster
log: { level: warn }
YAML
  "$BIN" --config "$WORK/$1.yaml" > "$WORK/$1.log" 2>&1 &
  PIDS+=($!); eval "PID_$1=$!"
  until curl -sf -o /dev/null "http://127.0.0.1:$2/health"; do sleep 0.02; done
}

# run NAME CLUSTER PORTS...: 8 clients spread over the mailers on PORTS, then waits until
# every accepted request was handed to SMTP; prints one line of figures.
run() {
  local name=$1 cluster=$2; shift 2
  local ports=("$@") n=$#
  local db="bench_cluster_$$"
  psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
  local pids=() i=0
  for port in "${ports[@]}"; do
    start_mailer "m$i" "$port" "$cluster" "$PG/$db"; pids+=($(eval echo "\$PID_m$i")); i=$((i + 1))
  done
  local cpu0=0; for p in "${pids[@]}"; do cpu0=$((cpu0 + $(cpu_ticks "$p"))); done
  local pub0; pub0=$(publishes); pub0=${pub0:-0}
  local redis0; redis0=$(cpu_ticks $REDIS_PID)
  local t0; t0=$(date +%s%N)
  local per=$((8 / n)) loads=()
  for port in "${ports[@]}"; do
    "$EXAMPLES/send_mail_load" "http://127.0.0.1:$port" $TOKEN $per "$WINDOW" "$SECONDS_LOAD" > "$WORK/load-$port.json" &
    loads+=($!)
  done
  for l in "${loads[@]}"; do wait "$l"; done
  local accepted=0 acks=0 p99=0
  for port in "${ports[@]}"; do
    accepted=$((accepted + $(sed -E 's/.*"accepted":([0-9]+).*/\1/' "$WORK/load-$port.json")))
    acks=$((acks + $(sed -E 's/.*"acks":([0-9]+).*/\1/' "$WORK/load-$port.json")))
    p=$(sed -E 's/.*"p99_ms":([0-9.]+).*/\1/' "$WORK/load-$port.json"); p99=$(echo "if ($p > $p99) $p else $p99" | bc -l)
  done
  local total=0
  for _ in $(seq 1 1200); do
    total=0; for port in "${ports[@]}"; do total=$((total + $(sent "$port"))); done
    [ "$total" -ge "$accepted" ] && break; sleep 0.1
  done
  local t1; t1=$(date +%s%N)
  local cpu1=0; for p in "${pids[@]}"; do cpu1=$((cpu1 + $(cpu_ticks "$p"))); done
  local pub1; pub1=$(publishes); pub1=${pub1:-0}
  local redis1; redis1=$(cpu_ticks $REDIS_PID)
  local elapsed; elapsed=$(echo "($t1 - $t0) / 1000000000" | bc -l)
  local shares=""; for port in "${ports[@]}"; do shares="$shares $(sent "$port")"; done
  printf '%-10s acks/s %6.0f  mails/s %6.0f  p99 %6.1f ms  mailer CPU %.3f ms/mail  redis CPU %.3f ms/mail  publishes %d (%.1f/mail)  sent by each:%s\n' \
    "$name" "$(echo "$acks / $SECONDS_LOAD" | bc -l)" "$(echo "$total / $elapsed" | bc -l)" "$p99" \
    "$(echo "($cpu1 - $cpu0) * 1000 / $tck / $total" | bc -l)" \
    "$(echo "($redis1 - $redis0) * 1000 / $tck / $total" | bc -l)" \
    "$((pub1 - pub0))" "$(echo "($pub1 - $pub0) / $total" | bc -l)" "$shares"
  for p in "${pids[@]}"; do kill "$p"; wait "$p" 2>/dev/null || true; done
  psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $db" >/dev/null
}

# RUNS picks some of them (RUNS=one runs a build without mailer.cluster too).
for r in ${RUNS:-one one+redis two}; do
  case $r in
    one) run one no 18091 ;;
    one+redis) run one+redis yes 18091 ;;
    two) run two yes 18091 18092 ;;
  esac
done
