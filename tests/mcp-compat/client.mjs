// The compatibility script: the same MCP calls, in the same order, against any stdio MCP server.
// Usage: MCP_COMPAT_SERVER='["command", "arg", ...]' node client.mjs   (the server's environment is this
// process's; the command is not in argv because Node 20 reads `--env-file` anywhere in its argv)
// Prints one JSON object: {"tools": [...the official four's definitions...], "steps": [{name, args, isError, text, structured}]}.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const [command, ...args] = JSON.parse(process.env.MCP_COMPAT_SERVER);
const transport = new StdioClientTransport({ command, args, env: process.env, stderr: "ignore" });
const client = new Client({ name: "theta-mcp-compat", version: "1.0.0" });
await client.connect(transport);

const OFFICIAL = ["list_services", "infer", "get_request_status", "get_upload_url"];
const { tools } = await client.listTools();
const out = { tools: tools.filter((t) => OFFICIAL.includes(t.name)), steps: [] };

async function step(name, tool, toolArgs) {
  const r = await client.callTool({ name: tool, arguments: toolArgs });
  const text = (r.content || []).filter((c) => c.type === "text").map((c) => c.text).join("\n");
  out.steps.push({ name, tool, args: toolArgs, isError: r.isError === true, text, structured: r.structuredContent ?? null });
  return text;
}

await step("list all", "list_services", {});
await step("list image", "list_services", { category: "image" });
await step("list IMAGE", "list_services", { category: "IMAGE" });
await step("list other", "list_services", { category: "other" });
await step("list vision", "list_services", { category: "vision" });
await step("infer default wait", "infer", { service: "flux", input: { prompt: "a blue cloud" } });
const pending = await step("infer wait 0", "infer", { service: "flux", input: { prompt: "a red cloud" }, wait: 0 });
const id = (pending.match(/Request ID: (\S+)/) || [])[1] || "missing";
await step("status", "get_request_status", { request_id: id });
await step("infer wait as a string", "infer", { service: "flux", input: { prompt: "a green cloud" }, wait: "10" });
await step("infer unknown argument", "infer", { service: "flux", input: { prompt: "a grey cloud" }, wait: 5, style: "noir" });
await step("infer wait over 60", "infer", { service: "flux", input: { prompt: "a white cloud" }, wait: 61 });
await step("infer chat model", "infer", { service: "llama_3_1_70b", input: { messages: [{ role: "user", content: "hi" }], stream: false } });
await step("infer unknown service", "infer", { service: "no_such_service", input: { prompt: "x" } });
await step("status unknown", "get_request_status", { request_id: "infr_rqst_doesnotexist" });
await step("upload url", "get_upload_url", { service: "whisper", input_field: "audio_filename" });

await client.close();
process.stdout.write(JSON.stringify(out, null, 2) + "\n");
