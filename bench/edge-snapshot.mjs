// Snapshot build inside workerd: fs-sync-edge (Rust/Wasm, streaming into Storage) next to the
// seed's approach (JSZip in a JS Worker, bench/edge-jszip-worker.mjs) on the same projects, in one
// run, both against one fs-sync-dev. A benchmark, not a test.
//
//   npm run bench:edge                        # 100 / 1,000 / 5,000 files (~5 KB each), then large projects
//   node bench/edge-snapshot.mjs --sizes=100,1000 --runs=5 --large=0
//   node bench/edge-snapshot.mjs --sizes= --large=compressible,over-limit
//   node bench/edge-snapshot.mjs --build=/tmp/other-build   # another build-edge.sh output than edge/build
//
// Needs edge/build (scripts/build-edge.sh) and fs-sync-dev (cargo build -p fs-sync-dev).
//
// Method. One project per size is seeded with bench/source-tree.mjs's files (~5 KB each, so 5,000
// files is ~25 MB) through bulk_upsert_project_files. For each implementation and size a fresh workerd
// (bench/workerd.mjs: Miniflare with edge/wrangler.toml's settings, without wrangler's DevTools
// proxy) answers POST /build-project-snapshot; the two workers run side by side and take turns
// build by build (who goes first alternates), so a busy machine weighs on both alike. Untimed
// builds warm them up (at least 3, for at least 1 s: V8 tiers hot Wasm and JS up in background
// threads, once per isolate, which would otherwise be charged to the first builds), then the
// builds are timed (at least --runs, default 5, and more for small projects: enough for about
// 5,000 files in all).
// fs-sync-edge's stored archive is deleted before every build, so each one builds (no reuse). A
// third turn asks the same worker again for the unchanged project (reused: the find, the signing,
// the answer): what a request costs apart from building.
// Reported:
//   - wall: median request time seen by the client (the upstream calls included);
//   - workerd CPU: median CPU time of the workerd process per build (its threads' schedstat in
//     /proc): the Worker's own CPU time plus the runtime's I/O work for it. CPU speed-up: JSZip's
//     median over fs-sync-edge's;
//   - isolate peak: the isolate's memory as the 128 MB limit counts it: the largest
//     Runtime.getHeapUsage (JS heap + ArrayBuffer backing stores) sampled every ~10 ms through the V8
//     inspector during one more build in another fresh worker, plus the Wasm linear memory
//     (fs-sync-edge's log line; it only grows). The inspector is attached from that worker's start
//     (attached later it re-tiers the code and slows it many times over) and never during the timed
//     builds. Samples come when the isolate yields (every I/O), so a peak inside one synchronous
//     stretch can be missed; both implementations yield often (fs-sync-edge per batch, JSZip per
//     chunk);
//   - workerd RSS rise: how far the process's resident set rose over its post-warm-up baseline
//     during the timed builds. Not the limit: it includes code tier-up, allocator growth and garbage
//     that V8 leaves uncollected when nothing limits it, as locally;
//   - archive bytes.
// Large projects (fs-sync-edge only; --large picks them, 0 for none): the isolate peak (as above)
// of one build, or refusal, of projects around the 50 MB snapshot limit, whose raw size is no
// guide: ~58 MB of source-like text (about 20 MB zipped), ~80 MB of incompressible text (refused
// with 413 once its archive passes 50 MB), 250 MB of repetitive text in the largest text files
// the database takes, 65,000 small files (what grows with the file count), and two 20 MB binaries
// (one deflated, one stored; both streamed twice) with 10 MB of text. The isolate limit is 128 MB.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  root, startSystem, psql, rpc, postJson, memory, inspect,
} from '../tests/harness/index.mjs';
import { sourceFiles } from './source-tree.mjs';
import { startWorkerd } from './workerd.mjs';

