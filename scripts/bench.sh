#!/usr/bin/env bash
# `make bench`: release build, throwaway nats-server and PostgreSQL on loopback,
# then the benchmark binary, which writes docs/benchmarks.md and
# target/bench/results.json. Pass --quick for a run about ten times smaller.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

ensure_nats
ensure_postgres

log "building release binaries"
cargo build --release --bin inventory --bin bench

TMP="$(mktemp -d /tmp/inventory-bench.XXXXXX)"; chmod 755 "$TMP"
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
export INVENTORY_BIN="$ROOT/target/release/inventory"
export PGBENCH="$PG_BIN/pgbench"
export NATS_SERVER_VERSION="$("$NATS_SERVER" --version | awk '{print $NF}')"
export POSTGRES_VERSION="$("$PG_BIN/postgres" --version | awk '{print $NF}') (fsync off)"
"$ROOT/target/release/bench" "$@"
