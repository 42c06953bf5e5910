// Capacity benchmark (not a test): how fs-sync holds up as followers, projects and writers grow,
// every part a real process on loopback — fs-sync-dev (PostgreSQL, Realtime), the edge in
// workerd, and one fs-sync-hydrate per container.
//
//   npm run bench:capacity                                  # release builds; the three runs below
//   node bench/capacity.mjs --followers=200 --projects=1000 --writers=20 --edits=40 --saves=100
//
// 1. fan-out: one project (20 files) with `--followers` containers. One writer saves `--edits`
//    times, each save waiting until every container applied it: edit → apply at each container.
// 2. many projects: `--projects` projects (5 files each), one container each. One writer saves
//    once per project in turn (sequentially): edit → apply with that many channels open.
// 3. writers: on the same projects, `--writers` concurrent writers, each owning its share of the
//    projects and saving `--saves` times as fast as the server answers (closed loop): saves/s and
//    edit → apply under load.
// Each run reports edit → apply p50/p99 (save request sent → the container's `event applied`
// log line, whose clock is this machine's: ms resolution), the save round trip, and the database
// time per save: total time of public.upsert_project_file over its calls in the run, from
// pg_stat_user_functions (fs-sync-dev's cluster runs with track_functions = all). Writes are the
// RPC request @velocity/fs-sync sends (upsert_project_file), made directly so Node's own cost per
// save stays out of the server's numbers. Also: fs-sync-dev's and the containers' memory (proportional set size: shared pages split between processes).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  startSystem, createProject, startAgent, rpc, percentile, prng, profile, until, isApplied, descendants,
} from '../tests/harness/index.mjs';

const arg = (name, def) => {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return Number(a ? a.slice(name.length + 3) : def);
};
const FOLLOWERS = arg('followers', 200);
const PROJECTS = arg('projects', 1000);
const WRITERS = arg('writers', 20);
const EDITS = arg('edits', 40);
const SAVES = arg('saves', 100);
/** Containers started at once; each waits for its /healthz before the batch is done. */
const BATCH = 25;

const log = (s = '') => process.stderr.write(`${s}\n`);
const f = (v) => (v == null || Number.isNaN(v) ? '–' : v < 10 ? v.toFixed(1) : String(Math.round(v)));
const pad = (s, n) => String(s).padStart(n);
const mib = (b) => (b / (1 << 20)).toFixed(0);

const tmp = mkdtempSync(join(tmpdir(), 'fs-sync-bench-capacity-'));
let sys;
const agents = [];

/** Starts a container for `project` (POST /sessions, then fs-sync-hydrate with that env). */
async function follow(project, name) {
  const session = await sys.session(project.id);
  const applied = [];
  const agent = await startAgent(session.env, {
    target: join(tmp, name, 'project'),
    onLine: (l) => { if (isApplied(l)) applied.push({ seq: l.seq, at: Date.parse(l.ts) }); },
  });
  agents.push(agent);
  await agent.waitReady(120_000);
  return { agent, applied, project };
}

async function inBatches(items, fn) {
  const out = [];
  for (let i = 0; i < items.length; i += BATCH) {
    out.push(...await Promise.all(items.slice(i, i + BATCH).map(fn)));
    if (items.length > BATCH) log(`    ${Math.min(items.length, i + BATCH)}/${items.length} ready`);
  }
  return out;
}

/** Saves a file as `user`; resolves the request's wall-clock start (ms) and round trip. */
async function save(project, user, path, content) {
  const t0 = Date.now();
  const p0 = performance.now();
  const r = await rpc(sys.info.api_url, { apikey: sys.info.anon_key, token: user.access_token },
    'upsert_project_file', { project_uuid: project.id, p_file_path: path, p_content: content });
  if (r.status !== 200) throw new Error(`save ${path}: ${r.status} ${JSON.stringify(r.body)}`);
  return { t0, rtt: performance.now() - p0 };
}

/** {calls, ms} of public.upsert_project_file so far (pg_stat_user_functions). */
function dbSaves() {
  const row = sys.sql(`select coalesce(sum(calls), 0) || ' ' || coalesce(sum(total_time), 0)
                         from pg_catalog.pg_stat_user_functions
                        where schemaname = 'public' and funcname = 'upsert_project_file'`);
  const [calls, ms] = row.split(' ').map(Number);
  return { calls, ms };
}

