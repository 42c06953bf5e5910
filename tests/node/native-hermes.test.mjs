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
import { storeScenario } from './fixtures/store-scenario.js';

const sha = (x) => createHash('sha256').update(x).digest('hex');

let dir;
let bundle;
let wasmReport;
let storeReport;
let currentCompiler; // the current compiler's run, on the other core while the tests below run

before(async () => {
  dir = installedConsumer();
  copyFileSync(join(root, 'tests/node/fixtures/scenario.js'), join(dir, 'scenario.js'));
  copyFileSync(join(root, 'tests/node/fixtures/store-scenario.js'), join(dir, 'store-scenario.js'));
  writeFileSync(join(dir, 'hermes-entry.js'), `
    import * as fsSync from '@velocity/fs-sync';
    import { createProjectEditorStore } from '@velocity/fs-sync/store';
    import { sha256 } from 'js-sha256';
    import { scenario } from './scenario';
    import { storeScenario } from './store-scenario';
    scenario(fsSync, (x) => sha256(x))
      .then((report) => storeScenario(fsSync, createProjectEditorStore).then((store) => ({ report, store })))
      .then(
        (both) => print(JSON.stringify(both)),
        (e) => print('FAILED ' + ((e && e.stack) || e)),
      );
  `);
  bundle = await metroBundle({ projectRoot: dir, entry: 'hermes-entry.js', platform: 'ios', out: join(dir, 'out/ios.js'), modules: ['js-sha256', 'zustand'] });
  currentCompiler = compileHermesAsync(hermes.compiler, bundle, join(dir, 'out/ios.current.hbc'));
  currentCompiler.catch(() => {}); // reported by its test
  const pkg = await importPackage();
  wasmReport = JSON.parse(JSON.stringify(await scenario(pkg, (x) => sha(x))));
  const { createProjectEditorStore } = await importPackage({ subpath: './store' });
  storeReport = JSON.parse(JSON.stringify(await storeScenario(pkg, createProjectEditorStore)));
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

test('the store\'s decisions over the stand-in server (Wasm build): the reference for the others', () => {
  const step = Object.fromEntries(storeReport.steps);
  const files = (s) => Object.fromEntries(s.files.map(([p, c]) => [p, c]));
  assert.deepEqual([step.opened.annRpc, step.opened.bobRpc], [true, false], 'FSYNC_USE_RPC is read per user');
  assert.deepEqual(files(step.opened.ann), { 'README.md': '# hi', 'src/App.tsx': 'v1' });
  assert.deepEqual(step['save and no-op'], { save: { status: 'saved', version: 2 }, noop: { status: 'noop', version: 2 }, requests: 0 });
  assert.equal(files(step['bob follows'])['src/App.tsx'], 'v2');
  assert.deepEqual(step['peer edit seen by ann'], { path: 'src/App.tsx', content: 'bob draft', userId: 'bob' });
  // A remote change under a local edit: both versions kept, the draft never overwritten.
  assert.deepEqual(step.conflict.conflicts, [{ path: 'src/App.tsx', mine: 'bob draft', theirs: { content: 'ann v3', version: 3, deleted: false }, baseVersion: 2 }]);
  assert.deepEqual(step.conflict.drafts, { 'src/App.tsx': 'bob draft' });
  assert.equal(step['save refused while in conflict'].status, 'conflict');
  assert.equal(step['resolved (legacy write)'].server['src/App.tsx'], 'merged: ann v3 + bob draft');
  assert.deepEqual(step['resolved (legacy write)'].bob.conflicts, []);
  assert.equal(files(step['ann follows the legacy write'])['src/App.tsx'], 'merged: ann v3 + bob draft');
  // The server's PT409 (a stale tracker) surfaces the same way.
  assert.equal(step['stale save → conflict'].result.status, 'conflict');
  assert.deepEqual(step['stale save → conflict'].ann.conflicts[0].theirs, { content: '# bob', version: 2, deleted: false });
  assert.equal(step['ann resolves over the version shown'].server['README.md'], '# ann and bob');
  assert.deepEqual(files(step['gap caught up'].bob), { ...files(step['gap caught up'].bob), 'src/one.ts': '1', 'src/two.ts': '2', 'src/three.ts': '3' });
  assert.deepEqual(step['bulk generation'], { result: { status: 'saved', mode: 'bulk', applied: 3 }, events: ['bulk:apply'] });
  assert.deepEqual(step['sequential generation'].events, ['file:update', 'file:update']);
  assert.deepEqual(step['bulk flag off → sequential'].result.mode, 'sequential');
  assert.deepEqual(step['offline save queued'], { result: { status: 'queued', error: 'network' }, drafts: { 'src/offline.ts': 'written offline' }, queued: { 'src/offline.ts': 1 }, retryTimer: [10] });
  assert.deepEqual(step['back online'], { drafts: {}, queued: {}, server: 'written offline' });
  assert.deepEqual(step['undo of a generation'], {
    status: 'partial', reverted: ['README.md', 'gen/new.ts'],
    conflicts: [{ path: 'gen/bob.ts', changeVersion: 1, currentVersion: 2 }],
    events: ['bulk:apply'], readme: true, newGone: true, bobKept: 'bob changed it',
  });
  assert.deepEqual(step.restore, { status: 'restored', events: ['bulk:apply'], equal: true });
  assert.deepEqual(step.history, [[0, 'bulk:apply', 'ann', ['README.md', 'gen/bob.ts', 'gen/new.ts']], [1, 'file:update', 'bob', ['gen/bob.ts']]]);
  const final = step.final;
  assert.deepEqual(final.ann, final.server);
  assert.deepEqual(final.bob, final.server);
  assert.equal(final.seqs[0], final.seqs[2]);
  assert.equal(final.seqs[1], final.seqs[2]);
  assert.ok(final.tableWrites > 0, 'the legacy path was used');
});

test('in the Hermes 0.12 VM the report equals the Wasm build\'s', () => {
  const hbc = compileHermes(hermes.compiler012, bundle, join(dir, 'out/ios.hbc'));
  const r = runHermes(hbc);
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stdout, /^FAILED/, r.stdout);
  const { report, store } = JSON.parse(r.stdout);
  assert.deepEqual(report, wasmReport);
  assert.deepEqual(store, storeReport, 'the store makes the same decisions in Hermes');
});

test('in Node, the react-native build\'s report equals the Wasm build\'s', async () => {
  const pkg = await importPackage({ condition: 'react-native' });
  assert.deepEqual(JSON.parse(JSON.stringify(await scenario(pkg, (x) => sha(x)))), wasmReport);
  const { createProjectEditorStore } = await importPackage({ condition: 'react-native', subpath: './store' });
  assert.deepEqual(JSON.parse(JSON.stringify(await storeScenario(pkg, createProjectEditorStore))), storeReport);
});

test('the current Hermes compiler (hermes-compiler) compiles the same bundle', async () => {
  // Its bytecode is for current Hermes, which the 0.12 VM cannot run: compiled, not run.
  assert.ok(statSync(await currentCompiler).size > 100_000);
});
