// End to end, faults during a burst of edits from 4 concurrent writers: every websocket dropped
// (fs-sync-dev's fault endpoint), delivery paused (messages dropped, then delivery resumed), and
// the agent SIGKILLed and started again. Each must end with the container folder equal to the
// database, nothing lost and nothing applied twice — shown from the agent's own log lines
// (`event applied` with its seq and the files it wrote) and its /metrics.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  startSystem, createProject, startAgent, waitInSync, burst, exactlyOnce, currentSeq, fsClient,
  waitForFile, until, sampleApp, importPackage,
} from '../harness/index.mjs';

const pkg = await importPackage();
const tmp = mkdtempSync(join(tmpdir(), 'fs-sync-e2e-faults-'));
const agents = [];
let sys;

before(async () => {
  sys = await startSystem();
});

after(async () => {
  for (const a of agents) await a.stop();
  await sys?.fault('resume-delivery').catch(() => {});
  const exit = await sys?.close();
  rmSync(tmp, { recursive: true, force: true });
  assert.deepEqual(exit, { code: 0, signal: null });
});

// The agent confirms its position every second (the default is 15 s), so a dropped *last* event
// is found quickly.
const AGENT_ARGS = ['--sync-interval', '1'];

async function hydrated(name) {
  const project = await createProject(sys, { name, app: sampleApp(200), editors: 3 });
  const session = await sys.session(project.id);
  const target = join(tmp, name, 'project');
  const agent = await startAgent(session.env, { target, args: AGENT_ARGS });
  agents.push(agent);
  await agent.waitReady();
  const startSeq = (await agent.metrics()).last_applied_seq;
  return { project, session, target, agent, startSeq };
}

/** Waits until the project's change log has reached `seq`. */
const logReaches = (project, seq) => until(`seq ${seq}`, async () => (await currentSeq(sys, project.id)) >= seq, { timeoutMs: 60_000 });

function assertConverged({ diff, tree }) {
  assert.deepEqual(diff, { missing: [], extra: [], differ: [], equal: true });
  assert.deepEqual(tree.emptyDirs, []);
  assert.deepEqual(tree.others, []);
}

test('all websockets dropped mid-burst: the agent reconnects, catches up, applies each event once', async (t) => {
  const { project, target, agent, startSeq } = await hydrated('drop-websockets');
  const edits = burst(pkg, sys, project.id, project.users, { total: 400, seed: 21 });
  const drops = [];
  await logReaches(project, startSeq + 100);
  drops.push(await sys.fault('drop-websockets'));
  await logReaches(project, startSeq + 250);
  await until('the agent to rejoin', async () => (await agent.metrics()).reconnects_total >= 1, { timeoutMs: 20_000 });
  drops.push(await sys.fault('drop-websockets'));
  const result = await edits;
  assert.equal(result.edits, 400);
  assert.ok(drops.every((d) => d.dropped >= 1), `the agent's socket was among those dropped: ${JSON.stringify(drops)}`);

  const synced = await waitInSync(sys, project.id, agent, target, { timeoutMs: 60_000 });
  assertConverged(synced);
  assert.deepEqual(exactlyOnce([agent.applied()], startSeq, synced.seq), []);
  const m = await agent.metrics();
  t.diagnostic(`events ${synced.seq - startSeq}, drops ${JSON.stringify(drops)}, reconnects ${m.reconnects_total}, `
    + `gaps ${m.gaps_total}, catch-ups ${m.catchups_total} (${m.catchup_events_total} events from the log)`);
  assert.ok(m.reconnects_total >= 2, `reconnected after each drop (reconnects_total ${m.reconnects_total})`);
  assert.equal(m.events_applied_total, synced.seq - startSeq);
  assert.equal(m.apply_errors_total, 0);
});

