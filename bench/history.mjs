// History benchmark (not a test): restoring a 2,000-file project to the point before a
// generation that rewrote every file, next to what an app would do without restore_project:
// write the old contents back itself with one bulk_upsert_project_files call. Both run in the
// same process against the same stack (fs-sync-dev, the edge in workerd, a running
// fs-sync-hydrate); each is timed to commit (the RPC's round trip) and until the container holds
// the result (its last_applied_seq reaches the change's seq; /metrics polled every 2 ms).
//
//   npm run bench:history                   # release binaries; 2,000 files, 3 runs
//   node bench/history.mjs --files=2000 --runs=3
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  startSystem, createProject, startAgent, call, currentSeq, sampleApp, until, profile, databaseFiles,
} from '../tests/harness/index.mjs';

const arg = (name, def) => {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : def;
};
const files = Number(arg('files', '2000'));
const runs = Number(arg('runs', '3'));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const tmp = mkdtempSync(join(tmpdir(), 'fs-sync-bench-history-'));
const sys = await startSystem();
try {
  const app = sampleApp(files);
  const project = await createProject(sys, { name: 'history-bench', app });
  const owner = project.owner;
  const session = await sys.session(project.id);
  const agent = await startAgent(session.env, { target: join(tmp, 'container') });
  await agent.waitReady();
  const text = app.files.filter((f) => typeof f.content === 'string');
  const original = text.map((f) => ({ file_path: f.path, content: f.content }));

  async function untilApplied(seq) {
    await until(`the container at seq ${seq}`, async () => (await agent.metrics()).last_applied_seq >= seq,
      { timeoutMs: 120_000, intervalMs: 2, proc: agent.proc });
  }
  // A generation that rewrites every text file; returns the seq before it.
  async function generate(round) {
    const before = await currentSeq(sys, project.id);
    const gen = text.map((f) => ({ file_path: f.path, content: `${f.content}// generation ${round}\n` }));
    const r = await call(sys, owner, 'bulk_upsert_project_files', { project_uuid: project.id, files: gen });
    await untilApplied(r.seq);
    return before;
  }
  async function timed(label, write) {
    const t0 = performance.now();
    const r = await write();
    const commit = performance.now() - t0;
    await untilApplied(r.seq);
    return { label, commit, container: performance.now() - t0 };
  }

  const results = { restore: [], rewrite: [] };
  for (let i = 0; i < runs; i++) {
    let point = await generate(`${i}a`);
    results.restore.push(await timed('restore', () => call(sys, owner, 'restore_project',
      { project_uuid: project.id, to_seq: point, expected_seq: point + 1 })));
    point = await generate(`${i}b`);
    results.rewrite.push(await timed('rewrite', () => call(sys, owner, 'bulk_upsert_project_files',
      { project_uuid: project.id, files: original })));
  }
  // The last restore's result is the original project, byte for byte.
  const db = await databaseFiles(sys, project.id);
  for (const f of text) if (db.get(f.path)?.toString('utf8') !== f.content) throw new Error(`${f.path} differs after the rewrite`);

  const row = (name, xs) => [median(xs.map((x) => x.commit)), median(xs.map((x) => x.container))];
  const [rc, rk] = row('restore', results.restore);
  const [wc, wk] = row('rewrite', results.rewrite);
  console.log(`\nrestore of ${text.length} text files (${profile()} binaries, median of ${runs})\n`);
  console.log('| way | to commit | until the container holds it |');
  console.log('|---|---|---|');
  console.log(`| restore_project(to_seq) | ${rc.toFixed(0)} ms | ${rk.toFixed(0)} ms |`);
  console.log(`| the app re-saves the old contents (one bulk_upsert_project_files) | ${wc.toFixed(0)} ms | ${wk.toFixed(0)} ms |`);
  console.log(`| restore / re-save | ${(rc / wc).toFixed(2)}× | ${(rk / wk).toFixed(2)}× |`);
  await agent.stop();
} finally {
  await sys.close();
  rmSync(tmp, { recursive: true, force: true });
}
