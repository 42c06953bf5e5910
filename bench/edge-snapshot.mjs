// Snapshot build inside workerd: fs-sync-edge (Rust/Wasm, streaming into Storage) next to the
// seed's approach (JSZip in a JS Worker, bench/edge-jszip-worker.mjs) on the same projects, in one
// run, both against one fs-sync-dev. A benchmark, not a test.
//
//   npm run bench:edge                        # 100 / 1,000 / 5,000 files (~5 KB each), 3 runs each
//   node bench/edge-snapshot.mjs --sizes=100,1000 --runs=3
//
// Needs edge/build (scripts/build-edge.sh) and fs-sync-dev (cargo build -p fs-sync-dev).
//
// Method. One project per size is seeded with source-like text files (~5 KB each, so 5,000 files is
// ~25 MB) through bulk_upsert_project_files. For each implementation and size a fresh `wrangler dev`
// (a new workerd process and isolate) serves the worker; after a /health warm-up, each run POSTs
// /build-project-snapshot and waits for the answer. fs-sync-edge's stored archive is deleted
// before every run so each run builds (no reuse). Reported, per implementation and size:
//   - wall: median request time seen by the client (upstream calls included, same for both);
//   - cpu: median CPU time workerd used during the request (utime+stime from /proc), i.e. the
//     Worker's CPU time plus the runtime's own I/O work;
//   - isolate peak: the isolate's memory as the 128 MB limit counts it, sampled every 10 ms
//     through the V8 inspector (Runtime.getHeapUsage: JS heap + ArrayBuffer backing stores) after a
//     forced GC, plus the Wasm linear memory (fs-sync-edge's log line; it only grows). Samples are
//     taken when the isolate yields (at every I/O), so a peak inside one synchronous stretch can be
//     missed; both implementations yield often (fs-sync-edge per batch, JSZip per chunk).
//   - workerd RSS rise: how far the process's resident set rose over its post-warm-up baseline,
//     largest over the runs (the first run dominates: code tier-up, allocator growth, garbage V8
//     has not collected because workerd runs locally without the 128 MB limit). Not the limit.
//   - archive bytes.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  root, startDevstack, startWorker, psql, rpc, postJson, cpuSeconds, memory, inspect,
} from '../tests/node/helpers/edge.mjs';

