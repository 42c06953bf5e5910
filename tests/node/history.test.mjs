// History against the real stack: restore a project to an earlier point (one new change, history
// kept), undo an AI generation with a later overlapping edit (the untouched paths revert, the
// overlapping one is reported and kept), list the changes and diff two points — while a preview
// container and a second user's store follow and end equal to the database.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  startSystem, createProject, startAgent, waitInSync, importPackage, client, sampleApp, until, currentSeq,
  databaseFiles, rpc,
} from '../harness/index.mjs';

const { createProjectEditorStore } = await importPackage({ subpath: './store' });
const tmp = mkdtempSync(join(tmpdir(), 'fs-sync-history-'));
const agents = [];
let sys;
const stores = []; // closed after the tests, however they end

before(async () => {
  sys = await startSystem();
});

after(async () => {
  for (const s of stores) s.getState().close();
  for (const a of agents) await a.stop();
  const exit = await sys?.close();
  rmSync(tmp, { recursive: true, force: true });
  assert.deepEqual(exit, { code: 0, signal: null });
});

function storeFor(user) {
  const store = createProjectEditorStore({ supabase: client(sys, user), accessToken: async () => user.access_token, userId: user.id });
  stores.push(store);
  return store;
}

const asText = (files) => Object.fromEntries([...files].map(([p, b]) => [p, b.toString('base64')]));

async function followed(name) {
  const project = await createProject(sys, { name, app: sampleApp(60), editors: 1 });
  const session = await sys.session(project.id);
  const target = join(tmp, name);
  const agent = await startAgent(session.env, { target });
  agents.push(agent);
  await agent.waitReady();
  const [ann, bob] = project.users;
  const A = storeFor(ann);
  const B = storeFor(bob);
  await A.getState().open(project.id);
  await B.getState().open(project.id);
  return { project, agent, target, A, B };
}

async function allEqual(project, agent, target, stores) {
  const last = await currentSeq(sys, project.id);
  for (const s of stores) await s.getState().sync();
  await until('the stores at the last seq', () => stores.every((s) => s.getState().lastSeq === last));
  const { diff, expected } = await waitInSync(sys, project.id, agent, target);
  assert.ok(diff.equal, JSON.stringify(diff));
  for (const s of stores) {
    assert.deepEqual(Object.keys(s.getState().files).sort(), [...expected.keys()].sort());
    for (const [p, f] of Object.entries(s.getState().files)) {
      if (f.content !== null) assert.equal(f.content, expected.get(p).toString('utf8'), p);
    }
  }
  return expected;
}

test('restore to an earlier point: one change, byte-equal to that point, everyone follows', async () => {
  const { project, agent, target, A, B } = await followed('restore');
  const a = A.getState();
  await a.saveFile('App.tsx', 'export default () => "v2";\n');
  await a.generateProjectStructure([{ path: 'src/gen/One.tsx', content: '1\n' }, { path: 'src/gen/Two.tsx', content: '2\n' }]);
  const point = await currentSeq(sys, project.id);
  const atPoint = await databaseFiles(sys, project.id);
  await a.saveFile('App.tsx', 'export default () => "v3";\n');
  await a.renameFile('src/gen/One.tsx', 'src/gen/Uno.tsx');
  await a.deleteFile('src/gen/Two.tsx');
  await B.getState().saveFile('src/later.ts', 'added after the point\n');
  await a.sync();

  await allEqual(project, agent, target, [A, B]);
  const appliedBefore = (await agent.metrics()).events_applied_total;
  const before = await currentSeq(sys, project.id);
  const versionsBefore = Number(sys.sql(`select count(*) from public.project_files where project_id = '${project.id}'`));
  const r = await a.restore(point);
  assert.equal(r.status, 'restored', JSON.stringify(r));
  assert.equal(await currentSeq(sys, project.id), before + 1, 'one event for the restore');
  assert.ok(Number(sys.sql(`select count(*) from public.project_files where project_id = '${project.id}'`)) > versionsBefore,
    'history is kept: the restore adds versions');
  assert.deepEqual(asText(await databaseFiles(sys, project.id)), asText(atPoint));
  const expected = await allEqual(project, agent, target, [A, B]);
  assert.deepEqual(asText(expected), asText(atPoint));
  assert.equal((await agent.metrics()).events_applied_total, appliedBefore + 1, 'the container applied the restore as one event');

  // Restoring over a change the caller has not seen is refused and writes nothing.
  const seen = await currentSeq(sys, project.id);
  await B.getState().saveFile('src/unseen.ts', 'unseen\n');
  const stale = await rpc(sys.info.api_url, { apikey: sys.info.anon_key, token: project.users[0].access_token }, 'restore_project',
    { project_uuid: project.id, to_seq: point, expected_seq: seen });
  assert.equal(stale.status, 409, JSON.stringify(stale.body));
  assert.equal(stale.body.code, 'PT409');
  assert.equal(await currentSeq(sys, project.id), seen + 1, 'a refused restore writes nothing');
  A.getState().close();
  B.getState().close();
});

