// The project editor store (`@velocity/fs-sync/store`) against the real stack: fs-sync-dev, the
// official supabase-js (RPCs, the legacy table writes, private realtime channels), a preview
// container (fs-sync-hydrate) following the same project. Two users' stores edit one project,
// each on the path its flags choose, flipped per user mid-session; a conflict is surfaced with
// both versions and resolved; a generation goes through the bulk RPC as one event. At the end the
// stores, the container and the database hold the same files and the log is gapless.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  startSystem, createProject, startAgent, waitInSync, importPackage, client, sampleApp, until, currentSeq,
  databaseFiles, waitForFile,
} from '../harness/index.mjs';

const { createProjectEditorStore } = await importPackage({ subpath: './store' });
const tmp = mkdtempSync(join(tmpdir(), 'fs-sync-store-'));
let sys;
const stores = []; // closed after the tests, however they end
let agent;
const agents = [];

before(async () => {
  sys = await startSystem();
});

after(async () => {
  for (const s of stores) s.getState().close();
  await agent?.stop();
  for (const a of agents) await a.stop();
  const exit = await sys?.close();
  rmSync(tmp, { recursive: true, force: true });
  assert.deepEqual(exit, { code: 0, signal: null });
});

/** FSYNC_USE_RPC on for exactly `users` (and no one else). */
function useRpcFor(users) {
  const ids = users.map((u) => `'${u.id}'::uuid`).join(', ');
  sys.sql(`update public.feature_flags set enabled = true, rollout_percentage = 0,
             target_user_ids = array[${ids}]::uuid[] where flag_key = 'FSYNC_USE_RPC'`);
}

function storeFor(user) {
  const store = createProjectEditorStore({
    supabase: client(sys, user),
    accessToken: async () => user.access_token,
    userId: user.id,
  });
  stores.push(store);
  return store;
}

const texts = (state) => Object.fromEntries(
  Object.entries(state.files).filter(([, f]) => f.content !== null).map(([p, f]) => [p, f.content]),
);

test('two users\' stores, the legacy path and the RPCs, a conflict and a container end equal', async () => {
  const project = await createProject(sys, { name: 'store', app: sampleApp(40), editors: 1 });
  const [ann, bob] = project.users;
  useRpcFor([ann]);
  sys.sql(`update public.feature_flags set enabled = true, rollout_percentage = 100
            where flag_key in ('FSYNC_BULK_GENERATION', 'FSYNC_KEEP_CLIENT_BROADCAST')`);
  const session = await sys.session(project.id);
  agent = await startAgent(session.env, { target: join(tmp, 'container') });
  await agent.waitReady();

  const A = storeFor(ann);
  const B = storeFor(bob);
  await A.getState().open(project.id);
  await B.getState().open(project.id);
  assert.deepEqual([A.getState().usesRpc(), B.getState().usesRpc()], [true, false]);
  assert.deepEqual(texts(A.getState()), texts(B.getState()));
  await until('both stores joined the project topic', () =>
    A.getState().realtime === 'SUBSCRIBED' && B.getState().realtime === 'SUBSCRIBED');

  // Ann saves through the RPC; Bob's store follows over realtime.
  let r = await A.getState().saveFile('App.tsx', 'export default function App() { return "ann"; }\n');
  assert.equal(r.status, 'saved');
  const seq = await currentSeq(sys, project.id);
  assert.equal((await A.getState().saveFile('App.tsx', 'export default function App() { return "ann"; }\n')).status, 'noop');
  assert.equal(await currentSeq(sys, project.id), seq, 'a no-op save writes nothing');
  await until('Bob sees Ann\'s save', () => B.getState().files['App.tsx']?.content.includes('"ann"'));

  // Bob types (broadcast to Ann while FSYNC_KEEP_CLIENT_BROADCAST is on), Ann saves the same file:
  // Bob's draft becomes a conflict with both versions, never overwritten.
  B.getState().edit('App.tsx', 'bob draft\n');
  await until('Ann sees Bob\'s unsaved edit', () => A.getState().peerEdits['App.tsx']?.content === 'bob draft\n');
  assert.equal(A.getState().peerEdits['App.tsx'].userId, bob.id);
  await A.getState().saveFile('App.tsx', 'ann v3\n');
  await until('Bob has a conflict', () => B.getState().conflicts['App.tsx']);
  const conflict = B.getState().conflicts['App.tsx'];
  assert.equal(conflict.mine, 'bob draft\n');
  assert.equal(conflict.theirs.content, 'ann v3\n');
  assert.equal(B.getState().drafts['App.tsx'], 'bob draft\n');
  assert.equal((await B.getState().saveFile('App.tsx')).status, 'conflict', 'no save over a conflict');
  r = await B.getState().resolveConflict('App.tsx', 'ann v3\nbob draft\n');
  assert.equal(r.status, 'saved', JSON.stringify(r));
  assert.deepEqual(B.getState().conflicts, {});
  await until('Ann sees the merge Bob saved through the legacy path', () => A.getState().files['App.tsx']?.content === 'ann v3\nbob draft\n');

  // Flags flipped per user mid-session: Ann to the legacy path, Bob to the RPCs.
  useRpcFor([bob]);
  await A.getState().refreshFeatures();
  await B.getState().refreshFeatures();
  assert.deepEqual([A.getState().usesRpc(), B.getState().usesRpc()], [false, true]);
  await A.getState().saveFile('src/legacy/ann.ts', 'export const ann = 1;\n');
  await B.getState().saveFile('src/rpc/bob.ts', 'export const bob = 1;\n');
  await A.getState().renameFile('src/legacy/ann.ts', 'src/legacy/ann-renamed.ts');
  await B.getState().renameFile('src/rpc/bob.ts', 'src/rpc/bob-renamed.ts');
  await B.getState().deleteFile('src/legacy/ann-renamed.ts');
  await A.getState().saveFile('src/legacy/again.ts', 'export const again = 2;\n');

  // A generation through the bulk RPC is one event.
  useRpcFor([ann, bob]);
  await A.getState().refreshFeatures();
  const before = await currentSeq(sys, project.id);
  const generated = Array.from({ length: 25 }, (_, i) => ({ path: `src/generated/G${i}.tsx`, content: `export const G${i} = ${i};\n` }));
  r = await A.getState().generateProjectStructure(generated);
  assert.equal(r.mode, 'bulk');
  assert.equal(await currentSeq(sys, project.id), before + 1, 'one event for the generation');

  // Everyone ends equal: both stores, the container, the database; the log is gapless.
  const last = await currentSeq(sys, project.id);
  await A.getState().sync();
  await B.getState().sync();
  await until('both stores at the last seq', () => A.getState().lastSeq === last && B.getState().lastSeq === last);
  const db = await databaseFiles(sys, project.id);
  const dbTexts = {};
  for (const p of Object.keys(A.getState().files)) if (A.getState().files[p].content !== null) dbTexts[p] = db.get(p)?.toString('utf8');
  assert.deepEqual(texts(A.getState()), dbTexts);
  assert.deepEqual(texts(B.getState()), dbTexts);
  assert.deepEqual(Object.keys(A.getState().files).sort(), [...db.keys()].sort());
  assert.deepEqual(A.getState().drafts, {});
  assert.deepEqual(B.getState().drafts, {});
  // The legacy app's read path sees the same heads.
  const { data: legacyRows, error } = await client(sys, ann).from('project_files_current')
    .select('file_path, content').eq('project_id', project.id);
  assert.equal(error, null);
  for (const row of legacyRows) if (row.content !== null && dbTexts[row.file_path] !== undefined) assert.equal(row.content, dbTexts[row.file_path], row.file_path);
  assert.deepEqual(legacyRows.map((r) => r.file_path).sort(), [...db.keys()].sort());
  const { diff } = await waitInSync(sys, project.id, agent, join(tmp, 'container'));
  assert.ok(diff.equal, JSON.stringify(diff));
  const [count, max] = sys.sql(`select count(*) || ' ' || max(seq) from public.project_events
                                 where project_id = '${project.id}'`).trim().split(' ').map(Number);
  assert.equal(count, max, 'the change log is gapless');
  A.getState().close();
  B.getState().close();
});

