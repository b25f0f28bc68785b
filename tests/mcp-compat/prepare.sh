#!/usr/bin/env bash
# Builds Theta's official on-demand MCP server from a copy of ../shared/peers (never inside the source
# tree: nothing is written there) and installs this directory's pinned client scripts, under WORK:
#   WORK/official/dist/index.js   the official server (stdio)
#   WORK/client/                  client.mjs, overhead.mjs and the pinned @modelcontextprotocol/sdk
# Both are reused when already built. Exits non-zero with a one-line reason when node, npm, the
# official source or the npm registry is unavailable (callers skip with that message).
# Usage: tests/mcp-compat/prepare.sh WORK   (THETA_OFFICIAL_MCP_DIR overrides the peer's location)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="${1:?usage: prepare.sh WORK}"
peer="${THETA_OFFICIAL_MCP_DIR:-$here/../../../shared/peers/theta-on-demand-api-mcp}"
command -v node >/dev/null || { echo "node is not installed" >&2; exit 3; }
command -v npm >/dev/null || { echo "npm is not installed" >&2; exit 3; }
[[ -f "$peer/package.json" ]] || { echo "no official server source at $peer" >&2; exit 3; }
mkdir -p "$work"
if [[ ! -f "$work/official/dist/index.js" ]]; then
  rm -rf "$work/official" && cp -r "$peer" "$work/official"
  # Its package-lock.json pins every version.
  (cd "$work/official" && npm ci --no-audit --no-fund --loglevel=error >&2 && npx tsc >&2) \
    || { echo "cannot build the official server (npm ci / tsc failed)" >&2; exit 3; }
fi
mkdir -p "$work/client"
cp "$here/package.json" "$here/package-lock.json" "$here"/*.mjs "$work/client/"
if [[ ! -f "$work/client/node_modules/@modelcontextprotocol/sdk/package.json" ]]; then
  (cd "$work/client" && npm ci --no-audit --no-fund --loglevel=error >&2) \
    || { echo "cannot install the pinned MCP SDK (npm ci failed)" >&2; exit 3; }
fi
