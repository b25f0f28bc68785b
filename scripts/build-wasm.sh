#!/usr/bin/env bash
# Builds the guest components (plugin and the hostile test guest) for wasm32-wasip2 with the small,
# optimised `plugin-release` profile. Output: target/wasm32-wasip2/plugin-release/*.wasm
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked --target wasm32-wasip2 --profile plugin-release -p theta-plugin -p hostile-guest
for f in theta_plugin hostile_guest; do
  wasm="target/wasm32-wasip2/plugin-release/$f.wasm"
  printf '%-16s %8d bytes  %s\n' "$f" "$(stat -c %s "$wasm")" "$wasm"
done
