#!/usr/bin/env bash
# `make test`: throwaway nats-server and PostgreSQL on free loopback ports, every
# unit and integration test (integration tests start their own moto per test),
# then stop the servers.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

ensure_nats
ensure_postgres
ensure_moto

TMP="$(mktemp -d /tmp/inventory-test.XXXXXX)"; chmod 755 "$TMP"
NATS_PID=""
cleanup() {
  [ -n "$NATS_PID" ] && kill "$NATS_PID" 2>/dev/null && wait "$NATS_PID" 2>/dev/null || true
  stop_postgres
  rm -rf "$TMP"
}
trap cleanup EXIT

nats_port="$(free_port)"
start_nats "$TMP/nats" "$nats_port" "$(free_port)" "$ROOT/nats/test-server.conf"
pg_port="$(free_port)"
start_postgres "$TMP/pg" "$pg_port" fast

export INVENTORY_TEST_NATS_URL="nats://127.0.0.1:$nats_port"
export INVENTORY_TEST_DATABASE_URL="postgres://inventory@127.0.0.1:$pg_port/postgres"
export INVENTORY_TEST_MOTO_SERVER="$MOTO_SERVER"

# the CLI test runs the real binary
cargo build --bin inventory

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
else
  cargo test --workspace --no-fail-fast "$@"
fi