test('a save made while the server is unreachable stays a draft and lands when it is back', async () => {
  const project = await createProject(sys, { name: 'offline' });
  const [ann] = project.users;
  useRpcFor([ann]);
  let down = false;
  const real = client(sys, ann);
  const store = createProjectEditorStore({
    supabase: real,
    accessToken: async () => ann.access_token,
    // The network the store's client uses; Node's fetch, failing while `down`.
    fetch: (url, init) => (down ? Promise.reject(new TypeError('fetch failed')) : fetch(url, init)),
    retry: { maxAttempts: 1 },
    offlineRetry: { baseDelayMs: 50, maxDelayMs: 200 },
  });
  await store.getState().open(project.id);
  down = true;
  const r = await store.getState().saveFile('offline.ts', 'written offline\n');
  assert.equal(r.status, 'queued');
  assert.equal(store.getState().drafts['offline.ts'], 'written offline\n');
  down = false;
  await until('the queued save lands', () => store.getState().drafts['offline.ts'] === undefined);
  assert.equal((await databaseFiles(sys, project.id)).get('offline.ts')?.toString(), 'written offline\n');
  store.getState().close();
});

test('with FSYNC_SERVER_BROADCASTS off the log is still written and a container converges by its position checks', async () => {
  const project = await createProject(sys, { name: 'quiet', app: sampleApp(10) });
  const [ann] = project.users;
  useRpcFor([ann]);
  const session = await sys.session(project.id);
  const quiet = await startAgent(session.env, { target: join(tmp, 'quiet') });
  agents.push(quiet);
  await quiet.waitReady();
  // Off for every project owner (this file's tests run one at a time).
  sys.sql("update public.feature_flags set rollout_percentage = 0, target_user_ids = '{}' where flag_key = 'FSYNC_SERVER_BROADCASTS'");
  try {
    const store = storeFor(ann);
    await store.getState().open(project.id);
    const sentBefore = sys.sql(`select count(*) from realtime.messages where topic = 'project:${project.id}'`);
    await store.getState().saveFile('quiet.ts', 'no broadcast for this one\n');
    assert.equal(sys.sql(`select count(*) from realtime.messages where topic = 'project:${project.id}'`), sentBefore,
      'nothing was sent on the project topic');
    // The agent's idle position check (at most 15 s) finds the change in the log.
    await waitForFile(join(tmp, 'quiet'), 'quiet.ts', 'no broadcast for this one\n', 30_000);
    store.getState().close();
  } finally {
    sys.sql(`update public.feature_flags set enabled = true, rollout_percentage = 100, target_user_ids = '{}'
              where flag_key = 'FSYNC_SERVER_BROADCASTS'`);
  }
});
