#!/usr/bin/env bash
# The plugin in Node through jco (see run.mjs). Needs node >= 18 and npm; installs the two pinned
# packages from package-lock.json (~5 s, ~100 MB under tests/jco/node_modules). Skips, saying why,
# when node/npm is missing or the npm registry cannot be reached; fails when a check fails.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "SKIP jco test: node/npm not installed"
  exit 0
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 18 ]; then
  echo "SKIP jco test: node $major is older than 18"
  exit 0
fi
if ! timeout 300 npm ci --no-audit --no-fund --prefer-offline --loglevel=error >npm-ci.log 2>&1; then
  if grep -qiE "ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|ECONNRESET|network|registry" npm-ci.log; then
    echo "SKIP jco test: the npm registry is unreachable (npm ci failed: $(grep -m1 -iE 'ERR|error' npm-ci.log))"
    exit 0
  fi
  cat npm-ci.log
  echo "jco test: npm ci failed" >&2
  exit 1
fi
rm -f npm-ci.log
exec node run.mjs
