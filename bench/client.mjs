// @velocity/fs-sync in Node: contentHash throughput next to hash-wasm and WebCrypto, the
// client's own cost per save beyond the HTTP round trip, and the project editor store's cost per
// save beyond the client's. A benchmark, not a test.
//
//   npm run bench:client        (builds the package first)
//
// contentHash is measured as the package loads it here (the Wasm SIMD build) and as an engine
// without SIMD loads it (the baseline build, instantiated separately from the same files).
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { webcrypto, createHash } from 'node:crypto';
import { createSHA256 } from 'hash-wasm';
import { importPackage, pkgDir } from '../tests/harness/index.mjs';
import { fakeBackend } from '../tests/node/fixtures/store-scenario.js';

const { contentHash, FsSyncClient } = await importPackage();
const hashWasm = await createSHA256();

// A second instance of the glue (its own module record, by URL) bound to the baseline .wasm.
const web = new URL(`file://${pkgDir}/dist/web/`);
const baselineGlue = await import(new URL('fs_sync.js?baseline', web).href);
const { makeContentHash } = await import(new URL('hash.js', web).href);
const baselineInstance = await baselineGlue.default({ module_or_path: await readFile(new URL('fs_sync_bg.wasm', web)) });
const { contentHash: baselineHash } = makeContentHash(baselineInstance, baselineGlue);

function text(bytes) {
  let s = '';
  const line = 'export const value = compute(items.map((x) => x * 2)); // ünïcödé\n';
  while (s.length < bytes) s += line;
  return s.slice(0, bytes);
}

// Each peer is called the way an app calls it: WebCrypto's promise is awaited, the synchronous
// hashers are not. Every result is read (a lazily built string would otherwise cost nothing here
// and its price would fall on the app).
let sink = 0;
async function rate(fn, input, bytes, minMs = 1500) {
  const sync = typeof fn(input) === 'string';
  const call = sync ? fn : async (x) => await fn(x);
  for (let i = 0; i < 50; i++) sink ^= (await call(input)).charCodeAt(63); // warm up
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < minMs) {
    if (sync) for (let i = 0; i < 100; i++) sink ^= call(input).charCodeAt(63);
    else for (let i = 0; i < 100; i++) sink ^= (await call(input)).charCodeAt(63);
    n += 100;
  }
  const ms = performance.now() - start;
  return { mbps: (n * bytes) / 1e6 / (ms / 1e3), usPerCall: (ms * 1e3) / n };
}

const peers = {
  'fs-sync contentHash': (s) => contentHash(s),
  'fs-sync, baseline build': (s) => baselineHash(s),
  // hash-wasm's fastest form: one hasher reused synchronously (its sha256() shorthand is async).
  'hash-wasm sha256': (s) => hashWasm.init().update(s).digest('hex'),
  'WebCrypto subtle.digest': async (s) => {
    const d = await webcrypto.subtle.digest('SHA-256', new TextEncoder().encode(s));
    return Buffer.from(d).toString('hex');
  },
};

console.log('| input | ' + Object.keys(peers).join(' MB/s | ') + ' MB/s | vs hash-wasm | vs WebCrypto | baseline vs hash-wasm | baseline vs WebCrypto |');
console.log('|---|---|---|---|---|---|---|---|---|');
for (const size of [1024, 1024 * 1024]) {
  const input = text(size);
  const want = contentHash(input);
  const results = {};
  for (const [name, fn] of Object.entries(peers)) {
    if ((await fn(input)) !== want) throw new Error(`${name} disagrees`);
    results[name] = await rate(fn, input, size, size > 1e5 ? 3000 : 1500);
  }
  const ratios = (name) => ['hash-wasm sha256', 'WebCrypto subtle.digest']
    .map((peer) => `${(results[name].mbps / results[peer].mbps).toFixed(2)}x`);
  console.log(`| ${size === 1024 ? '1 KiB' : '1 MiB'} | ${Object.values(results).map((r) => r.mbps.toFixed(0)).join(' | ')} | ` +
    `${[...ratios('fs-sync contentHash'), ...ratios('fs-sync, baseline build')].join(' | ')} |`);
}