const args = Object.fromEntries(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=')));
const sizes = (args.sizes ?? '100,1000,5000').split(',').filter(Boolean).map(Number);
const runs = Number(args.runs ?? 5);
const workerdVersion = execFileSync(join(root, 'node_modules/.bin/workerd'), ['--version'], { encoding: 'utf8' }).trim();

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mb = (b) => (b / 1e6).toFixed(1);

const sumOf = (pids, f) => pids.reduce((a, pid) => a + f(pid), 0);

/**
 * CPU seconds of a process so far, in nanoseconds' precision: the sum of its threads'
 * /proc/<pid>/task/<tid>/schedstat (the /proc/<pid>/stat clock ticks in 10 ms steps, too coarse
 * for one build of a small project). A thread that ends takes its time with it; workerd's threads
 * live as long as the process.
 */
function cpuSeconds(pid) {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try { ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]); } catch { /* ended */ }
  }
  return ns / 1e9;
}

/** One build request; `sample` (optional) runs until it ends. */
async function buildOnce(worker, projectId, sample, status = 200) {
  const pids = worker.workerdPids();
  let sampling = true;
  const sampler = sample ? (async () => { while (sampling) { await sample(); await sleep(10); } })() : null;
  const cpu0 = sumOf(pids, cpuSeconds);
  const t0 = performance.now();
  const r = await postJson(`${worker.url}/build-project-snapshot`, { projectId },
    { authorization: `Bearer ${worker.serviceKey}` });
  const wall = performance.now() - t0;
  const cpu = (sumOf(pids, cpuSeconds) - cpu0) * 1000;
  sampling = false;
  await sampler;
  if (r.status !== status) {
    const tail = worker.output().split('\n').filter((l) => l.trim() && !l.includes('<')).slice(-30).join('\n');
    throw new Error(`build failed: ${r.status} ${r.text.slice(0, 300)}\n${tail}`);
  }
  return { wall, cpu, size: r.body.size, body: r.body, status: r.status };
}

/**
 * Untimed builds first, at least this many each and for at least this long (the two workers
 * taking turns): V8 compiles hot Wasm and JS with its optimizing tier in the background, once per
 * isolate.
 */
const WARM_UP = { builds: 3, ms: 2000 };

/**
 * Timed builds of every `{worker, before}` (`before` runs ahead of each build, untimed), taking
 * turns build by build (who goes first alternates) so that the machine's load weighs on each
 * alike, after the [`WARM_UP`] builds; and each workerd's largest RSS rise. Small projects get
 * more builds: at least `runs`, and enough for about 5,000 files in all.
 */
async function measure(sides, projectId, files) {
  const state = sides.map(({ worker, before }) => {
    const pids = worker.workerdPids();
    const rssNow = () => sumOf(pids, (pid) => memory(pid).rss);
    const st = { worker, before, base: rssNow(), rss: 0, all: [], timed: [] };
    st.watchRss = async () => { try { st.rss = Math.max(st.rss, rssNow()); } catch { /* gone */ } };
    return st;
  });
  const build = async (st, timed) => {
    await st.before?.(st.all);
    const t = await buildOnce(st.worker, projectId, timed ? st.watchRss : undefined);
    st.all.push(t);
    if (timed) st.timed.push(t);
  };
  const warm = performance.now();
  while (state.some((st) => st.all.length < WARM_UP.builds) || performance.now() - warm < WARM_UP.ms) {
    for (const st of state) await build(st, false);
  }
  const rounds = Math.max(runs, Math.ceil(5000 / files));
  for (let i = 0; i < rounds; i++) {
    for (const st of i % 2 ? [...state].reverse() : state) await build(st, true);
  }
  return state.map((st) => ({
    timed: st.timed,
    cpu: median(st.timed.map((t) => t.cpu)),
    requests: st.all.length,
    rss: Math.max(0, st.rss - st.base),
  }));
}

/**
 * The isolate's peak memory for one build, in a fresh worker whose V8 inspector is attached from
 * the start (attaching one to a warmed-up isolate re-tiers its code and slows it many times over;
 * the timed runs above never have one attached).
 */
async function isolatePeak(start, projectId, before, status = 200) {
  const worker = await start({ inspect: true });
  let heap = 0;
  let missed = 0;
  let build;
  try {
    const v8 = await inspect(worker.inspectorPort);
    try {
      await before?.();
      build = await buildOnce(worker, projectId, async () => {
        // The isolate answers between tasks; a busy one may not answer a sample in time.
        const h = await Promise.race([v8.call('Runtime.getHeapUsage'), sleep(250).then(() => null)]);
        if (h) heap = Math.max(heap, h.totalSize + (h.backingStorageSize ?? 0)); else missed += 1;
      }, status);
    } finally {
      v8.close();
    }
    await sleep(300); // let the log line arrive
    const wasm = Math.max(0, ...worker.logLines().map((l) => l.wasm_memory_bytes ?? 0));
    return { heap, missed, wasm, build };
  } finally {
    await worker.stop();
  }
}

