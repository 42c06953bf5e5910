// fs-sync-dev on a data dir (`--data-dir`), restarted under a running container: the keys and the
// tokens issued before the restart stay valid, and the agent (fs-sync-hydrate) continues without
// hydrating again — its realtime connection rejoins, what it missed comes from the change log,
// and its folder ends byte-equal to the database. The edge worker keeps running throughout, as
// it would against a developer's local stack.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  startSystem, createProject, startAgent, waitInSync, waitForFile, freePort, until, call, sampleApp,
} from '../harness/index.mjs';

const tmp = mkdtempSync(join(tmpdir(), 'fs-sync-devstack-data-dir-'));
// Run as root, PostgreSQL runs as the `postgres` OS user, which must reach the data dir.
chmodSync(tmp, 0o755);
let sys;
let agent;

after(async () => {
  await agent?.stop();
  const exit = await sys?.close();
  rmSync(tmp, { recursive: true, force: true });
  assert.deepEqual(exit, { code: 0, signal: null });
});

/** Writes one file as `user` through the RPC the editor uses. */
const save = (user, projectId, path, content) => call(sys, user, 'bulk_upsert_project_files',
  { project_uuid: projectId, files: [{ file_path: path, content }] });

test('a running agent continues across a restart of fs-sync-dev on its data dir', async () => {
  sys = await startSystem({ dataDir: join(tmp, 'data'), port: await freePort() });
  const keys = { ...sys.info };
  const project = await createProject(sys, { name: 'kept', app: sampleApp(60) });
  const session = await sys.session(project.id);
  const target = join(tmp, 'container');
  agent = await startAgent(session.env, { target });
  await agent.waitReady();
  const downloads = () => agent.logs.filter((l) => l.event_type === 'snapshot.downloaded').length;
  assert.equal(downloads(), 1);
  const before = await agent.metrics();

  assert.deepEqual(await sys.restartStack(), { code: 0, signal: null }, 'fs-sync-dev stopped cleanly');
  assert.deepEqual(sys.info, keys, 'same URL, keys, JWT secret and database URL');

  // Lost from realtime while the agent may not have rejoined yet: it must come from the log.
  await sys.fault('pause-delivery', { mode: 'drop' });
  const missed = 'export const missed = "written right after the restart";\n';
  await save(project.owner, project.id, 'src/missed.ts', missed);
  await until('fs-sync-dev to drop the event', async () => (await sys.faults()).dropped === 1);
  await sys.fault('resume-delivery');
  await until('the agent to rejoin realtime', async () => (await agent.metrics()).reconnects_total > before.reconnects_total,
    { timeoutMs: 60_000, proc: agent.proc, intervalMs: 50 });

  // The owner's token, issued before the restart, still writes; the agent gets it live.
  const edited = '// edited after the restart\nexport default function App() { return null; }\n';
  await save(project.owner, project.id, 'App.tsx', edited);
  await waitForFile(target, 'App.tsx', edited, 30_000);
  await waitForFile(target, 'src/missed.ts', missed, 30_000);

  const { diff } = await waitInSync(sys, project.id, agent, target);
  assert.ok(diff.equal, `folder differs from the database: ${JSON.stringify(diff)}`);
  const m = await agent.metrics();
  assert.ok(m.catchups_total > before.catchups_total, 'the missed event came from the change log');
  assert.equal(downloads(), 1, 'no second snapshot download: the agent did not hydrate again');
  assert.equal(m.hydrate_rehydrations_total, 0, 'no re-hydration in place either');
  assert.equal(agent.proc.exitCode, null, 'the same agent process throughout');
  await until('the agent to report ready again', async () => (await agent.healthz()).status === 200,
    { timeoutMs: 30_000, proc: agent.proc, intervalMs: 50 });
});
