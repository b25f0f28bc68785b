#!/usr/bin/env bash
# Builds the guest components for wasm32-wasip2 with the small, optimised `plugin-release` profile.
# Output: target/wasm32-wasip2/plugin-release/
#   theta_plugin.wasm           the plugin (world theta:edgecloud/plugin, wasi:http): theta-host, wasmtime, jco
#   theta_plugin_wassette.wasm  theta_plugin.wasm plus its WIT docs (`package-docs`, tools/wit-docs) for Wassette
#   theta_plugin_wassette_commands.wasm  only describe + invoke (--features commands-only), with docs: Wassette, small tools/list
#   theta_plugin_ironclaw.wasm  the same commands for IronClaw (world near:agent/sandboxed-tool, near:agent@0.4.1)
#   ironclaw-theta/             IronClaw's extension package: hosts/ironclaw + wasm/theta.wasm
#   hostile_guest.wasm          a deliberately hostile guest for the host's tests
# The IronClaw build is the same crate with the `ironclaw` feature. It gets its own target directory
# (target/ironclaw, ~30 s more on a cold build) so that the two feature sets never overwrite each
# other's theta_plugin.wasm, not even for a moment while someone else's tests read it; the result is
# copied beside the others.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/wasm32-wasip2/plugin-release
cargo build --locked --target wasm32-wasip2 --profile plugin-release -p theta-plugin -p hostile-guest
cargo build --locked --target wasm32-wasip2 --profile plugin-release -p theta-plugin --features ironclaw \
  --target-dir target/ironclaw
# Smaller components that do the same (tools/shrink: the core module through binaryen's wasm-opt -Oz,
# the component-name section dropped, validated before it replaces the file; a no-op on a file it
# already shrank, a plain copy with a note when wasm-opt is missing).
cargo build --locked --release -q -p theta-shrink
shrink() { target/release/theta-shrink "$1" "$1"; }
shrink "$out/theta_plugin.wasm"
shrink target/ironclaw/wasm32-wasip2/plugin-release/theta_plugin.wasm
# Copy to a temporary name, then rename: readers never see a half-written file.
cp target/ironclaw/wasm32-wasip2/plugin-release/theta_plugin.wasm "$out/.theta_plugin_ironclaw.wasm.tmp"
mv -f "$out/.theta_plugin_ironclaw.wasm.tmp" "$out/theta_plugin_ironclaw.wasm"
# The IronClaw extension package, ready to install: hosts/ironclaw (manifest, schemas, prompts) plus
# the component at the manifest's `module` path.
pkg="$out/ironclaw-theta"
rm -rf "$pkg" && mkdir -p "$pkg/wasm" && cp -r hosts/ironclaw/. "$pkg/"
cp "$out/theta_plugin_ironclaw.wasm" "$pkg/wasm/theta.wasm"
# The by-name part only (world command-plugin: describe + invoke), for Wassette's small tools/list;
# its own target directory too.
cargo build --locked --target wasm32-wasip2 --profile plugin-release -p theta-plugin --features commands-only \
  --target-dir target/commands
shrink target/commands/wasm32-wasip2/plugin-release/theta_plugin.wasm
# Wassette's tool descriptions are the `///` comments of wit/, read from a `package-docs` section.
# They go into a copy: jco and `wasm-tools component wit` reject a component that has that section.
cargo run --locked --release -q -p theta-wit-docs -- --wit wit \
  "$out/theta_plugin.wasm" "$out/theta_plugin_wassette.wasm"
cargo run --locked --release -q -p theta-wit-docs -- --wit wit --world command-plugin \
  target/commands/wasm32-wasip2/plugin-release/theta_plugin.wasm "$out/theta_plugin_wassette_commands.wasm"
for f in theta_plugin theta_plugin_wassette theta_plugin_wassette_commands theta_plugin_ironclaw hostile_guest; do
  wasm="$out/$f.wasm"
  printf '%-31s %8d bytes  %s\n' "$f" "$(stat -c %s "$wasm")" "$wasm"
done
