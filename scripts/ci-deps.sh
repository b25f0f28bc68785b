#!/usr/bin/env bash
# Installs the Debian packages the build and tests need, only those missing; safe to call repeatedly:
#   postgresql  the theta-spend-store PostgreSQL tests (scripts/pg-test-cluster.sh)
#   binaryen    wasm-opt, which scripts/build-wasm.sh runs over the components (tools/shrink)
set -euo pipefail

have_initdb() {
  command -v initdb >/dev/null 2>&1 && return 0
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}

missing=()
have_initdb || missing+=(postgresql)
command -v wasm-opt >/dev/null 2>&1 || missing+=(binaryen)
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "ci-deps: postgresql and binaryen already installed" >&2
  exit 0
fi

SUDO=""
if [[ "$(id -u)" -ne 0 ]]; then
  command -v sudo >/dev/null 2>&1 || { echo "ci-deps: need root or sudo to apt-get install ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
command -v apt-get >/dev/null 2>&1 || { echo "ci-deps: no apt-get; install ${missing[*]} yourself" >&2; exit 1; }

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
have_initdb || { echo "ci-deps: postgresql installed but initdb not found" >&2; exit 1; }
command -v wasm-opt >/dev/null 2>&1 || { echo "ci-deps: binaryen installed but wasm-opt not found" >&2; exit 1; }
echo "ci-deps: installed ${missing[*]}" >&2