test('undo a generation: untouched paths revert, an overlapping later edit is reported and kept', async () => {
  const { project, agent, target, A, B } = await followed('undo');
  const a = A.getState();
  const original = (await databaseFiles(sys, project.id)).get('App.tsx').toString('utf8');
  const r = await a.generateProjectStructure([
    { path: 'App.tsx', content: 'export default () => "generated";\n' },
    { path: 'src/gen/A.tsx', content: 'A\n' },
    { path: 'src/gen/B.tsx', content: 'B\n' },
  ]);
  assert.equal(r.mode, 'bulk');
  const genSeq = r.seq;
  await B.getState().sync();
  await B.getState().saveFile('src/gen/B.tsx', 'B, edited by Bob after the generation\n');
  await a.sync();

  const u = await a.undo(genSeq);
  assert.equal(u.status, 'partial', JSON.stringify(u));
  assert.deepEqual(u.conflicts.map((c) => c.path), ['src/gen/B.tsx']);
  assert.deepEqual(u.reverted.sort(), ['App.tsx', 'src/gen/A.tsx']);
  const db = await databaseFiles(sys, project.id);
  assert.equal(db.get('App.tsx').toString('utf8'), original, 'App.tsx is back to before the generation');
  assert.equal(db.has('src/gen/A.tsx'), false, 'a file the generation created is gone');
  assert.equal(db.get('src/gen/B.tsx').toString('utf8'), 'B, edited by Bob after the generation\n', 'Bob\'s edit is kept');
  await allEqual(project, agent, target, [A, B]);

  // The history view: who did what, and the diff across the generation.
  const changes = await a.listChanges({ afterSeq: genSeq - 1 });
  assert.equal(changes[0].seq, genSeq);
  assert.equal(changes[0].type, 'bulk:apply');
  assert.equal(changes[0].actor, project.users[0].id);
  assert.ok(changes[0].timestamp);
  assert.deepEqual(changes[0].paths.sort(), ['App.tsx', 'src/gen/A.tsx', 'src/gen/B.tsx']);
  const d = await a.diff(genSeq - 1, genSeq);
  assert.deepEqual(d.map((x) => [x.file_path, x.change]).sort(), [['App.tsx', 'modified'], ['src/gen/A.tsx', 'added'], ['src/gen/B.tsx', 'added']]);
  A.getState().close();
  B.getState().close();
});

test('viewers and container tokens cannot restore', async () => {
  const project = await createProject(sys, { name: 'perm', app: sampleApp(5), editors: 1 });
  const viewer = project.users[1];
  await sys.admin('members', { project_id: project.id, user_id: viewer.id, role: 'viewer' });
  const seq = await currentSeq(sys, project.id);
  const asViewer = await rpc(sys.info.api_url, { apikey: sys.info.anon_key, token: viewer.access_token }, 'restore_project',
    { project_uuid: project.id, to_seq: 0, expected_seq: seq });
  assert.ok([401, 403].includes(asViewer.status), `viewer: ${asViewer.status} ${JSON.stringify(asViewer.body)}`);
  const session = await sys.session(project.id);
  const asContainer = await rpc(sys.info.api_url, { apikey: sys.info.anon_key, token: session.env.REALTIME_TOKEN }, 'restore_project',
    { project_uuid: project.id, to_seq: 0, expected_seq: seq });
  assert.ok([401, 403].includes(asContainer.status), `container token: ${asContainer.status} ${JSON.stringify(asContainer.body)}`);
  assert.equal(await currentSeq(sys, project.id), seq, 'nothing was written');
});