async function dbTimePerSave(run) {
  // The statistics collector publishes a backend's counts when its transaction ends and at most
  // every 0.5–1 s; wait until the counts cover every save of the run.
  const before = dbSaves();
  const result = await run();
  const want = before.calls + result.saves;
  const after = await until('pg_stat_user_functions to count the saves', () => {
    const now = dbSaves();
    return now.calls >= want ? now : null;
  }, { timeoutMs: 15_000, intervalMs: 100 }).catch(() => null);
  result.dbMs = after ? (after.ms - before.ms) / (after.calls - before.calls) : NaN;
  return result;
}

const projectFiles = (n, tag) => Array.from({ length: n }, (_, i) => ({
  path: `src/${tag}/file-${i}.ts`,
  content: `// ${tag} file ${i}\nexport const v${i} = ${i};\n${'x'.repeat(600)}\n`,
}));

/** Waits until `followerOf(i)` applied `count` events after `base` for every i. */
function waitApplied(followers, counts, bases, timeoutMs = 120_000) {
  return until('every container to apply the saves', () => followers.every((fl, i) =>
    fl.applied.filter((a) => a.seq > bases[i]).length >= counts[i]), { timeoutMs, intervalMs: 2 });
}

async function fanOut() {
  log(`  fan-out: 1 project, ${FOLLOWERS} containers`);
  const project = await createProject(sys, { name: 'fan-out', app: { files: projectFiles(20, 'fan') }, hydration: false });
  const followers = await inBatches(Array.from({ length: FOLLOWERS }, (_, i) => i),
    (i) => follow(project, `fan-${i}`));
  const lat = [];
  const rtt = [];
  const last = [];
  const r = await dbTimePerSave(async () => {
    for (let e = 0; e < EDITS; e++) {
      const bases = followers.map((fl) => fl.applied.at(-1)?.seq ?? 0);
      const s = await save(project, project.owner, `src/fan/file-${e % 20}.ts`, `// edit ${e}\n${'y'.repeat(600)}\n`);
      rtt.push(s.rtt);
      await waitApplied(followers, followers.map(() => 1), bases);
      const at = followers.map((fl, i) => fl.applied.find((a) => a.seq > bases[i]).at - s.t0);
      lat.push(...at);
      last.push(Math.max(...at));
    }
    return { saves: EDITS };
  });
  return { name: `1 project × ${FOLLOWERS} containers, 1 writer`, saves: EDITS, lat, rtt, last, dbMs: r.dbMs };
}

async function manyProjects() {
  log(`  many projects: ${PROJECTS} projects, 1 container each`);
  const projects = [];
  for (let i = 0; i < PROJECTS; i++) {
    projects.push(await createProject(sys, { name: `p${i}`, app: { files: projectFiles(5, `p${i}`) }, hydration: false }));
    if ((i + 1) % 200 === 0) log(`    ${i + 1}/${PROJECTS} projects created`);
  }
  const followers = await inBatches(projects, (p) => follow(p, `many-${projects.indexOf(p)}`));
  const lat = [];
  const rtt = [];
  const seq = await dbTimePerSave(async () => {
    for (const [i, fl] of followers.entries()) {
      const base = fl.applied.at(-1)?.seq ?? 0;
      const s = await save(fl.project, fl.project.owner, `src/p${i}/file-0.ts`, `// one edit\n${'z'.repeat(600)}\n`);
      rtt.push(s.rtt);
      await waitApplied([fl], [1], [base]);
      lat.push(fl.applied.find((a) => a.seq > base).at - s.t0);
    }
    return { saves: followers.length };
  });
  const one = { name: `${PROJECTS} projects × 1 container, 1 writer`, saves: followers.length, lat, rtt, dbMs: seq.dbMs };

  log(`  writers: ${WRITERS} concurrent writers over the ${PROJECTS} projects, ${SAVES} saves each`);
  const starts = followers.map(() => []);
  const bases = followers.map((fl) => fl.applied.at(-1)?.seq ?? 0);
  const wrtt = [];
  let wall = 0;
  const load = await dbTimePerSave(async () => {
    const t = performance.now();
    await Promise.all(Array.from({ length: WRITERS }, async (_, w) => {
      const mine = followers.map((_, i) => i).filter((i) => i % WRITERS === w);
      const rand = prng(100 + w);
      for (let k = 0; k < SAVES; k++) {
        const i = mine[Math.floor(rand() * mine.length)];
        const fl = followers[i];
        const s = await save(fl.project, fl.project.owner, `src/p${i}/file-${k % 5}.ts`, `// writer ${w} save ${k}\n${'w'.repeat(600)}\n`);
        starts[i].push(s.t0);
        wrtt.push(s.rtt);
      }
    }));
    wall = performance.now() - t;
    return { saves: WRITERS * SAVES };
  });
  await waitApplied(followers, starts.map((s) => s.length), bases);
  const wlat = [];
  followers.forEach((fl, i) => {
    const got = fl.applied.filter((a) => a.seq > bases[i]);
    starts[i].forEach((t0, k) => wlat.push(got[k].at - t0));
  });
  const writers = {
    name: `${PROJECTS} projects, ${WRITERS} concurrent writers`, saves: WRITERS * SAVES, lat: wlat, rtt: wrtt,
    dbMs: load.dbMs, rate: (WRITERS * SAVES) / (wall / 1000),
  };
  return [one, writers];
}

