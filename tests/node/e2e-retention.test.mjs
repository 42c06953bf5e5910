// End to end, retention with followers at every position (docs/contracts.md "Retention"):
// fs-sync-dev, the edge under `wrangler dev` and real fs-sync-hydrate agents. One project's
// history is made old by backdating its first events and versions; four containers follow it:
// A live and current, B stopped (SIGTERM, state saved) at a position the prune keeps, E stopped
// at the oldest position it keeps, C stopped at a position the prune removes. The operator's
// `npm run prune` then removes the old events and versions, the snapshot archives no one uses
// and the record of a session that ended long ago. A keeps following through the prune; B and
// E, started again on their folders and state, catch up from the log as before; C, started
// again, finds its position gone (PT410) and re-hydrates by itself, in place, through the edge's
// `/sessions/snapshot`, its untracked file untouched. Every folder ends byte-equal to the
// database; no head and no snapshot of a live session is removed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  startSystem, createProject, startAgent, waitInSync, waitForFile, compareFiles, call, postJson,
  currentSeq, until, iconPng, root,
} from '../harness/index.mjs';

const BUCKET = 'project-snapshots';
// Position checks every second (the default is 15 s): a restarted agent finds the log ahead soon.
const AGENT_ARGS = ['--sync-interval', '1'];
const UNTRACKED = ['notes.local', 'the developer\'s notes, never part of the project\n'];

const tmp = mkdtempSync(join(tmpdir(), 'fs-sync-e2e-retention-'));
const agents = [];
let sys;

before(async () => {
  sys = await startSystem();
  sys.sql("update fsync.settings set value = 'false' where key = 'rate_limit.enabled'");
});

after(async () => {
  for (const a of agents) await a.stop();
  const exit = await sys?.close();
  rmSync(tmp, { recursive: true, force: true });
  assert.deepEqual(exit, { code: 0, signal: null }, 'fs-sync-dev exits cleanly');
});

/** `npm run prune -- …` as an operator runs it, against the stack by URL and service key only. */
async function npmPrune(args) {
  const { stdout } = await promisify(execFile)('npm', ['run', '--silent', 'prune', '--', ...args,
    '--supabase-url', sys.info.api_url, '--service-key', sys.info.service_role_key], { cwd: root });
  return JSON.parse(stdout);
}

/** A container: a session from the edge (POST /sessions) and an agent on its own folder and state. */
async function container(project, name) {
  const session = await sys.session(project.id);
  const target = join(tmp, name, 'project');
  const stateDir = join(tmp, name, 'state');
  const start = async () => {
    const agent = await startAgent(session.env, { target, stateDir, args: AGENT_ARGS });
    agents.push(agent);
    await agent.waitReady();
    return agent;
  };
  return { name, session, target, stateDir, agent: await start(), start };
}

/** The container's folder equals the database (its untracked files aside), once it has caught up. */
async function assertInSync(project, c, untracked = []) {
  const { expected, tree, seq } = await waitInSync(sys, project.id, c.agent, c.target, { timeoutMs: 60_000 });
  const files = new Map([...tree.files].filter(([p]) => !untracked.includes(p)));
  assert.deepEqual(compareFiles(expected, files), { missing: [], extra: [], differ: [], equal: true },
    `container ${c.name} at seq ${seq}`);
  return seq;
}

const edit = (project, path, content) => call(sys, project.owner, 'upsert_project_file',
  { project_uuid: project.id, p_file_path: path, p_content: content });
const archive = (project, snapshotId) => `${project.id}/${snapshotId}.zip`;
const heads = (project) => call(sys, null, 'list_current_files', { project_uuid: project.id })
  .then((rows) => rows.map((r) => `${r.file_path}@${r.version}:${r.content_hash}`).sort());
const archives = (project) => sys.sql(`select coalesce(string_agg(name, ',' order by name), '') from storage.objects
                                        where bucket_id = '${BUCKET}' and name like '${project.id}/%'`).split(',').filter(Boolean);