test('delivery paused (messages dropped), then resumed: the agent finds the gap in the log', async (t) => {
  const { project, target, agent, startSeq } = await hydrated('pause-delivery');
  // Live for a while, then every message lost mid-burst, then live again.
  const edits = burst(pkg, sys, project.id, project.users, { total: 300, seed: 31 });
  await logReaches(project, startSeq + 60);
  await sys.fault('pause-delivery', { mode: 'drop' });
  const pausedAt = await currentSeq(sys, project.id);
  await logReaches(project, pausedAt + 120);
  const resumed = await sys.fault('resume-delivery');
  await edits;
  assert.ok(resumed.dropped >= 100, `messages were lost: ${JSON.stringify(resumed)}`);

  const synced = await waitInSync(sys, project.id, agent, target, { timeoutMs: 60_000 });
  assertConverged(synced);
  assert.deepEqual(exactlyOnce([agent.applied()], startSeq, synced.seq), []);
  const m = await agent.metrics();
  t.diagnostic(`events ${synced.seq - startSeq}, dropped ${resumed.dropped}, gaps ${m.gaps_total}, `
    + `catch-ups ${m.catchups_total} (${m.catchup_events_total} events from the log)`);
  assert.ok(m.catchups_total >= 1, 'caught up from the change log');
  assert.ok(m.catchup_events_total >= 100, `the lost events came from the log (${m.catchup_events_total})`);
  assert.equal(m.events_applied_total, synced.seq - startSeq);

  // A dropped *last* event has no successor to reveal it: the periodic position check finds it.
  // fs-sync-dev fans a message out just after its commit: resume only once it has dropped it.
  const fs = fsClient(pkg, sys, project.owner, project.id);
  await fs.load();
  await sys.fault('pause-delivery', { mode: 'drop' });
  const before = (await sys.faults()).dropped;
  const lastEdit = '// the last edit, never broadcast\n';
  const { seq: lastSeq } = await fs.save('App.tsx', lastEdit);
  await until('fs-sync-dev to drop the last event', async () => (await sys.faults()).dropped > before);
  const { dropped } = await sys.fault('resume-delivery');
  assert.equal(dropped, 1, 'the last event was lost');
  await waitForFile(target, 'App.tsx', lastEdit, 10_000);
  // The agent logs how it found the event after writing it; its catch-up line comes last.
  await until('the agent to log the catch-up of the last event',
    () => agent.logs.some((l) => l.event_type === 'catchup' && l.seq >= lastSeq));
  assert.ok(agent.logs.some((l) => l.event_type === 'sync.behind' && l.seq >= lastSeq), 'found by get_project_sync_state');
  const end = await waitInSync(sys, project.id, agent, target);
  assertConverged(end);
  assert.deepEqual(exactlyOnce([agent.applied()], startSeq, end.seq), []);
});

test('the agent SIGKILLed mid-burst and started again: it resumes from its state, loses nothing, repeats nothing', async (t) => {
  const { project, session, target, agent, startSeq } = await hydrated('kill-restart');
  const edits = burst(pkg, sys, project.id, project.users, { total: 400, seed: 41 });
  await logReaches(project, startSeq + 120);
  assert.deepEqual(await agent.kill(), { code: null, signal: 'SIGKILL' });
  const killedAt = await currentSeq(sys, project.id);
  await logReaches(project, killedAt + 100); // edits keep coming while no agent runs
  const again = await startAgent(session.env, { target, args: AGENT_ARGS });
  agents.push(again);
  await again.waitReady();
  const result = await edits;
  assert.equal(result.edits, 400);

  const synced = await waitInSync(sys, project.id, again, target, { timeoutMs: 60_000 });
  assertConverged(synced);
  const m = await again.metrics();
  assert.equal(m.hydrate_resumed, 1, 'resumed from its saved state');
  const kinds = again.logs.map((l) => l.event_type);
  assert.ok(kinds.includes('state.resume'));
  assert.ok(!kinds.includes('snapshot.downloaded'), 'no second download');
  // Nothing applied twice across the two runs, nothing missing.
  const runs = [agent.applied(), again.applied()];
  assert.deepEqual(exactlyOnce(runs, startSeq, synced.seq), []);
  assert.ok(runs[0].length > 0 && runs[1].length > 0);
  const first = new Set(runs[0].map((l) => l.seq));
  const again2 = runs[1].filter((l) => first.has(l.seq));
  t.diagnostic(`events ${synced.seq - startSeq}: run 1 applied ${runs[0].length} (to seq ${Math.max(...first)}), killed at log seq `
    + `${killedAt}; run 2 resumed at seq ${again.logs.find((l) => l.event_type === 'state.resume')?.seq} and applied ${runs[1].length}, of which ${again2.length} `
    + `again with 0 files written; repaired ${m.files_repaired_total}, catch-ups ${m.catchups_total}`);
  assert.equal(m.apply_errors_total, 0);
});
