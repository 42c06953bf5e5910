// The React Native build in real Hermes: an app entry that imports @velocity/fs-sync by name is
// bundled by Metro as a React Native app's config does it (the "react-native" condition, RN's
// Babel preset, which lowers the classes Hermes 0.12 lacks), compiled to bytecode and run in the
// Hermes 0.12 VM. It runs tests/node/fixtures/scenario.js (hashes, every path rule, file types,
// errors, the version tracker, event classification and catch-up over an injected fetch, the
// digest option) and its report must equal the Wasm build's in Node, which is checked against
// Node's own SHA-256. The same bundle must also compile with the current Hermes compiler.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  installedConsumer, importPackage, metroBundle, runHermes, compileHermes, compileHermesAsync, hermes, root,
} from '../harness/index.mjs';
import { scenario, hashInputs, byteInputs } from './fixtures/scenario.js';

const sha = (x) => createHash('sha256').update(x).digest('hex');

let dir;
let bundle;
let wasmReport;
let currentCompiler; // the current compiler's run, on the other core while the tests below run

before(async () => {
  dir = installedConsumer();
  copyFileSync(join(root, 'tests/node/fixtures/scenario.js'), join(dir, 'scenario.js'));
  writeFileSync(join(dir, 'hermes-entry.js'), `
    import * as fsSync from '@velocity/fs-sync';
    import { sha256 } from 'js-sha256';
    import { scenario } from './scenario';
    scenario(fsSync, (x) => sha256(x)).then(
      (report) => print(JSON.stringify(report)),
      (e) => print('FAILED ' + ((e && e.stack) || e)),
    );
  `);
  bundle = await metroBundle({ projectRoot: dir, entry: 'hermes-entry.js', platform: 'ios', out: join(dir, 'out/ios.js'), modules: ['js-sha256'] });
  currentCompiler = compileHermesAsync(hermes.compiler, bundle, join(dir, 'out/ios.current.hbc'));
  currentCompiler.catch(() => {}); // reported by its test
  const pkg = await importPackage();
  wasmReport = JSON.parse(JSON.stringify(await scenario(pkg, (x) => sha(x))));
});

test('Metro resolves the react-native build: no Wasm, no top-level await, no import.meta', () => {
  const code = readFileSync(bundle, 'utf8');
  assert.match(code, /initTranslated/, 'the translated build');
  for (const wasmOnly of [/fs_sync(_simd)?_bg\.wasm/, /import\.meta\.url/, /WebAssembly\.instantiate/]) {
    assert.ok(!wasmOnly.test(code), `the bundle has ${wasmOnly}`);
  }
});

test('the Wasm report is right (Node SHA-256, core rule names): the reference for the others', () => {
  const { hashes } = wasmReport;
  for (const [name, s] of Object.entries(hashInputs())) assert.equal(hashes[name], sha(Buffer.from(s, 'utf8')), name);
  for (const [name, b] of Object.entries(byteInputs())) assert.equal(hashes[name], sha(b), name);
  assert.equal(hashes['after growth'], 'c2a59c71097b678dc5af2eb1f98ddc575b63948b0fa6740071a945673aaada4d');
  assert.deepEqual(wasmReport.paths.map((r) => r.rule ?? r.argument ?? 'ok'), [
    'empty', 'too_long', 'control_char', 'backslash', 'absolute', 'trailing_slash', 'empty_segment',
    'dot_segment', 'dot_segment', 'too_many_segments', 'segment_too_long', 'not_nfc', 'not_nfc',
    'reserved', 'ok', 'ok', 'ok', 'ok', 'ok', 'path', 'path', 'path',
  ]);
  assert.ok(wasmReport.paths.filter((r) => r.error).every((r) => r.isError && r.isFsSyncError && r.kind === 'invalid'));
  assert.deepEqual(wasmReport.types, ['typescript', 'binary', 'text', 'json', 'markdown', 'sql', 'text']);
  assert.deepEqual(wasmReport.errorKinds.map((r) => r.kind), ['too_large', 'not_found', 'unauthorized', 'unauthorized', 'rate_limited', 'server', 'invalid', 'network']);
  assert.equal(wasmReport.noopRequests, 0);
  assert.equal(wasmReport.conflict.kind, 'conflict');
  assert.deepEqual(
    [wasmReport.events.applied.kind, wasmReport.events.duplicate.kind, wasmReport.events.gap.kind],
    ['applied', 'duplicate', 'gap'],
  );
  // catchUp read the log to its end, the delete included: its live copy is a duplicate then.
  assert.equal(wasmReport.events.caughtUp.value.lastSeq, wasmReport.events.start + 4);
  assert.equal(wasmReport.events.delete.kind, 'duplicate');
  assert.equal(wasmReport.events.deletedHead.deleted, true);
  assert.equal(wasmReport.events.afterCatchUp.duplicateTwo, 'duplicate');
  assert.equal(wasmReport.events.afterCatchUp.idleCheck, true);
  assert.deepEqual(Object.values(wasmReport.digest).slice(0, 4).map((r) => r.argument ?? 'ok'), ['digest', 'digest', 'digest', 'ok']);
  assert.deepEqual(wasmReport.digest.noop, { noop: true, requests: 0, dirty: [false, true] });
  assert.equal(wasmReport.digest.used, true);
  assert.deepEqual(wasmReport.digest.reset, { hash: hashes.accents, calls: 0 });
});

test('in the Hermes 0.12 VM the report equals the Wasm build\'s', () => {
  const hbc = compileHermes(hermes.compiler012, bundle, join(dir, 'out/ios.hbc'));
  const r = runHermes(hbc);
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stdout, /^FAILED/, r.stdout);
  assert.deepEqual(JSON.parse(r.stdout), wasmReport);
});

test('in Node, the react-native build\'s report equals the Wasm build\'s', async () => {
  const pkg = await importPackage({ condition: 'react-native' });
  assert.deepEqual(JSON.parse(JSON.stringify(await scenario(pkg, (x) => sha(x)))), wasmReport);
});

test('the current Hermes compiler (hermes-compiler) compiles the same bundle', async () => {
  // Its bytecode is for current Hermes, which the 0.12 VM cannot run: compiled, not run.
  assert.ok(statSync(await currentCompiler).size > 100_000);
});
