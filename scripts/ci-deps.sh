#!/usr/bin/env bash
# Installs what the theta-spend-store PostgreSQL tests need (scripts/pg-test-cluster.sh):
# Debian's `postgresql` package, only when no initdb is present. Safe to call repeatedly.
set -euo pipefail

have_initdb() {
  command -v initdb >/dev/null 2>&1 && return 0
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}

if have_initdb; then
  echo "ci-deps: postgresql already installed" >&2
  exit 0
fi

SUDO=""
if [[ "$(id -u)" -ne 0 ]]; then
  command -v sudo >/dev/null 2>&1 || { echo "ci-deps: need root or sudo to apt-get install postgresql" >&2; exit 1; }
  SUDO="sudo"
fi
command -v apt-get >/dev/null 2>&1 || { echo "ci-deps: no apt-get; install PostgreSQL (initdb, pg_ctl) yourself" >&2; exit 1; }

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends postgresql
have_initdb || { echo "ci-deps: postgresql installed but initdb not found" >&2; exit 1; }
echo "ci-deps: postgresql installed" >&2
