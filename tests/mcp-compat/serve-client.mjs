// `theta-host serve` through the official TypeScript SDK's streamable-HTTP client: for each bearer
// token, initialize, tools/list and one list_services call (see tests/e2e/tests/all/serve.rs).
// Usage: SERVE_URL=http://127.0.0.1:PORT/mcp SERVE_TOKENS='["token", ...]' node serve-client.mjs
// Prints {"runs": [{"tools": [names], "call": {isError, text}} or {"error": "...", "status": 401}, ...]}.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const url = new URL(process.env.SERVE_URL);
const tokens = JSON.parse(process.env.SERVE_TOKENS);
const runs = [];
for (const token of tokens) {
  const transport = new StreamableHTTPClientTransport(url, {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
  });
  const client = new Client({ name: "theta-serve-ts", version: "1.0.0" });
  try {
    await client.connect(transport);
    const { tools } = await client.listTools();
    const r = await client.callTool({ name: "list_services", arguments: {} });
    const text = (r.content || []).filter((c) => c.type === "text").map((c) => c.text).join("\n");
    runs.push({ tools: tools.map((t) => t.name), call: { isError: r.isError === true, text } });
  } catch (e) {
    // The SDK's StreamableHTTPError carries the HTTP status as `code`.
    runs.push({ error: String(e && e.message ? e.message : e), status: e && typeof e.code === "number" ? e.code : null });
  } finally {
    await client.close().catch(() => {});
  }
}
process.stdout.write(JSON.stringify({ runs }, null, 2) + "\n");
