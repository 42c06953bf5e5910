// End to end, deltas: after hydration every kind of write made through @velocity/fs-sync shows up
// in the container folder (updates, creates in new folders, unicode names, empty and >64 KiB
// contents, deletes, renames of text and of the binary, bulk, binaries written after the snapshot
// and read by the agent from Storage with its container token), and a burst of 1,000 edits from 4
// concurrent writers (distinct editors, conflicting on shared files) converges to exactly the
// database's state, each event applied once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  startSystem, createProject, startAgent, waitInSync, fsClient, waitForFile, burst, exactlyOnce,
  currentSeq, putBinary, sampleApp, iconPng, importPackage,
} from '../harness/index.mjs';

const pkg = await importPackage();
const tmp = mkdtempSync(join(tmpdir(), 'fs-sync-e2e-deltas-'));
const agents = [];
let sys;

before(async () => {
  sys = await startSystem();
});

after(async () => {
  for (const a of agents) await a.stop();
  const exit = await sys?.close();
  rmSync(tmp, { recursive: true, force: true });
  assert.deepEqual(exit, { code: 0, signal: null });
});

/** A project with the sample app and `editors` editors, hydrated into a fresh folder. */
async function hydrated(name, editors = 0) {
  const app = sampleApp(200);
  const project = await createProject(sys, { name, app, editors });
  const session = await sys.session(project.id);
  const target = join(tmp, name, 'project');
  const agent = await startAgent(session.env, { target });
  agents.push(agent);
  await agent.waitReady();
  const m = await agent.metrics();
  return { app, project, session, target, agent, startSeq: m.last_applied_seq };
}

