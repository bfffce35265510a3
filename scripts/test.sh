#!/usr/bin/env bash
# `make test`: throwaway nats-server and PostgreSQL on free loopback ports, every
# unit and integration test (integration tests start their own moto per test),
# then stop the servers.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

ensure_moto
ensure_promtool
ensure_browser
start_throwaway_servers
export INVENTORY_TEST_MOTO_SERVER="$MOTO_SERVER"

# the CLI test runs the real binary
cargo build --bin inventory

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
else
  cargo test --workspace --no-fail-fast "$@"
fi