const args = Object.fromEntries(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=')));
const sizes = (args.sizes ?? '100,1000,5000').split(',').map(Number);
const runs = Number(args.runs ?? 3);

// Source-like text from a seeded PRNG (mulberry32), the same kind of tree as bench/zip-compare.mjs.
function generateFiles(n, seed) {
  let s = seed >>> 0;
  const rand = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (k) => Math.floor(rand() * k);
  const pick = (xs) => xs[int(xs.length)];
  const words = ['user', 'project', 'file', 'session', 'event', 'state', 'config', 'token', 'cache', 'item',
    'list', 'panel', 'editor', 'preview', 'sync', 'version', 'path', 'snapshot', 'query', 'result', 'error',
    'status', 'button', 'modal', 'table', 'row', 'column', 'theme', 'layout', 'router', 'store', 'hook'];
  const cap = (w) => w[0].toUpperCase() + w.slice(1);
  const camel = (k) => { let x = pick(words); for (let i = 1; i < k; i++) x += cap(pick(words)); return x; };
  const sentence = () => Array.from({ length: 6 + int(12) }, () => pick(words)).join(' ') + '.';
  const ts = (size) => {
    let out = `import { ${camel(2)} } from '../lib/${camel(1)}';\n\n`;
    while (out.length < size) {
      out += `/** ${sentence()} */\nexport function ${camel(3)}(${camel(1)}: string): number {\n`;
      for (let i = 3 + int(8); i > 0; i--) {
        out += int(2) ? `  const ${camel(2)} = ${camel(1)}.${camel(1)}(${int(1000)});\n` : `  // ${sentence()}\n`;
      }
      out += `  return ${int(100)};\n}\n\n`;
    }
    return out;
  };
  const tops = ['src/components', 'src/pages', 'src/lib', 'src/hooks', 'docs', 'config'];
  const dirs = [...tops];
  while (dirs.length < Math.max(tops.length, Math.ceil(n / 40))) dirs.push(`${pick(tops)}/${camel(1)}`);
  const unicode = ['docs/über-uns.md', 'src/i18n/日本語.ts', 'docs/naïve café.md'];
  return Array.from({ length: n }, (_, i) => ({
    file_path: i < unicode.length ? unicode[i] : `${dirs[i % dirs.length]}/${camel(2)}${i}.ts`,
    content: ts(4000 + int(2000)),
  }));
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mb = (b) => (b / 1e6).toFixed(1);

/** One build request; `sample` (optional) runs until it ends. */
async function buildOnce(worker, projectId, sample) {
  const pid = worker.workerdPid();
  let sampling = true;
  const sampler = sample ? (async () => { while (sampling) { await sample(); await sleep(10); } })() : null;
  const cpu0 = cpuSeconds(pid);
  const t0 = performance.now();
  const r = await postJson(`${worker.url}/build-project-snapshot`, { projectId },
    { authorization: `Bearer ${worker.serviceKey}` });
  const wall = performance.now() - t0;
  const cpu = (cpuSeconds(pid) - cpu0) * 1000;
  sampling = false;
  await sampler;
  if (r.status !== 200) {
    const tail = worker.output().split('\n').filter((l) => l.trim() && !l.includes('<')).slice(-30).join('\n');
    throw new Error(`build failed: ${r.status} ${r.text.slice(0, 300)}\n${tail}`);
  }
  return { wall, cpu, size: r.body.size, body: r.body };
}

/**
 * `runs` timed builds, then one more build for memory. The V8 inspector is attached only for that
 * last one: an attached inspector slows the isolate (Wasm in particular) many times over.
 */
async function measure(worker, projectId, before) {
  const pid = worker.workerdPid();
  const base = memory(pid).rss;
  let rss = 0;
  const watchRss = async () => { try { rss = Math.max(rss, memory(pid).rss); } catch { /* gone */ } };
  const timed = [];
  for (let i = 0; i < runs; i++) {
    await before?.(timed);
    timed.push(await buildOnce(worker, projectId, watchRss));
  }
  await before?.(timed);
  const v8 = await inspect(worker.inspectorPort);
  let heap = 0;
  let missed = 0;
  try {
    await buildOnce(worker, projectId, async () => {
      await watchRss();
      // The isolate answers between tasks; a busy one may not answer a sample in time.
      const h = await Promise.race([v8.call('Runtime.getHeapUsage'), sleep(250).then(() => null)]);
      if (h) heap = Math.max(heap, h.totalSize + (h.backingStorageSize ?? 0)); else missed += 1;
      await sleep(90);
    });
  } finally {
    v8.close();
  }
  return { timed, heap, missed, rss: Math.max(0, rss - base) };
}

async function main() {
  const stack = await startDevstack();
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
  try {
    for (const n of sizes) {
      const project = (await postJson(`${info.api_url}/admin/v1/projects`, { owner_id: owner.id, name: `bench-${n}` }, service)).body.id;
      const files = generateFiles(n, 42 + n);
      const bytes = files.reduce((a, f) => a + Buffer.byteLength(f.content), 0);
      for (let i = 0; i < files.length; i += 250) {
        const r = await rpc(info.api_url, { apikey: info.service_role_key }, 'bulk_upsert_project_files',
          { project_uuid: project, files: files.slice(i, i + 250) });
        if (r.status !== 200) throw new Error(`seeding: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
      }
      process.stderr.write(`seeded ${n} files, ${mb(bytes)} MB\n`);

      // fs-sync-edge: delete the stored archive before each run, so every run builds.
      const rust = await startWorker(env);
      rust.serviceKey = info.service_role_key;
      let rustM, wasm, built;
      try {
        rustM = await measure(rust, project, async (done) => {
          if (done.length === 0) return;
          const del = await fetch(`${info.api_url}/storage/v1/object/project-snapshots/${project}/${done[0].body.snapshotId}.zip`,
            { method: 'DELETE', headers: { ...service, apikey: info.service_role_key } });
          if (!del.ok) throw new Error(`deleting the stored snapshot: ${del.status} ${await del.text()}`);
        });
        await sleep(300); // let wrangler print the last log line
        const lines = rust.logLines().filter((l) => l.event_type === 'snapshot.build');
        wasm = Math.max(...lines.map((l) => l.wasm_memory_bytes));
        built = lines.filter((l) => l.snapshot === 'built').length;
        const first = rustM.timed[0].body;
        const dl = Buffer.from(await (await fetch(first.signedUrl)).arrayBuffer());
        if (createHash('sha256').update(dl).digest('hex') !== first.sha256) throw new Error('sha256 mismatch');
      } finally {
        await rust.stop();
      }

      const js = await startWorker(env, { main: join(root, 'bench/edge-jszip-worker.mjs'), name: 'fs-sync-bench-jszip' });
      js.serviceKey = info.service_role_key;
      let jsM;
      try {
        jsM = await measure(js, project);
      } finally {
        await js.stop();
      }

      rows.push({ n, bytes, rustM, jsM, wasm, built });
    }
  } finally {
    await stack.stop();
  }

  console.log(`\nSnapshot build inside workerd (wrangler dev 4.86), fs-sync-dev upstream: median of ${runs} timed runs; memory from one more run`);
  console.log('| files | content MB | impl | wall ms | workerd CPU ms | isolate peak MB | of which Wasm MB | workerd RSS rise MB | archive MB | CPU speed-up |');
  console.log('|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    const rc = median(r.rustM.timed.map((x) => x.cpu));
    const jc = median(r.jsM.timed.map((x) => x.cpu));
    const row = (name, m, wasm, speed) => console.log(`| ${r.n} | ${mb(r.bytes)} | ${name} | ${median(m.timed.map((x) => x.wall)).toFixed(0)} | ${median(m.timed.map((x) => x.cpu)).toFixed(0)} | ${mb(m.heap + (wasm ?? 0))} | ${wasm === undefined ? '–' : mb(wasm)} | ${mb(m.rss)} | ${mb(m.timed[0].size)} | ${speed} |`);
    row('fs-sync-edge (Rust)', r.rustM, r.wasm, `${(jc / rc).toFixed(1)}x`);
    row('JSZip (seed)', r.jsM, undefined, '1.0x');
    if (r.built !== runs + 1) console.log(`(note: fs-sync-edge built ${r.built} of ${runs + 1} runs)`);
    if (r.rustM.missed || r.jsM.missed) console.log(`(heap samples missed: Rust ${r.rustM.missed}, JSZip ${r.jsM.missed})`);
  }
}

await main();