// Per-save overhead: client.save() against a local server that answers at once, with the time
// spent inside fetch (request out, response body in) measured around the fetch the client is
// given, in the same loop. What remains is the client's own work: path check, hashing, tracker,
// JSON both ways, Wasm crossings, promise plumbing.
let version = 0;
const server = createServer((req, res) => {
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    const args = JSON.parse(body);
    version += 1;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ project_id: args.project_uuid, file_path: args.p_file_path, version,
      content_hash: createHash('sha256').update(args.p_content, 'utf8').digest('hex'),
      size_bytes: args.p_content.length, file_type: 'typescript', storage_path: null, is_deleted: false, seq: version, noop: false }));
  });
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${server.address().port}`;
let inFetchMs = 0;
const timedFetch = async (input, init) => {
  const t = performance.now();
  const response = await fetch(input, init);
  const body = await response.text();
  inFetchMs += performance.now() - t;
  return { status: response.status, text: async () => body };
};
const client = new FsSyncClient({ supabaseUrl: url, anonKey: 'anon', projectId: 'p', accessToken: 't', fetch: timedFetch });
const content = text(4096);

async function timeLoop(fn, n) {
  for (let i = 0; i < 100; i++) await fn(i);
  inFetchMs = 0;
  const start = performance.now();
  for (let i = 0; i < n; i++) await fn(i);
  return ((performance.now() - start) * 1e3) / n;
}
const N = 2000;
const viaClient = await timeLoop((i) => client.save(`src/f${i % 50}.ts`, content + i), N);
const roundTrip = (inFetchMs * 1e3) / N;
await client.save('src/same.ts', content);
const requestsBefore = version;
const noop = await timeLoop(() => client.save('src/same.ts', content), N);
if (version !== requestsBefore) throw new Error('a no-op save made a request');
console.log(`\n| save of a 4 KiB file (local stub server, ${N} calls) | µs per call |`);
console.log('|---|---|');
console.log(`| client.save(), in all | ${viaClient.toFixed(0)} |`);
console.log(`| of which the HTTP round trip (inside fetch) | ${roundTrip.toFixed(0)} |`);
console.log(`| the client's own work per save | ${(viaClient - roundTrip).toFixed(0)} |`);
console.log(`| no-op save (no request) | ${noop.toFixed(1)} |`);
server.close();

// The store over the client, against the in-memory stand-in server of the store's tests (no HTTP):
// the same saves through client.save() and through the store's saveFile(), in the same run.
const { createProjectEditorStore } = await importPackage({ subpath: './store' });
const backend = fakeBackend({ contentHash, inferFileType: (await importPackage()).inferFileType });
backend.setFlags('ann', ['FSYNC_USE_RPC']);
const store = createProjectEditorStore({ supabase: backend.supabase('ann'), fetch: backend.fetch });
await store.getState().open(backend.projectId);
const bare = new FsSyncClient({ supabaseUrl: 'http://fake.test', anonKey: 'anon', projectId: backend.projectId, accessToken: 'token-ann', fetch: backend.fetch });
await bare.load();
const viaBare = await timeLoop((i) => bare.save(`bare/f${i % 50}.ts`, content + i), N);
const viaStore = await timeLoop((i) => store.getState().saveFile(`store/f${i % 50}.ts`, content + i), N);
store.getState().close();
console.log(`\n| save of a 4 KiB file (in-memory server, ${N} calls) | µs per call |`);
console.log('|---|---|');
console.log(`| client.save() | ${viaBare.toFixed(0)} |`);
console.log(`| store.saveFile() | ${viaStore.toFixed(0)} |`);
console.log(`| the store's own work per save | ${(viaStore - viaBare).toFixed(0)} (${(viaStore / viaBare).toFixed(2)}× the client's) |`);
