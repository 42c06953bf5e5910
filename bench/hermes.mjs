// @velocity/fs-sync on React Native's engine: contentHash in the Hermes 0.12 VM (no JIT) next to
// the pure-JavaScript SHA-256s an app could use instead (js-sha256, @noble/hashes) in the same VM,
// and the client's own cost per save there. A benchmark, not a test.
//
//   npm run bench:hermes        (builds the package first)
//
// The bench entry imports the package by name and is bundled by Metro as a React Native app's is
// (tests/harness/metro.mjs), compiled to bytecode by Hermes 0.12's hermesc -O, as a release
// build is, and run by the 0.12 VM. Every peer takes the same string and returns the hex digest;
// @noble/hashes takes bytes, so its time includes a UTF-8 encoder (Hermes 0.12 has no
// TextEncoder).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { installedConsumer, metroBundle, compileHermes, runHermes, hermes } from '../tests/harness/index.mjs';

const ENTRY = `
import { contentHash, FsSyncClient } from '@velocity/fs-sync';
import { sha256 as jsSha256 } from 'js-sha256';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';

function utf8(s) {
  const out = new Uint8Array(s.length * 3);
  let at = 0;
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) { out[at++] = c; continue; }
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) { c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00); i++; }
    }
    if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;
    if (c < 0x800) { out[at++] = 0xc0 | (c >> 6); }
    else if (c < 0x10000) { out[at++] = 0xe0 | (c >> 12); out[at++] = 0x80 | ((c >> 6) & 63); }
    else { out[at++] = 0xf0 | (c >> 18); out[at++] = 0x80 | ((c >> 12) & 63); out[at++] = 0x80 | ((c >> 6) & 63); }
    out[at++] = 0x80 | (c & 63);
  }
  return out.subarray(0, at);
}

function text(n) {
  let s = '';
  const line = 'export const value = compute(items.map((x) => x * 2)); // ünïcödé\\n';
  while (s.length < n) s += line;
  return s.slice(0, n);
}

const peers = {
  fsSync: (s) => contentHash(s),
  jsSha256: (s) => jsSha256(s),
  noble: (s) => bytesToHex(nobleSha256(utf8(s))),
};

let sink = 0;
function rate(fn, input, minMs) {
  for (let i = 0; i < 3; i++) sink ^= fn(input).charCodeAt(63);
  let n = 0;
  const start = Date.now();
  while (Date.now() - start < minMs) {
    sink ^= fn(input).charCodeAt(63);
    n += 1;
  }
  return (n * input.length) / 1e3 / (Date.now() - start); // MB/s: the inputs are ASCII but for a few
}

async function main() {
  const report = { hash: {} };
  for (const size of [1024, 65536]) {
    const input = text(size);
    const want = peers.jsSha256(input);
    report.hash[size] = {};
    for (const [name, fn] of Object.entries(peers)) {
      if (fn(input) !== want) throw new Error(name + ' disagrees');
      report.hash[size][name] = rate(fn, input, 2000);
    }
  }

  // The client's own work per save: a fetch that answers at once, with no network and no server
  // work (the answer is prepared before the call), so what remains is the client's: argument
  // checks, the path rules, hashing, the tracker, JSON both ways, promise plumbing.
  let answer = '';
  const fetch = async () => ({ status: 200, text: async () => answer });
  const client = new FsSyncClient({ supabaseUrl: 'http://stub.test', anonKey: 'anon', projectId: 'p', accessToken: 't', fetch });
  const content = text(4096);
  const N = 300;
  const paths = [];
  for (let i = 0; i < 50; i++) paths.push('src/f' + i + '.ts');
  const versions = {};
  const save = (i) => {
    const path = paths[i % 50];
    versions[path] = (versions[path] || 0) + 1;
    answer = JSON.stringify({ file_path: path, version: versions[path], content_hash: null, size_bytes: 4096,
      file_type: 'typescript', is_deleted: false, seq: i + 1, noop: false });
    return client.save(path, content + i);
  };
  for (let i = 0; i < 20; i++) await save(i);
  let start = Date.now();
  for (let i = 0; i < N; i++) await save(i);
  report.saveUs = ((Date.now() - start) * 1e3) / N;
  start = Date.now();
  for (let i = 0; i < N; i++) sink ^= contentHash(content + i).charCodeAt(0);
  report.hash4kUs = ((Date.now() - start) * 1e3) / N;
  answer = JSON.stringify({ file_path: 'src/same.ts', version: 1, content_hash: contentHash(content), size_bytes: 4096,
    file_type: 'typescript', is_deleted: false, seq: 1, noop: false });
  await client.save('src/same.ts', content);
  start = Date.now();
  for (let i = 0; i < N; i++) {
    const head = await client.save('src/same.ts', content);
    if (!head.noop) throw new Error('not a no-op');
  }
  report.noopUs = ((Date.now() - start) * 1e3) / N;
  report.sink = sink;
  print(JSON.stringify(report));
}

main().catch((e) => print('FAILED ' + ((e && e.stack) || e)));
`;

const dir = installedConsumer();
writeFileSync(join(dir, 'bench-hermes.js'), ENTRY);
const bundle = await metroBundle({
  projectRoot: dir, entry: 'bench-hermes.js', platform: 'ios', out: join(dir, 'out/bench-hermes.js'),
  modules: ['js-sha256', '@noble/hashes'],
});
// Twice: as a release app runs it (bytecode from hermesc -O) and from source (the VM compiles it
// itself without the optimizer, as for a development bundle).
const modes = {
  'bytecode (hermesc -O)': compileHermes(hermes.compiler012, bundle, join(dir, 'out/bench-hermes.hbc')),
  'from source': bundle,
};
const reports = {};
for (const [mode, file] of Object.entries(modes)) {
  const r = runHermes(file);
  if (r.status !== 0 || r.stdout.startsWith('FAILED')) throw new Error(`hermes (${mode}): ${r.stdout}${r.stderr}`);
  reports[mode] = JSON.parse(r.stdout);
}

console.log('Hermes 0.12, no JIT. MB/s, and fs-sync contentHash\'s speed as a multiple of each peer\'s:\n');
console.log('| Hermes runs | input | fs-sync contentHash | js-sha256 | @noble/hashes | vs js-sha256 | vs @noble/hashes |');
console.log('|---|---|---|---|---|---|---|');
for (const [mode, report] of Object.entries(reports)) {
  for (const [size, label] of [[1024, '1 KiB'], [65536, '64 KiB']]) {
    const h = report.hash[size];
    console.log(`| ${mode} | ${label} | ${h.fsSync.toFixed(2)} | ${h.jsSha256.toFixed(2)} | ${h.noble.toFixed(2)} | ` +
      `${(h.fsSync / h.jsSha256).toFixed(2)}x | ${(h.fsSync / h.noble).toFixed(2)}x |`);
  }
}
console.log('\n| save of a 4 KiB file on Hermes (a fetch that answers at once), µs per call | ' + Object.keys(reports).join(' | ') + ' |');
console.log('|---|---|---|');
const row = (label, key) => console.log(`| ${label} | ${Object.values(reports).map((r) => r[key].toFixed(0)).join(' | ')} |`);
row("client.save(): the client's own work", 'saveUs');
row('of which hashing the 4 KiB (as contentHash does)', 'hash4kUs');
row('no-op save (no request)', 'noopUs');
