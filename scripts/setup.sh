#!/usr/bin/env bash
# Installs what a fresh machine needs (the wasm32-wasip2 target, rustfmt, clippy) and builds everything.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2
rustup component add rustfmt clippy >/dev/null 2>&1 || true
scripts/build-wasm.sh
cargo build --locked --release -p theta-host
# Compile the plugin for this machine now (into THETA_HOST_CACHE_DIR, default ~/.cache/theta-host), so
# the first real call or `tools/list` does not wait for Cranelift.
target/release/theta-host precompile --plugin target/wasm32-wasip2/plugin-release/theta_plugin.wasm
