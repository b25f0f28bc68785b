// What an MCP server adds to one call: `tools/call get_request_status` through the server, against the
// same upstream request sent directly from this process (Node's fetch, keep-alive) to the same API: the
// floor of client + upstream that any server pays. Calls alternate (floor, server, floor, ...) so load
// on the machine falls on both sides alike. Used by the benchmark (`theta-bench --only mcp`).
//
// Environment: MCP_COMPAT_SERVER='["command", "arg", ...]' (the server's environment is this process's),
// OVERHEAD_STATUS_URL (the upstream GET of the request's status), OVERHEAD_TOKEN (its Bearer token),
// OVERHEAD_REQUEST_ID, OVERHEAD_CALLS (default 300), OVERHEAD_WARMUP (default 30).
// Prints one JSON object: {"floor_us": [...], "server_us": [...], "floor_failures": n, "server_failures": n}.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const [command, ...args] = JSON.parse(process.env.MCP_COMPAT_SERVER);
const url = process.env.OVERHEAD_STATUS_URL;
const token = process.env.OVERHEAD_TOKEN;
const id = process.env.OVERHEAD_REQUEST_ID;
const calls = Number(process.env.OVERHEAD_CALLS || 300);
const warmup = Number(process.env.OVERHEAD_WARMUP || 30);

const transport = new StdioClientTransport({ command, args, env: process.env, stderr: "ignore" });
const client = new Client({ name: "theta-mcp-overhead", version: "1.0.0" });
await client.connect(transport);

// A call counts as ok only when the answer names the request: an error answer is a failure, not a
// fast call.
async function viaServer() {
  const r = await client.callTool({ name: "get_request_status", arguments: { request_id: id } });
  const text = (r.content || []).map((c) => c.text || "").join("\n");
  return r.isError !== true && text.includes(id);
}

async function direct() {
  const resp = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
  const body = await resp.json();
  return resp.ok && body?.body?.infer_requests?.[0]?.id === id;
}

async function timed(f) {
  const t = process.hrtime.bigint();
  let ok;
  try {
    ok = await f();
  } catch {
    ok = false;
  }
  return [Number(process.hrtime.bigint() - t) / 1000, ok];
}

const out = { floor_us: [], server_us: [], floor_failures: 0, server_failures: 0 };
for (let i = 0; i < warmup + calls; i++) {
  const [f, fok] = await timed(direct);
  const [s, sok] = await timed(viaServer);
  if (i < warmup) continue;
  out.floor_us.push(f);
  out.server_us.push(s);
  if (!fok) out.floor_failures++;
  if (!sok) out.server_failures++;
}
await client.close();
process.stdout.write(JSON.stringify(out) + "\n");
