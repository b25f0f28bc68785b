#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the theta-spend-store tests.
#
#   eval "$(scripts/pg-test-cluster.sh start)"   # prints: export THETA_TEST_PG_URL=postgres://...
#   cargo test -p theta-spend-store
#   scripts/pg-test-cluster.sh stop              # idempotent: stops and removes the cluster
#
# Uses Debian's postgresql binaries (/usr/lib/postgresql/*/bin; scripts/ci-deps.sh installs them),
# runs initdb in a fresh temp dir as a non-root user (as root: the `postgres` system user if present,
# else a `thetatest` user created on demand), listens on 127.0.0.1 on a free port, password auth on TCP.
# State (pid, dir, port) goes to $THETA_PG_STATE (default /tmp/theta-pg-test.state).
# Everything except the final `export` line goes to stderr.
set -euo pipefail

STATE="${THETA_PG_STATE:-/tmp/theta-pg-test.state}"
DB_NAME="theta_test"
DB_USER="thetatest"

log() { echo "pg-test-cluster: $*" >&2; }
die() { log "error: $*"; exit 1; }

find_bindir() {
  local d
  if command -v pg_config >/dev/null 2>&1; then
    d="$(pg_config --bindir 2>/dev/null || true)"
    [[ -x "$d/initdb" && -x "$d/pg_ctl" ]] && { echo "$d"; return; }
  fi
  # Newest installed major version first.
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -V -r); do
    [[ -x "$d/initdb" && -x "$d/pg_ctl" ]] && { echo "$d"; return; }
  done
  d="$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)")"
  [[ -x "$d/initdb" && -x "$d/pg_ctl" ]] && { echo "$d"; return; }
  die "no initdb/pg_ctl found: run scripts/ci-deps.sh (apt-get install postgresql)"
}

# Runs a command as the unprivileged cluster owner (or as ourselves when not root).
RUN_AS=""
as_owner() {
  if [[ -n "$RUN_AS" ]]; then
    runuser -u "$RUN_AS" -- "$@"
  else
    "$@"
  fi
}

pick_owner() {
  if [[ "$(id -u)" -ne 0 ]]; then RUN_AS=""; return; fi
  if id -u postgres >/dev/null 2>&1; then
    RUN_AS=postgres
  else
    id -u "$DB_USER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$DB_USER" \
      || die "could not create user $DB_USER"
    RUN_AS="$DB_USER"
  fi
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Below the kernel's ephemeral range (32768+ by default), so an outgoing connection or one in
# TIME_WAIT cannot hold the port we pick; a bind race is still possible, so `start` retries.
free_port() {
  local p i
  for i in $(seq 1 50); do
    p=$(( 15000 + RANDOM % 17000 ))
    port_free "$p" && { echo "$p"; return; }
  done
  die "no free TCP port found"
}

read_state() {
  PG_DIR=""; PG_PORT=""; PG_BINDIR=""; PG_OWNER=""; PG_URL=""
  [[ -f "$STATE" ]] || return 1
  # shellcheck disable=SC1090
  source "$STATE"
}

stop() {
  if ! read_state; then
    log "not running (no state file $STATE)"
    return 0
  fi
  RUN_AS="$PG_OWNER"
  if [[ -n "$PG_DIR" && -d "$PG_DIR/data" ]]; then
    as_owner "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" -m immediate -w -t 30 stop >/dev/null 2>&1 \
      || log "pg_ctl stop: cluster was not running"
  fi
  # Anything still holding the directory (a crashed stop): kill by the pid in postmaster.pid only.
  if [[ -n "$PG_DIR" && -f "$PG_DIR/data/postmaster.pid" ]]; then
    local pid; pid="$(head -1 "$PG_DIR/data/postmaster.pid" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -9 "$pid" 2>/dev/null || true
  fi
  if [[ -n "$PG_DIR" && "$PG_DIR" == */theta-pg-test.* ]]; then
    rm -rf -- "$PG_DIR"
  fi
  rm -f -- "$STATE"
  log "stopped and removed ${PG_DIR:-cluster}"
}

start() {
  if read_state && [[ -n "$PG_DIR" && -d "$PG_DIR/data" ]]; then
    RUN_AS="$PG_OWNER"
    if as_owner "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" status >/dev/null 2>&1; then
      log "already running in $PG_DIR (port $PG_PORT)"
      echo "export THETA_TEST_PG_URL=$PG_URL"
      return 0
    fi
    log "stale state file for $PG_DIR: cleaning up"
    stop
  fi
  local bindir dir port pass url
  bindir="$(find_bindir)"
  pick_owner
  dir="$(mktemp -d "${TMPDIR:-/tmp}/theta-pg-test.XXXXXX")"
  chmod 755 "$dir"
  [[ -n "$RUN_AS" ]] && chown "$RUN_AS" "$dir"
  pass="t$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
  printf '%s\n' "$pass" > "$dir/pwfile"
  [[ -n "$RUN_AS" ]] && chown "$RUN_AS" "$dir/pwfile"
  chmod 600 "$dir/pwfile"
  write_state() {
    url="postgres://$DB_USER:$pass@127.0.0.1:$port/$DB_NAME"
    # Written before each step, so `stop` can clean up whatever a failed start leaves behind.
    cat > "$STATE" <<STATE_EOF
PG_DIR='$dir'
PG_PORT='$port'
PG_BINDIR='$bindir'
PG_OWNER='$RUN_AS'
PG_URL='$url'
STATE_EOF
    chmod 600 "$STATE"
  }
  port=0
  write_state

  if ! as_owner "$bindir/initdb" -D "$dir/data" -U "$DB_USER" --pwfile="$dir/pwfile" \
      --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --no-locale >"$dir/initdb.log" 2>&1; then
    cat "$dir/initdb.log" >&2
    stop
    die "initdb failed (log above)"
  fi
  rm -f "$dir/pwfile"
  # Fast and disposable: no fsync (this cluster holds test data only). A port taken between the
  # check and the bind (another process won the race) gets another try on another port.
  local attempt started=0
  for attempt in 1 2 3 4 5; do
    port="$(free_port)"
    write_state
    if as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=200" start >&2; then
      started=1
      break
    fi
    if ! grep -q "could not bind\|Address already in use" "$dir/server.log" 2>/dev/null; then
      break
    fi
    log "port $port was taken (attempt $attempt): trying another"
    : > "$dir/server.log"
  done
  if [[ "$started" != 1 ]]; then
    cat "$dir/server.log" >&2 || true
    stop
    die "postgres did not start (server log above)"
  fi
  if ! as_owner "$bindir/createdb" -h "$dir" -p "$port" -U "$DB_USER" "$DB_NAME" >&2; then
    cat "$dir/server.log" >&2 || true
    stop
    die "createdb failed (server log above)"
  fi
  log "running in $dir on 127.0.0.1:$port (owner ${RUN_AS:-$(id -un)}), log $dir/server.log"
  echo "export THETA_TEST_PG_URL=$url"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status)
    if read_state; then RUN_AS="$PG_OWNER"; as_owner "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" status >&2 && echo "export THETA_TEST_PG_URL=$PG_URL"; else log "not running"; exit 3; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