test('every kind of write shows up in the container', async () => {
  const { project, target, agent, startSeq } = await hydrated('kinds');
  const fs = fsClient(pkg, sys, project.owner, project.id);
  await fs.load();
  const big = JSON.stringify(Array.from({ length: 2500 }, (_, i) => ({ id: i, title: `Product ${i}`, price: i * 1.5 })));
  assert.ok(Buffer.byteLength(big) > 64 * 1024, 'over the inline limit: the event omits the content');
  const [splash, splash2] = [iconPng(48), iconPng(64)];

  // [what, action, expected end states {path: content | null}]
  const steps = [
    ['update', () => fs.save('App.tsx', '// edited\nexport default function App() { return null; }\n'),
      { 'App.tsx': '// edited\nexport default function App() { return null; }\n' }],
    ['create in a new folder', () => fs.save('src/features/brand-new/deep/Widget.tsx', 'export const Widget = 1;\n'),
      { 'src/features/brand-new/deep/Widget.tsx': 'export const Widget = 1;\n' }],
    ['create, unicode name', () => fs.save('src/i18n/locales/한국어.json', '{"greeting":"안녕하세요"}\n'),
      { 'src/i18n/locales/한국어.json': '{"greeting":"안녕하세요"}\n' }],
    ['update, unicode name', () => fs.save('docs/guía-de-estilo.md', '# Guía\n\nÑandú 🐦\n'),
      { 'docs/guía-de-estilo.md': '# Guía\n\nÑandú 🐦\n' }],
    ['update to empty', () => fs.save('src/constants/index.ts', ''), { 'src/constants/index.ts': '' }],
    ['large (content_omitted)', () => fs.save('src/data/catalog.json', big), { 'src/data/catalog.json': big }],
    ['delete', () => fs.remove('src/utils/legacy.ts'), { 'src/utils/legacy.ts': null }],
    ['delete the last file of a folder', () => fs.remove('src/features/brand-new/deep/Widget.tsx'),
      { 'src/features/brand-new/deep/Widget.tsx': null }],
    ['rename', () => fs.rename('src/components/Card.tsx', 'src/components/ui/Card.tsx'),
      { 'src/components/Card.tsx': null, 'src/components/ui/Card.tsx': sampleApp(200).files.find((f) => f.path === 'src/components/Card.tsx').content }],
    ['rename the binary', () => fs.rename('assets/icon.png', 'assets/images/icon.png'),
      { 'assets/icon.png': null, 'assets/images/icon.png': iconPng() }],
    ['bulk (writes, a large one, deletes)', () => fs.saveAll([
      { path: 'src/features/settings/SettingsPanel.tsx', content: 'export const SettingsPanel = () => null;\n' },
      { path: 'src/features/settings/useSettings.ts', content: 'export const useSettings = () => ({});\n' },
      { path: 'src/data/catalog.json', content: `${big}\n` },
      { path: 'src/utils/throttle.ts', delete: true },
      { path: '__tests__/throttle.test.ts', delete: true },
    ]), {
      'src/features/settings/SettingsPanel.tsx': 'export const SettingsPanel = () => null;\n',
      'src/features/settings/useSettings.ts': 'export const useSettings = () => ({});\n',
      'src/data/catalog.json': `${big}\n`,
      'src/utils/throttle.ts': null,
      '__tests__/throttle.test.ts': null,
    }],
    ['binary: a new one (Storage + register_binary_file)',
      () => putBinary(sys, project.id, project.owner, { path: 'assets/splash.png', bytes: splash, contentType: 'image/png' }),
      { 'assets/splash.png': splash }],
    ['binary: replaced', () => putBinary(sys, project.id, project.owner, { path: 'assets/splash.png', bytes: splash2, contentType: 'image/png' }),
      { 'assets/splash.png': splash2 }],
    ['binary: deleted', () => fs.catchUp().then(() => fs.remove('assets/splash.png')), { 'assets/splash.png': null }],
    ['delete, then create again', async () => { await fs.remove('README.md'); await fs.save('README.md', '# Back\n'); },
      { 'README.md': '# Back\n' }],
  ];
  for (const [what, action, want] of steps) {
    await action();
    for (const [path, content] of Object.entries(want)) {
      await waitForFile(target, path, content, 10_000).catch((e) => { throw new Error(`${what}: ${e.message}`); });
    }
  }
  assert.equal(existsSync(join(target, 'src/features/brand-new')), false, 'emptied folders are removed');

  const { seq, diff, tree } = await waitInSync(sys, project.id, agent, target);
  assert.deepEqual(diff, { missing: [], extra: [], differ: [], equal: true });
  assert.deepEqual(tree.emptyDirs, []);
  assert.deepEqual(exactlyOnce([agent.applied()], startSeq, seq), []);
  const m = await agent.metrics();
  assert.equal(m.events_applied_total, seq - startSeq);
  assert.ok(m.files_moved_total >= 2, 'renames move the file on disk');
  assert.equal(m.apply_errors_total, 0);
  assert.equal(m.binary_fetch_failures_total, 0, 'the container token may read its project\'s binaries');
});

test('a burst of 1,000 edits from 4 concurrent writers converges to exactly the database state', async (t) => {
  const { project, target, agent, startSeq } = await hydrated('burst', 3);
  assert.equal(project.users.length, 4);
  const t0 = performance.now();
  const result = await burst(pkg, sys, project.id, project.users, { total: 1000, seed: 11 });
  const burstMs = performance.now() - t0;
  assert.equal(result.edits, 1000);
  assert.ok(result.conflicts > 0, 'the writers did collide on the shared files');
  const { seq, diff, tree } = await waitInSync(sys, project.id, agent, target, { timeoutMs: 60_000 });
  assert.equal(await currentSeq(sys, project.id), seq, 'no write landed after the check');
  assert.equal(seq - startSeq, 1000, 'one event per edit (conflicting saves make none)');
  assert.deepEqual(diff, { missing: [], extra: [], differ: [], equal: true });
  assert.deepEqual(tree.emptyDirs, []);
  assert.deepEqual(exactlyOnce([agent.applied()], startSeq, seq), []);
  const m = await agent.metrics();
  assert.equal(m.events_applied_total, seq - startSeq);
  assert.equal(m.apply_errors_total, 0);
  t.diagnostic(`${result.edits} edits in ${Math.round(burstMs)} ms (${JSON.stringify(result.kinds)}), `
    + `${result.conflicts} conflicts resolved; ${tree.files.size} files; agent: gaps ${m.gaps_total}, catch-ups ${m.catchups_total}`);
});