/** Seeds text files `{path, content}` through bulk_upsert_project_files (≤ 2,000 files, ≤ 40 MB a call). */
async function addTexts(info, projectId, files) {
  let start = 0;
  while (start < files.length) {
    let end = start;
    let bytes = 0;
    while (end < files.length && end - start < 2000 && bytes + files[end].content.length <= 40e6) {
      bytes += files[end].content.length;
      end += 1;
    }
    const r = await rpc(info.api_url, { apikey: info.service_role_key }, 'bulk_upsert_project_files',
      { project_uuid: projectId, files: files.slice(start, end).map((f) => ({ file_path: f.path, content: f.content })) });
    if (r.status !== 200) throw new Error(`seeding: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
    start = end;
  }
}

/** Uploads `bytes` to project-assets and registers them as the binary `path`. */
async function addBinary(info, projectId, path, bytes) {
  const storagePath = `project-assets/${projectId}/${path}`;
  const key = { apikey: info.service_role_key, authorization: `Bearer ${info.service_role_key}` };
  const up = await fetch(`${info.api_url}/storage/v1/object/${storagePath}`,
    { method: 'POST', headers: { ...key, 'content-type': 'application/octet-stream' }, body: bytes });
  if (!up.ok) throw new Error(`uploading ${path}: ${up.status} ${await up.text()}`);
  const r = await rpc(info.api_url, { apikey: info.service_role_key }, 'register_binary_file', {
    project_uuid: projectId, p_file_path: path, p_storage_path: storagePath,
    p_content_hash: createHash('sha256').update(bytes).digest('hex'), p_size_bytes: bytes.length,
  });
  if (r.status !== 200) throw new Error(`registering ${path}: ${r.status} ${JSON.stringify(r.body)}`);
}

/** Random base64 text: deflate gets it down to about 3/4 only. */
const noiseText = (n, size) => Array.from({ length: n }, (_, i) => ({
  path: `data/part-${String(i).padStart(4, '0')}.txt`, content: randomBytes(size * 0.75).toString('base64'),
}));

/** The large projects: how each is seeded and the status its build answers. */
const LARGE = {
  compressible: {
    what: '~58 MB of source-like text (11,500 files)',
    status: 200,
    seed: (info, p) => addTexts(info, p, sourceFiles(11_500, 7)),
  },
  'over-limit': {
    what: '~80 MB of incompressible text (800 files)',
    status: 413,
    seed: (info, p) => addTexts(info, p, noiseText(800, 100_000)),
  },
  huge: {
    what: '250 MB of repetitive text (50 files of 5 MB, the largest a text file may be)',
    status: 200,
    seed: (info, p) => addTexts(info, p, Array.from({ length: 50 }, (_, i) => ({
      path: `logs/day-${String(i).padStart(2, '0')}.log`,
      content: Array.from({ length: 160_000 }, (_, j) => `${String(i * 1e5 + j).padStart(9, '0')} GET /api/items 200 ok\n`).join('').slice(0, 5_000_000),
    }))),
  },
  'many-files': {
    what: '65,000 files of ~0.7 KB (44 MB)',
    status: 200,
    seed: (info, p) => addTexts(info, p, Array.from({ length: 65_000 }, (_, i) => ({
      path: `src/features/f${String(i % 600).padStart(3, '0')}/components/Component${i}.tsx`,
      content: `export function Component${i}(props: { label: string }) {\n  return <span data-i="${i}">{props.label}</span>;\n}\n`.repeat(6),
    }))),
  },
  binaries: {
    what: '20 MB .wasm + 20 MB .mp4 + ~10 MB text',
    status: 200,
    async seed(info, p) {
      const text = sourceFiles(2000, 9);
      await addTexts(info, p, text);
      const wasm = Buffer.from(text.map((f) => f.content).join('')).subarray(0, 20e6);
      await addBinary(info, p, 'public/app.wasm', wasm);
      await addBinary(info, p, 'public/intro.mp4', randomBytes(20e6));
    },
  },
};

async function main() {
  const stack = await startSystem({ edge: false });
  const { info } = stack;
  const env = {
    SUPABASE_URL: info.api_url,
    SUPABASE_ANON_KEY: info.anon_key,
    SUPABASE_SERVICE_ROLE_KEY: info.service_role_key,
    SUPABASE_JWT_SECRET: info.jwt_secret,
  };
  const service = { authorization: `Bearer ${info.service_role_key}` };
  const owner = (await postJson(`${info.api_url}/admin/v1/users`, { email: 'bench@example.test' }, service)).body;
  psql(info.db_url, `update public.feature_flags set enabled = true, target_user_ids = array['${owner.id}']::uuid[]
    where flag_key = 'FSYNC_SNAPSHOT_HYDRATION'`);

  const rows = [];
  const large = [];
  const startRust = async (opts) => {
    const w = await startWorkerd(env, { ...opts, ...(args.build ? { build: args.build } : {}) });
    w.serviceKey = info.service_role_key;
    return w;
  };
  try {
    for (const n of sizes) {
      const project = (await postJson(`${info.api_url}/admin/v1/projects`, { owner_id: owner.id, name: `bench-${n}` }, service)).body.id;
      const files = sourceFiles(n, 42 + n).map(({ path, content }) => ({ file_path: path, content }));
      const bytes = files.reduce((a, f) => a + Buffer.byteLength(f.content), 0);
      for (let i = 0; i < files.length; i += 250) {
        const r = await rpc(info.api_url, { apikey: info.service_role_key }, 'bulk_upsert_project_files',
          { project_uuid: project, files: files.slice(i, i + 250) });
        if (r.status !== 200) throw new Error(`seeding: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
      }
      process.stderr.write(`seeded ${n} files, ${mb(bytes)} MB\n`);

      // fs-sync-edge: delete the stored archive before each run, so every run builds.
      const deleteStored = async () => {
        for (const id of storedNames) {
          const del = await fetch(`${info.api_url}/storage/v1/object/project-snapshots/${project}/${id}.zip`,
            { method: 'DELETE', headers: { ...service, apikey: info.service_role_key } });
          if (!del.ok && del.status !== 404 && del.status !== 400) {
            throw new Error(`deleting the stored snapshot: ${del.status} ${await del.text()}`);
          }
        }
      };
      const storedNames = [];
      const startJs = async (opts) => {
        const w = await startWorkerd(env, { main: join(root, 'bench/edge-jszip-worker.mjs'), name: 'fs-sync-bench-jszip', ...opts });
        w.serviceKey = info.service_role_key;
        return w;
      };
      const rust = await startRust();
      const js = await startJs();
      let rustM, jsM, reuseM, built;
      try {
        [rustM, jsM, reuseM] = await measure([
          {
            worker: rust,
            before: async (done) => {
              for (const d of done) if (!storedNames.includes(d.body.snapshotId)) storedNames.push(d.body.snapshotId);
              if (done.length) await deleteStored();
            },
          },
          { worker: js },
          // The same worker asked again for the archive it just stored: the request's own cost
          // (the find, the signing, the answer) without a build.
          { worker: rust },
        ], project, n);
        if (!reuseM.timed.every((t) => t.body.reused)) throw new Error('a request for an unchanged project built its archive');
        await sleep(300); // let the last log line arrive
        built = rust.logLines().filter((l) => l.event_type === 'snapshot.build' && l.snapshot === 'built').length;
        const last = rustM.timed.at(-1).body;
        const dl = Buffer.from(await (await fetch(last.signedUrl)).arrayBuffer());
        if (createHash('sha256').update(dl).digest('hex') !== last.sha256) throw new Error('sha256 mismatch');
      } finally {
        await rust.stop();
        await js.stop();
      }
      rustM.mem = await isolatePeak(startRust, project, deleteStored);
      jsM.mem = await isolatePeak(startJs, project);

      rows.push({ n, bytes, rustM, jsM, reuseM, built });
    }
    for (const name of (args.large ?? Object.keys(LARGE).join(',')).split(',').filter((x) => x && x !== '0')) {
      const spec = LARGE[name];
      if (!spec) throw new Error(`--large: no scenario ${name}; there are ${Object.keys(LARGE).join(', ')}`);
      const project = (await postJson(`${info.api_url}/admin/v1/projects`, { owner_id: owner.id, name }, service)).body.id;
      await spec.seed(info, project);
      const cut = await rpc(info.api_url, { apikey: info.service_role_key }, 'get_project_snapshot',
        { project_uuid: project, include_content: false });
      const bytes = cut.body.files.reduce((a, f) => a + f.size_bytes, 0);
      process.stderr.write(`seeded ${name}: ${cut.body.files.length} files, ${mb(bytes)} MB\n`);
      const mem = await isolatePeak(startRust, project, undefined, spec.status);
      large.push({ name, spec, files: cut.body.files.length, bytes, mem });
    }
  } finally {
    await stack.close();
  }

  if (rows.length) {
    console.log(`\nSnapshot build inside ${workerdVersion} (Miniflare, as wrangler dev runs it), fs-sync-dev upstream. ` +
      `wall and CPU: medians of ${runs}+ timed builds, the two taking turns build by build; isolate peak: one more build in a fresh, inspected worker. Goal: CPU speed-up >= 3x at every size`);
    console.log('| files | content MB | impl | builds | wall ms | workerd CPU ms | CPU ms min–max | isolate peak MB | of which Wasm MB | workerd RSS rise MB | archive MB | CPU speed-up |');
    console.log('|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const r of rows) {
      const row = (name, m, speed) => console.log(`| ${r.n} | ${mb(r.bytes)} | ${name} | ${m.timed.length} | ${median(m.timed.map((x) => x.wall)).toFixed(0)} | ${m.cpu.toFixed(1)} | ${Math.min(...m.timed.map((x) => x.cpu)).toFixed(1)}–${Math.max(...m.timed.map((x) => x.cpu)).toFixed(1)} | ${mb(m.mem.heap + m.mem.wasm)} | ${m.mem.wasm ? mb(m.mem.wasm) : '–'} | ${mb(m.rss)} | ${mb(m.timed[0].size)} | ${speed} |`);
      row('fs-sync-edge (Rust)', r.rustM, `${(r.jsM.cpu / r.rustM.cpu).toFixed(1)}x`);
      row('JSZip (seed)', r.jsM, '1.0x');
      const reuse = r.reuseM;
      console.log(`| ${r.n} | ${mb(r.bytes)} | fs-sync-edge, unchanged project (reused: the request alone) | ${reuse.timed.length} | ${median(reuse.timed.map((x) => x.wall)).toFixed(0)} | ${reuse.cpu.toFixed(1)} | ${Math.min(...reuse.timed.map((x) => x.cpu)).toFixed(1)}–${Math.max(...reuse.timed.map((x) => x.cpu)).toFixed(1)} | – | – | – | – | – |`);
      if (r.built !== r.rustM.requests) console.log(`(note: fs-sync-edge built ${r.built} of ${r.rustM.requests} requests)`);
      if (r.rustM.mem.missed || r.jsM.mem.missed) console.log(`(heap samples missed: Rust ${r.rustM.mem.missed}, JSZip ${r.jsM.mem.missed})`);
    }
  }
  if (large.length) {
    console.log('\nLarge projects, fs-sync-edge: one build (or refusal) in a fresh, inspected worker; limit 50 MB (52428800 bytes)');
    console.log('| project | files | content MB | status | wall ms | isolate peak MB | of which Wasm MB | archive MB / refusal |');
    console.log('|---|---:|---:|---:|---:|---:|---:|---|');
    for (const l of large) {
      const b = l.mem.build;
      const outcome = b.status === 200 ? mb(b.size) : b.body.message;
      console.log(`| ${l.spec.what} | ${l.files} | ${mb(l.bytes)} | ${b.status} | ${b.wall.toFixed(0)} | ${mb(l.mem.heap + l.mem.wasm)} | ${mb(l.mem.wasm)} | ${outcome} |`);
      if (l.mem.missed) console.log(`(heap samples missed: ${l.mem.missed})`);
    }
  }
}

await main();