/** GET of a snapshot archive through the Storage API (service role): its status and error code. */
async function storageRead(name) {
  const r = await fetch(`${sys.info.api_url}/storage/v1/object/${BUCKET}/${name}`, { headers: sys.service });
  return { status: r.status, error: r.status === 200 ? null : (await r.json()).error };
}
const metric = async (agent, name) => (await agent.metrics())[name];
const lines = (agent, type) => agent.logs.filter((l) => l.event_type === type);

test('prune with followers at every position: inside the window they catch up, behind it one re-hydrates in place', async (t) => {
  const project = await createProject(sys, {
    name: 'retention',
    app: {
      files: [
        { path: 'src/App.tsx', content: 'export default function App() { return null; }\n' },
        { path: 'src/util.ts', content: 'export const util = 1;\n' },
        { path: 'src/old.ts', content: 'export const old = 1;\n' },
        { path: 'README.md', content: '# retention\n' },
      ],
      binary: { path: 'assets/icon.png', bytes: iconPng(), contentType: 'image/png' },
    },
  });

  // Old history. C hydrates early, then is stopped; the log moves on with an update, a delete and
  // a rename; an ended session's snapshot and a built one are nobody's.
  await edit(project, 'src/App.tsx', 'export default function App() { return 1; }\n');
  const c = await container(project, 'c-behind');
  writeFileSync(join(c.target, UNTRACKED[0]), UNTRACKED[1]);
  await assertInSync(project, c, [UNTRACKED[0]]);
  assert.deepEqual(await c.agent.stop(), { code: 0, signal: null }, 'C stops on SIGTERM, its state saved');
  const cPosition = c.session.body.snapshot.asOfSeq;

  for (let i = 2; i <= 4; i++) await edit(project, 'src/App.tsx', `export default function App() { return ${i}; }\n`);
  await call(sys, project.owner, 'delete_project_file', { project_uuid: project.id, p_file_path: 'src/old.ts' });
  await call(sys, project.owner, 'rename_project_file',
    { project_uuid: project.id, p_from_path: 'src/util.ts', p_to_path: 'src/lib/util.ts' });
  const ended = await sys.session(project.id);
  const del = await fetch(`${sys.worker.url}/sessions/${ended.body.sessionId}`, {
    method: 'DELETE', headers: { authorization: `Bearer ${sys.info.service_role_key}` },
  });
  assert.equal(del.status, 204);
  await edit(project, 'README.md', '# retention, old\n');
  const built = await postJson(`${sys.worker.url}/build-project-snapshot`, { projectId: project.id },
    { authorization: `Bearer ${sys.info.service_role_key}` });
  assert.equal(built.status, 200, built.text);
  // E stops at the last old event: the oldest position the pruned log still follows on from.
  await edit(project, 'README.md', '# retention, older\n');
  const e = await container(project, 'e-edge');
  await assertInSync(project, e);
  assert.deepEqual(await e.agent.stop(), { code: 0, signal: null }, 'E stops on SIGTERM, its state saved');
  const ePosition = e.session.body.snapshot.asOfSeq;

  // Everything so far is 60 days old: events (a prefix, as created_at grows with seq), versions
  // and the ended session.
  const cut = await currentSeq(sys, project.id);
  assert.equal(cut, ePosition);
  assert.ok(cPosition < cut);
  sys.sql(`update public.project_events set created_at = created_at - interval '60 days'
            where project_id = '${project.id}' and seq <= ${cut}`);
  sys.sql(`update public.project_files set created_at = created_at - interval '60 days'
            where project_id = '${project.id}'`);
  sys.sql(`update fsync.sessions set created_at = created_at - interval '60 days',
                  expires_at = expires_at - interval '60 days', ended_at = ended_at - interval '60 days'
            where session_id = '${ended.body.sessionId}'`);

  // Within the window: B hydrates and is stopped; A hydrates and stays live; a newer snapshot.
  await edit(project, 'src/App.tsx', 'export default function App() { return 5; }\n');
  await edit(project, 'src/new.ts', 'export const fresh = 1;\n');
  const b = await container(project, 'b-window');
  await assertInSync(project, b);
  assert.deepEqual(await b.agent.stop(), { code: 0, signal: null }, 'B stops on SIGTERM, its state saved');
  const bPosition = b.session.body.snapshot.asOfSeq;
  assert.ok(bPosition > cut);

  await edit(project, 'src/App.tsx', 'export default function App() { return 6; }\n');
  await edit(project, 'src/new.ts', 'export const fresh = 2;\n');
  const a = await container(project, 'a-live');
  await edit(project, 'README.md', '# retention, recent\n');
  await assertInSync(project, a);
  const newest = await postJson(`${sys.worker.url}/build-project-snapshot`, { projectId: project.id },
    { authorization: `Bearer ${sys.info.service_role_key}` });
  assert.equal(newest.status, 200, newest.text);

  const aSnapshot = sys.sql(`select snapshot_id from fsync.sessions where session_id = '${a.session.body.sessionId}'`);
  assert.equal(aSnapshot, a.session.body.snapshot.snapshotId);
  const names = {
    c: archive(project, c.session.body.snapshot.snapshotId),
    ended: archive(project, ended.body.snapshot.snapshotId),
    built: archive(project, built.body.snapshotId),
    e: archive(project, e.session.body.snapshot.snapshotId),
    b: archive(project, b.session.body.snapshot.snapshotId),
    a: archive(project, aSnapshot),
    newest: archive(project, newest.body.snapshotId),
  };
  assert.equal(new Set(Object.values(names)).size, 7, `seven distinct archives: ${JSON.stringify(names)}`);
  assert.deepEqual(archives(project), Object.values(names).sort());

  // The operator keeps one snapshot and one version per path, and prunes.
  const policy = await npmPrune(['policy', project.id, '--keep-versions', '1', '--keep-snapshots', '1', '--json']);
  assert.deepEqual(policy, { project_id: project.id, version_days: 30, keep_versions: 1, log_days: 30, keep_snapshots: 1 });
  const headsBefore = await heads(project);
  const last = await currentSeq(sys, project.id);
  const pruned = await npmPrune(['--project', project.id, '--json']);
  const [p] = pruned.projects;
  t.diagnostic(`prune: ${JSON.stringify({ ...p, policy: undefined })}`);
  assert.equal(p.events_removed, cut, 'every old event goes');
  assert.equal(p.oldest_seq, cut);
  assert.equal(p.last_seq, last);
  assert.ok(p.versions_removed > 0, 'old versions go');
  assert.deepEqual([...p.snapshots].sort(), [names.ended, names.built].sort(),
    'the archives beyond the newest one that no live session uses');
  assert.equal(p.snapshots_removed, 2);
  assert.equal(p.sessions_removed, 1, 'the session that ended 60 days ago goes');
  assert.equal(sys.sql(`select string_agg(session_id, ',' order by session_id) from fsync.sessions
                         where project_id = '${project.id}'`),
  [a, b, c, e].map((x) => x.session.body.sessionId).sort().join(','), '… the live ones stay');

  // No head went; no archive a live session uses went (A's, and those of the stopped ones, whose
  // sessions are still live).
  assert.deepEqual(await heads(project), headsBefore, 'every head is kept');
  assert.equal(sys.sql(`select min(seq) from public.project_events where project_id = '${project.id}'`), String(cut + 1));
  assert.deepEqual(archives(project), [names.c, names.e, names.b, names.a, names.newest].sort());
  assert.deepEqual(await storageRead(names.a), { status: 200, error: null }, 'the live session\'s archive is still served');
  for (const gone of [names.ended, names.built]) {
    assert.deepEqual(await storageRead(gone), { status: 400, error: 'NoSuchKey' }, `${gone} is gone from Storage`);
  }

  // A follows on through the prune.
  const afterPrune = 'export default function App() { return "after the prune"; }\n';
  await edit(project, 'src/App.tsx', afterPrune);
  await waitForFile(a.target, 'src/App.tsx', afterPrune, 20_000);
  await assertInSync(project, a);
  assert.equal(await metric(a.agent, 'hydrate_rehydrations_total'), 0);

  // B, inside the window, and E, at its edge: each resumes from its state and catches up from the
  // log, no re-hydration.
  for (const [x, position] of [[b, bPosition], [e, ePosition]]) {
    const first = x.agent;
    x.agent = await x.start();
    const seq = await assertInSync(project, x);
    assert.equal(await metric(x.agent, 'hydrate_rehydrations_total'), 0, `${x.name} did not re-hydrate`);
    assert.equal(await metric(x.agent, 'hydrate_resumed'), 1, `${x.name} resumed from its saved state`);
    assert.equal(lines(x.agent, 'state.resume')[0]?.seq, position);
    assert.equal(lines(first, 'snapshot.downloaded').length + lines(x.agent, 'snapshot.downloaded').length, 1,
      `${x.name}: one snapshot download across both runs`);
    assert.equal(await metric(x.agent, 'catchup_events_total'), seq - position,
      `${x.name}: every missed event came from the log`);
  }

  // C, behind the window: resumes, finds its position pruned, re-hydrates in place and follows on.
  const cFirst = c.agent;
  c.agent = await c.start();
  await until('C to re-hydrate', async () => (await metric(c.agent, 'hydrate_rehydrations_total')) >= 1,
    { timeoutMs: 60_000, proc: c.agent.proc });
  const cSeq = await assertInSync(project, c, [UNTRACKED[0]]);
  assert.equal(await metric(c.agent, 'hydrate_rehydrations_total'), 1, 'C re-hydrated once');
  assert.equal(c.agent.proc.exitCode, null, 'C never exited');
  assert.equal(lines(c.agent, 'agent.start').length, 1, '… nor started over');
  assert.equal(lines(c.agent, 'state.resume')[0]?.seq, cPosition);
  assert.ok(lines(c.agent, 'sync.pruned').length >= 1, 'C was told its position is gone');
  const [applied] = lines(c.agent, 'rehydrate.applied');
  assert.equal(applied.previous_seq, cPosition);
  assert.ok(applied.as_of_seq >= last + 1 && applied.as_of_seq <= cSeq, JSON.stringify(applied));
  assert.equal(lines(cFirst, 'snapshot.downloaded').length + lines(c.agent, 'snapshot.downloaded').length, 1,
    'the fresh snapshot came through /sessions/snapshot, not a second hydration');
  assert.equal(readFileSync(join(c.target, UNTRACKED[0]), 'utf8'), UNTRACKED[1], 'the untracked file is still there');
  const edgeLine = await until('the edge\'s session.snapshot line for C', () => sys.worker.logLines()
    .find((l) => l.event_type === 'session.snapshot' && l.session_id === c.session.body.sessionId));
  assert.equal(edgeLine.status, 200, JSON.stringify(edgeLine));
  assert.equal(sys.sql(`select snapshot_id || ' ' || as_of_seq from fsync.sessions where session_id = '${c.session.body.sessionId}'`),
    `${applied.snapshot_id} ${applied.as_of_seq}`, 'C\'s session records the snapshot it now uses');
  await until('C healthy', async () => (await c.agent.health()).state === 'ready', { timeoutMs: 20_000 });

  // All four follow the next edit and end equal to the database.
  const final = 'export default function App() { return "everyone"; }\n';
  await edit(project, 'src/App.tsx', final);
  for (const x of [a, b, c, e]) await waitForFile(x.target, 'src/App.tsx', final, 20_000);
  const seqs = [];
  for (const x of [a, b, e]) seqs.push(await assertInSync(project, x));
  seqs.push(await assertInSync(project, c, [UNTRACKED[0]]));
  assert.equal(new Set(seqs).size, 1, `all at one seq: ${seqs}`);
});