/**
 * Proportional set size (bytes) of processes together: shared pages (the binary's text, libc) are
 * split between the processes that map them, so the sum is what they cost the machine.
 */
function pss(pids) {
  let total = 0;
  for (const pid of pids) {
    try {
      total += Number(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8').match(/^Pss:\s+(\d+) kB/m)[1]) * 1024;
    } catch { /* exited */ }
  }
  return total;
}

try {
  log(`bench/capacity: ${profile()} binaries, ${cpus().length} CPUs, ${mib(totalmem())} MiB; ${FOLLOWERS} followers, ${PROJECTS} projects, ${WRITERS} writers`);
  sys = await startSystem();
  if (sys.sql('show track_functions') !== 'all') {
    log('  note: track_functions is not "all" on this cluster: database time per save is not measured');
  }
  // Every project's owner gets snapshot hydration (one statement instead of one per project).
  sys.sql(`update public.feature_flags set enabled = true, rollout_percentage = 100
            where flag_key = 'FSYNC_SNAPSHOT_HYDRATION'`);
  const runs = [];
  const t0 = performance.now();
  runs.push(await fanOut());
  const fanMem = pss(agents.map((a) => a.pid));
  const devMemFan = pss([sys.stack.pid, ...descendants(sys.stack.pid)]);
  for (const a of agents.splice(0)) await a.stop();
  runs.push(...await manyProjects());
  const manyMem = pss(agents.map((a) => a.pid));
  const devMem = pss([sys.stack.pid, ...descendants(sys.stack.pid)]);

  const out = [];
  const p = (s = '') => out.push(s);
  p();
  p(`fs-sync capacity — ${profile()} binaries, ${cpus().length} CPUs, loopback (${new Date().toISOString().slice(0, 10)}; ${f((performance.now() - t0) / 1000)} s)`);
  p();
  p(`| run | saves | saves/s | edit→apply p50 | p99 | save RTT p50 | p99 | DB ms/save |`);
  p(`|---|---:|---:|---:|---:|---:|---:|---:|`);
  for (const r of runs) {
    p(`| ${r.name} | ${r.saves} | ${r.rate ? f(r.rate) : '–'} | ${f(percentile(r.lat, 50))} | ${f(percentile(r.lat, 99))} | ${f(percentile(r.rtt, 50))} | ${f(percentile(r.rtt, 99))} | ${Number.isNaN(r.dbMs) ? '–' : r.dbMs.toFixed(2)} |`);
  }
  const fan = runs[0];
  p();
  p(`fan-out: the last of ${FOLLOWERS} containers applied each edit after p50 ${f(percentile(fan.last, 50))} ms, p99 ${f(percentile(fan.last, 99))} ms.`);
  p(`memory: ${FOLLOWERS} containers ${mib(fanMem)} MiB PSS together (${f(fanMem / FOLLOWERS / (1 << 20))} MiB each), fs-sync-dev with PostgreSQL ${mib(devMemFan)} MiB;`);
  p(`        ${PROJECTS} containers ${mib(manyMem)} MiB (${f(manyMem / PROJECTS / (1 << 20))} MiB each), fs-sync-dev with PostgreSQL ${mib(devMem)} MiB with ${PROJECTS} channels.`);
  process.stdout.write(`${out.join('\n')}\n`);
} finally {
  await Promise.all(agents.map((a) => a.stop().catch(() => {})));
  if (sys) await sys.close();
  rmSync(tmp, { recursive: true, force: true });
}
