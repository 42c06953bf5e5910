// End to end, deterministic hydration: fs-sync-dev + the edge worker in workerd + fs-sync-hydrate
// as real processes. A project holding a ~200-file sample app (one binary from Storage, unicode
// names, an empty file) is handed to a container through POST /sessions; the hydrated folder must
// equal list_current_files byte for byte with nothing extra, and a second container built from
// the same state must be identical, from the same snapshot bytes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  startSystem, createProject, startAgent, waitInSync, readTree, compareFiles, databaseFiles, call,
  sampleApp,
} from '../harness/index.mjs';

const app = sampleApp(200);
app.files.push({ path: 'src/constants/empty.ts', content: '' });
const tmp = mkdtempSync(join(tmpdir(), 'fs-sync-e2e-hydration-'));
const agents = [];
let sys;
let project;
let first; // {session, tree}

before(async () => {
  sys = await startSystem();
  project = await createProject(sys, { name: 'hydration', app });
});

after(async () => {
  for (const a of agents) await a.stop();
  const exit = await sys?.close();
  rmSync(tmp, { recursive: true, force: true });
  assert.deepEqual(exit, { code: 0, signal: null }, 'fs-sync-dev exits cleanly');
});

async function hydrate(name) {
  const session = await sys.session(project.id);
  const target = join(tmp, name, 'project');
  const agent = await startAgent(session.env, { target });
  agents.push(agent);
  await agent.waitReady();
  return { session, target, agent };
}

test('the hydrated folder equals list_current_files byte for byte: binary, unicode names, nothing extra', async () => {
  const { session, target, agent } = await hydrate('a');
  const { seq, expected, tree, diff } = await waitInSync(sys, project.id, agent, target);

  assert.equal(expected.size, app.files.length + 1);
  assert.deepEqual(diff, { missing: [], extra: [], differ: [], equal: true });
  assert.deepEqual(tree.others, [], 'no symlinks or other special files');
  assert.deepEqual(tree.emptyDirs, [], 'no empty folders');
  assert.equal(session.body.snapshot.asOfSeq, seq, 'the snapshot was cut at the current seq');
  assert.equal(session.body.snapshot.fileCount, expected.size);

  // The binary: the bytes generated, the Storage object, the file on disk — all one.
  const icon = tree.files.get('assets/icon.png');
  assert.ok(icon.equals(app.binary.bytes), 'assets/icon.png equals the uploaded PNG');
  const rows = await call(sys, null, 'list_current_files', { project_uuid: project.id });
  const iconRow = rows.find((r) => r.file_path === 'assets/icon.png');
  assert.equal(iconRow.content, null);
  assert.ok(iconRow.storage_path);
  assert.equal(createHash('sha256').update(icon).digest('hex'), iconRow.content_hash);

  // Unicode names arrive as the same NFC bytes the database holds (no normalisation on the way).
  for (const p of ['docs/guía-de-estilo.md', 'src/i18n/locales/日本語.json']) {
    assert.ok(tree.files.has(p), p);
    const [dir, name] = [p.slice(0, p.lastIndexOf('/')), p.slice(p.lastIndexOf('/') + 1)];
    const raw = readdirSync(join(target, dir), { encoding: 'buffer' }).find((b) => b.toString('utf8') === name);
    assert.ok(raw && raw.equals(Buffer.from(name.normalize('NFC'), 'utf8')), `${p} is stored as NFC bytes`);
  }
  assert.equal(tree.files.get('src/constants/empty.ts').length, 0);

  // The agent's own account: started from the snapshot, nothing to apply, ready.
  const m = await agent.metrics();
  assert.equal(m.hydrate_ready, 1);
  assert.equal(m.hydrate_resumed, 0);
  assert.equal(m.last_applied_seq, seq);
  assert.equal(m.events_applied_total, 0);
  assert.ok(m.hydrate_seconds > 0);
  for (const name of ['hydrate_seconds', 'events_applied_total', 'event_lag_seconds_count', 'catchups_total', 'reconnects_total']) {
    assert.ok(name in m, `/metrics has ${name}`);
  }
  const kinds = agent.logs.map((l) => l.event_type);
  for (const k of ['agent.start', 'snapshot.downloaded', 'snapshot.extracted', 'ready']) assert.ok(kinds.includes(k), k);
  for (const l of agent.logs) {
    assert.equal(l.project_id, project.id, JSON.stringify(l));
    assert.equal(l.session_id, session.env.SESSION_ID, JSON.stringify(l));
  }

  // The agent keeps its state beside the folder (not in it) and stops cleanly on SIGTERM.
  assert.deepEqual(await agent.stop(), { code: 0, signal: null });
  const state = JSON.parse(readFileSync(join(tmp, 'a', '.fs-sync-state', `${project.id}.json`), 'utf8'));
  assert.equal(state.seq, seq);
  assert.equal(Object.keys(state.heads).length, expected.size);
  assert.deepEqual(compareFiles(expected, readTree(target).files).equal, true, 'the state file is outside the folder');
  first = { session, tree };
});

test('hydration is deterministic: the same state gives the same snapshot bytes and an identical folder', async () => {
  assert.ok(first, 'needs the first test');
  const { session, target } = await hydrate('b');
  assert.equal(session.body.snapshot.reused, true, 'an unchanged project reuses its stored snapshot');
  assert.equal(session.env.SNAPSHOT_SHA256, first.session.env.SNAPSHOT_SHA256);
  assert.notEqual(session.env.SESSION_ID, first.session.env.SESSION_ID);
  const tree = readTree(target);
  assert.deepEqual(compareFiles(first.tree.files, tree.files), { missing: [], extra: [], differ: [], equal: true });
  assert.ok(compareFiles(await databaseFiles(sys, project.id), tree.files).equal);
});

test('a snapshot whose bytes do not match SNAPSHOT_SHA256 is refused and nothing is extracted', async () => {
  const { env } = await sys.session(project.id);
  const target = join(tmp, 'tampered', 'project');
  const agent = await startAgent({ ...env, SNAPSHOT_SHA256: '0'.repeat(64) }, { target });
  const exit = await agent.waitExit(30_000);
  assert.ok(exit, 'the agent gives up instead of hanging');
  assert.notEqual(exit.code, 0);
  assert.equal(existsSync(target), false, 'no folder from an unverified archive');
  const failed = agent.logs.find((l) => l.level === 'error' || /sha|hash|checksum/i.test(l.raw ?? ''));
  assert.ok(failed, `the reason is logged:\n${agent.logs.map((l) => JSON.stringify(l)).join('\n')}`);
});
