// Runs the plugin component (target/wasm32-wasip2/plugin-release/theta_plugin.wasm) in Node through jco:
// the component is transpiled to an ES module and runs on @bytecodealliance/preview2-shim, i.e. with
// no Theta host around it. Checks what needs no network:
//   1. describe() lists the commands with JSON schemas and effects;
//   2. a paid command under THETA_DRY_RUN=1 returns the dry-run preview (nothing is sent);
//   3. a command that needs the token, without it, fails with missing-credential (nothing is sent);
// and, in a child process with a time limit, a real list_services over the shim's wasi:http: it reaches
// https://ondemand.thetaedgecloud.com when there is a network, and must otherwise fail with a typed
// transport/timeout error (the plugin only allows https *.thetaedgecloud.com URLs, so it cannot be
// pointed at the loopback fake).
// Prints "N passed, N failed" at the end; exits non-zero on any failure.

import { transpile, writeFiles } from '@bytecodealliance/jco-transpile';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const wasm =
  process.env.THETA_PLUGIN_WASM ?? join(root, 'target/wasm32-wasip2/plugin-release/theta_plugin.wasm');
const outDir = join(here, '.out');
const moduleUrl = pathToFileURL(join(outDir, 'theta_plugin.js')).href;

// The shim hands the guest the whole process environment unless told otherwise: give it only this.
async function withEnv(env) {
  const { _setEnv } = await import('@bytecodealliance/preview2-shim/cli');
  _setEnv(env);
}

/** Calls `f`, returning {ok} or {err: the theta-error variant}: jco throws the `err` case of a
 * `result` (as a ComponentError's payload in some versions, as the variant itself in others). */
function call(f) {
  try {
    return { ok: f() };
  } catch (e) {
    if (e && e.payload !== undefined) return { err: e.payload };
    if (e && typeof e.tag === 'string') return { err: e };
    throw e;
  }
}

// Child mode: one live list_services, result on stdout as JSON.
if (process.argv[2] === '--network-probe') {
  await withEnv({ THETA_HTTP_TIMEOUT_MS: '5000', THETA_HTTP_MAX_RETRIES: '0' });
  const plugin = await import(moduleUrl);
  const r = call(() => plugin.ondemand.listServices('image'));
  process.stdout.write(JSON.stringify(r.ok ? { ok: r.ok.length } : { err: r.err }));
  process.exit(0);
}

let passed = 0;
let failed = 0;
function check(name, fn) {
  try {
    fn();
    passed += 1;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed += 1;
    console.log(`FAIL ${name}: ${e.message}`);
  }
}
function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

if (!existsSync(wasm)) {
  console.error(`${wasm} is missing: run scripts/build-wasm.sh first`);
  process.exit(1);
}
rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });
const started = Date.now();
const { files } = await transpile(wasm, { name: 'theta_plugin', outDir });
await writeFiles(files);
console.log(`transpiled ${wasm} in ${Date.now() - started} ms (${Object.keys(files).length} files)`);

await withEnv({ THETA_DRY_RUN: '1' });
const plugin = await import(moduleUrl);

check('describe() lists every command with a JSON schema and an effect', () => {
  const commands = plugin.commands.describe();
  const names = commands.map((c) => c.name);
  for (const n of ['list_services', 'infer', 'get_request_status', 'get_upload_url', 'theta.ondemand.chat']) {
    assert(names.includes(n), `${n} missing from ${names}`);
  }
  for (const c of commands) {
    const schema = JSON.parse(c.argsSchema);
    assert(schema.type === 'object', `${c.name}: schema type ${schema.type}`);
    assert(['read', 'mutate', 'spend'].includes(c.effect), `${c.name}: effect ${c.effect}`);
  }
  assert(commands.find((c) => c.name === 'infer').effect === 'spend', 'infer spends');
});

check('a paid command under THETA_DRY_RUN=1 returns the request it would send', () => {
  const r = call(() =>
    plugin.commands.invoke('infer', JSON.stringify({ service: 'flux', input: { prompt: 'a blue cloud' } })),
  );
  assert(r.err, `expected an error, got ${JSON.stringify(r.ok)}`);
  assert(r.err.tag === 'dry-run', `expected dry-run, got ${JSON.stringify(r.err)}`);
  assert(r.err.val.method === 'POST', `method ${r.err.val.method}`);
  assert(
    r.err.val.url.startsWith('https://ondemand.thetaedgecloud.com/infer_request/flux'),
    `url ${r.err.val.url}`,
  );
  assert(JSON.parse(r.err.val.body).input.prompt === 'a blue cloud', `body ${r.err.val.body}`);
});

check('the typed export takes typed arguments (same dry-run through ondemand.infer)', () => {
  const r = call(() =>
    plugin.ondemand.infer({ service: 'flux', input: JSON.stringify({ prompt: 'x' }), wait: 0 }),
  );
  assert(r.err && r.err.tag === 'dry-run', JSON.stringify(r));
});

await withEnv({});
check('without a token, a command that needs it fails with missing-credential', () => {
  const r = call(() => plugin.commands.invoke('get_request_status', JSON.stringify({ request_id: 'infr_rqst_1' })));
  assert(r.err, `expected an error, got ${JSON.stringify(r.ok)}`);
  assert(r.err.tag === 'missing-credential', JSON.stringify(r.err));
  assert(r.err.val.variable === 'THETA_ONDEMAND_API_TOKEN', JSON.stringify(r.err.val));
});

check('bad arguments are invalid-argument errors naming the field', () => {
  const r = call(() => plugin.commands.invoke('list_services', JSON.stringify({ category: 'music' })));
  assert(r.err && r.err.tag === 'invalid-argument' && r.err.val.field === 'category', JSON.stringify(r));
});

// The live call runs in a child process: the shim blocks the thread on network I/O, so only a process
// time limit can bound it.
const probe = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--network-probe'], {
  encoding: 'utf8',
  timeout: 60_000,
});
check('list_services over the shim wasi:http: a catalogue, or a typed network error', () => {
  assert(!probe.error, `the probe did not finish: ${probe.error?.message}`);
  const r = JSON.parse(probe.stdout || 'null');
  assert(r, `no probe result; stderr: ${probe.stderr}`);
  if (r.ok !== undefined) {
    console.log(`     reached ondemand.thetaedgecloud.com: ${r.ok} image services`);
  } else {
    assert(['transport', 'timeout', 'upstream'].includes(r.err.tag), JSON.stringify(r.err));
    console.log(`     no route to Theta here: ${r.err.tag}: ${JSON.stringify(r.err.val).slice(0, 160)}`);
  }
});

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
