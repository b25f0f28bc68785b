#!/usr/bin/env bash
# Installs what a fresh machine needs (the wasm32-wasip2 target, rustfmt, clippy) and builds everything.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2
rustup component add rustfmt clippy >/dev/null 2>&1 || true
scripts/build-wasm.sh
cargo build --locked --release -p theta-host
