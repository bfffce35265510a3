#!/usr/bin/env bash
# `make bench`: release build, throwaway nats-server and PostgreSQL on loopback,
# then the benchmark binary, which writes docs/benchmarks.md and
# target/bench/results.json. Pass --quick for a run about ten times smaller.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

log "building release binaries"
cargo build --release --bin inventory --bin bench

start_throwaway_servers
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
export INVENTORY_BIN="$TARGET/release/inventory"
export PGBENCH="$PG_BIN/pgbench"
export NATS_SERVER_VERSION="$("$NATS_SERVER" --version | awk '{print $NF}')"
export POSTGRES_VERSION="$("$PG_BIN/postgres" --version | awk '{print $3}') (fsync off)"
"$TARGET/release/bench" "$@"
