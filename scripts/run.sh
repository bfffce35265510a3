#!/usr/bin/env bash
# `make run`: the whole system on loopback, in the foreground. Ctrl-C stops
# everything this script started within seconds: `inventory` first, then moto
# and nats-server, PostgreSQL last.
#
# Every child runs in a session of its own (setsid), so the terminal's Ctrl-C
# reaches only this script, which then stops them in that order.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

DATA="${INVENTORY_DATA_DIR:-$ROOT/.inventory}"
mkdir -p "$DATA"; DATA="$(cd "$DATA" && pwd)"
INVENTORY_PID=""
SERVER_PIDS=()
cleanup() {
  trap - EXIT INT TERM
  if [ -n "$INVENTORY_PID" ]; then
    log "stopping inventory"
    stop_process "$INVENTORY_PID" INT 5
  fi
  for pid in "${SERVER_PIDS[@]}"; do stop_process "$pid" TERM 3; done
  stop_postgres
  log "stopped"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "${NATS_URL:-}" ]; then
  ensure_nats
  port="${INVENTORY_NATS_PORT:-4222}"; mport="${INVENTORY_NATS_MONITOR_PORT:-8222}"
  port_free "$port" || die "port $port is busy: set NATS_URL to use a running server or INVENTORY_NATS_PORT"
  port_free "$mport" || die "port $mport is busy: set INVENTORY_NATS_MONITOR_PORT"
  start_nats "$DATA/nats" "$port" "$mport"; SERVER_PIDS+=("$NATS_PID")
  export NATS_URL="nats://127.0.0.1:$port"
else
  log "using NATS at $NATS_URL"
fi

if [ -z "${DATABASE_URL:-}" ]; then
  ensure_postgres
  port="${INVENTORY_PG_PORT:-55432}"
  port_free "$port" || die "port $port is busy: set DATABASE_URL to use a running server or INVENTORY_PG_PORT"
  start_postgres "$DATA/pg" "$port"
  export DATABASE_URL="postgres://inventory@127.0.0.1:$port/inventory"
else
  log "using the PostgreSQL server from DATABASE_URL"
fi

if [ -z "${AWS_ENDPOINT_URL:-}" ] && ! aws_credentials_present; then
  ensure_moto
  port="${INVENTORY_MOTO_PORT:-55000}"
  port_free "$port" || die "port $port is busy: set INVENTORY_MOTO_PORT"
  start_moto "$port" "$DATA"; SERVER_PIDS=("$MOTO_PID" "${SERVER_PIDS[@]}")
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_REGION=us-east-1
  export INVENTORY_AWS_REGIONS="${INVENTORY_AWS_REGIONS:-us-east-1,eu-west-1}"
  "$VENV/bin/python" "$ROOT/scripts/seed_demo.py" "$AWS_ENDPOINT_URL" ${INVENTORY_AWS_REGIONS//,/ }
  log "DEMO MODE: no AWS credentials found and AWS_ENDPOINT_URL unset, so collecting from a demo fleet in moto at $AWS_ENDPOINT_URL (regions $INVENTORY_AWS_REGIONS)"
fi

# INVENTORY_BIN: a built `inventory` to run instead of building one.
if [ -z "${INVENTORY_BIN:-}" ]; then
  log "building inventory"
  cargo build --quiet --bin inventory
  INVENTORY_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/inventory"
fi
export INVENTORY_API_ADDR="${INVENTORY_API_ADDR:-127.0.0.1:8080}"
log "API on http://$INVENTORY_API_ADDR/api/v1/aws/instances  (Ctrl-C stops everything)"
setsid "$INVENTORY_BIN" up &
INVENTORY_PID=$!
# `inventory` ending on its own (an error) ends the script with its status.
status=0
wait "$INVENTORY_PID" || status=$?
INVENTORY_PID=""
exit "$status"
