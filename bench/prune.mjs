// Retention benchmark (not a test): what pruning frees, per project, in the database and in
// Storage, and what the prune costs. On fs-sync-dev, three projects get a history of saves
// (single-file saves of source-like text, a few whole-project bulks, a binary saved several
// times), spread over different ages by backdating the rows (events and versions keep their
// relative order): "busy" over the last 90 days, "recent" within 10 days, "dormant" 60–120 days
// ago. Each gets snapshot archives in Storage as the edge stores them (service role,
// project-snapshots/<project>/<id>.zip, one a day), one of them used by a live session. Then
// `npm run prune` (scripts/prune.mjs, default policy: 30 days, the last 10 versions per path,
// the log 30 days, 3 snapshots) runs once for all projects.
//
// Database bytes per project: the sum of pg_column_size over its version and event rows (the
// row as stored, contents compressed as PostgreSQL compressed them, no index share). The tables'
// pg_total_relation_size is printed before and after a VACUUM: deleted rows become free space the
// tables reuse, the files do not shrink (VACUUM FULL would, with an exclusive lock).
//
//   npm run bench:prune                 # about 20 s
//   node bench/prune.mjs --scale=10     # ten times the saves per project
//   node bench/prune.mjs --max-rows=500 # smaller batches
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  startSystem, createProject, call, putBinary, prng, root,
} from '../tests/harness/index.mjs';

const arg = (name, def) => {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : def;
};
const scale = Number(arg('scale', '1'));
const maxRows = arg('max-rows', null);
if (!(scale > 0)) throw new Error(`--scale must be a positive number, not ${arg('scale')}`);

const PATHS = 25;
const ROUNDS = Math.round(100 * scale); // rounds of single saves per project
const EDITS_PER_ROUND = 4;
const BULK_EVERY = 10;                  // a whole-project bulk every N rounds
const BINARY_VERSIONS = 4;
const SNAPSHOTS = 8;
const BUCKET = 'project-snapshots';
const PROJECTS = [
  { name: 'busy', fromDays: 90, toDays: 0 },
  { name: 'recent', fromDays: 10, toDays: 0 },
  { name: 'dormant', fromDays: 120, toDays: 60 },
];

/** A source-like file of about 6 KB; `edit` changes a few of its lines. */
function sourceFile(rand, path) {
  const word = () => Math.floor(rand() * 1e9).toString(36);
  return Array.from({ length: 120 }, (_, i) => `  export const ${word()}_${i} = compute("${path}", ${word()}, ${i}); // ${word()}`);
}
function edit(rand, lines) {
  const out = [...lines];
  for (let k = 0; k < 3; k++) out[Math.floor(rand() * out.length)] = `  // edited ${Math.floor(rand() * 1e9).toString(36)}`;
  return out;
}

const q = (sys, sql) => sys.sql(sql);
const n = (v) => Number(v).toLocaleString('en-US');
const mib = (b) => `${(b / 1048576).toFixed(2)} MiB`;

async function buildHistory(sys, spec, seed) {
  const project = await createProject(sys, { name: `prune-${spec.name}`, hydration: false });
  const { owner } = project;
  const rand = prng(seed);
  const paths = Array.from({ length: PATHS }, (_, i) => `src/module-${i}.ts`);
  const files = new Map(paths.map((p) => [p, sourceFile(rand, p)]));
  const bulk = () => call(sys, owner, 'bulk_upsert_project_files', {
    project_uuid: project.id, files: paths.map((p) => ({ file_path: p, content: files.get(p).join('\n') })),
  });
  await bulk();
  for (let r = 1; r <= ROUNDS; r++) {
    for (let e = 0; e < EDITS_PER_ROUND; e++) {
      const p = paths[Math.floor(rand() * paths.length)];
      files.set(p, edit(rand, files.get(p)));
      await call(sys, owner, 'upsert_project_file', { project_uuid: project.id, p_file_path: p, p_content: files.get(p).join('\n') });
    }
    if (r % BULK_EVERY === 0) {
      for (const p of paths) files.set(p, edit(rand, files.get(p)));
      await bulk();
    }
  }
  for (let v = 0; v < BINARY_VERSIONS; v++) {
    await putBinary(sys, project.id, owner, { path: 'assets/logo.png', bytes: randomBytes(30_000), contentType: 'image/png' });
  }
  // Spread the history over [fromDays, toDays] ago by seq; each version takes its event's time.
  q(sys, `update public.project_events e
             set created_at = now() - make_interval(days => ${spec.toDays})
                              - make_interval(days => ${spec.fromDays - spec.toDays}) * (1 - e.seq::float8 / p.last_seq)
            from public.projects p
           where p.id = e.project_id and e.project_id = '${project.id}'`);
  q(sys, `update public.project_files f set created_at = e.created_at
            from fsync.event_files('${project.id}', 0) w
            join public.project_events e on e.project_id = '${project.id}' and e.seq = w.seq
           where f.project_id = '${project.id}' and f.file_path = w.file_path and f.version = w.version`);
  // Snapshot archives as the edge stores them, one a day, the newest today; a live session uses the 2nd.
  const liveBytes = Number(q(sys, `select live_bytes from public.projects where id = '${project.id}'`));
  for (let s = 0; s < SNAPSHOTS; s++) {
    const id = randomBytes(32).toString('hex');
    const name = `${project.id}/${id}.zip`;
    const res = await fetch(`${sys.info.api_url}/storage/v1/object/${BUCKET}/${name}`, {
      method: 'POST',
      headers: { ...sys.service, 'content-type': 'application/zip' },
      body: randomBytes(Math.round(liveBytes * 0.35)),  // about what deflate makes of such sources
    });
    if (res.status !== 200) throw new Error(`upload ${name}: ${res.status} ${await res.text()}`);
    q(sys, `update storage.objects set created_at = now() - make_interval(days => ${SNAPSHOTS - 1 - s})
             where bucket_id = '${BUCKET}' and name = '${name}'`);
    if (s === 1) {
      await call(sys, null, 'open_container_session', {
        project_uuid: project.id, session_id: `bench-${project.id}`, snapshot_id: id, as_of_seq: 0,
      });
    }
  }
  return { ...spec, id: project.id };
}

function measure(sys, ids) {
  const list = ids.map((id) => `'${id}'::uuid`).join(',');
  return new Map(JSON.parse(q(sys, `
    select json_agg(json_build_object(
      'id', p.id,
      'versions', (select count(*) from public.project_files f where f.project_id = p.id),
      'version_bytes', (select coalesce(sum(pg_column_size(f.*)), 0) from public.project_files f where f.project_id = p.id),
      'events', (select count(*) from public.project_events e where e.project_id = p.id),
      'event_bytes', (select coalesce(sum(pg_column_size(e.*)), 0) from public.project_events e where e.project_id = p.id),
      'snapshots', (select count(*) from storage.objects o where o.bucket_id = '${BUCKET}' and o.name like p.id || '/%'),
      'snapshot_bytes', (select coalesce(sum((o.metadata ->> 'size')::bigint), 0) from storage.objects o
                          where o.bucket_id = '${BUCKET}' and o.name like p.id || '/%'),
      'asset_bytes', (select coalesce(sum((o.metadata ->> 'size')::bigint), 0) from storage.objects o
                       where o.bucket_id = 'project-assets' and o.name like p.id || '/%')))
      from public.projects p where p.id in (${list})`)).map((r) => [r.id, r]));
}

const relations = (sys) => Number(q(sys, `select pg_total_relation_size('public.project_files') + pg_total_relation_size('public.project_events')`));

const sys = await startSystem({ edge: false });
try {
  q(sys, "update fsync.settings set value = 'false' where key = 'rate_limit.enabled'");
  const t0 = performance.now();
  const projects = [];
  for (const [i, spec] of PROJECTS.entries()) projects.push(await buildHistory(sys, spec, 1000 + i));
  const buildS = (performance.now() - t0) / 1000;
  const ids = projects.map((p) => p.id);
  q(sys, 'vacuum analyze public.project_files, public.project_events');
  const relBefore = relations(sys);
  const before = measure(sys, ids);

  const t1 = performance.now();
  const run = spawnSync(process.execPath, [join(root, 'scripts/prune.mjs'), '--json',
    ...(maxRows ? ['--max-rows', maxRows] : []),
    '--supabase-url', sys.info.api_url, '--service-key', sys.info.service_role_key], { encoding: 'utf8' });
  const wallMs = performance.now() - t1;
  if (run.status !== 0) throw new Error(`prune failed: ${run.stderr}`);
  const summary = JSON.parse(run.stdout);
  const after = measure(sys, ids);
  q(sys, 'vacuum analyze public.project_files, public.project_events');
  const relAfter = relations(sys);

  console.log(`history built in ${buildS.toFixed(1)} s: ${projects.length} projects, ${PATHS} paths, ${ROUNDS * EDITS_PER_ROUND} single saves, `
    + `${Math.floor(ROUNDS / BULK_EVERY) + 1} bulks, ${BINARY_VERSIONS} binary versions, ${SNAPSHOTS} snapshots each (scale ${scale})\n`);
  const rows = projects.map((p) => {
    const b = before.get(p.id);
    const a = after.get(p.id);
    return {
      project: `${p.name} (${p.fromDays}–${p.toDays} d)`,
      versions: `${n(b.versions)} → ${n(a.versions)}`,
      events: `${n(b.events)} → ${n(a.events)}`,
      'db bytes': `${mib(b.version_bytes + b.event_bytes)} → ${mib(a.version_bytes + a.event_bytes)}`,
      snapshots: `${b.snapshots} → ${a.snapshots}`,
      'snapshot bytes': `${mib(b.snapshot_bytes)} → ${mib(a.snapshot_bytes)}`,
      'assets (kept)': mib(a.asset_bytes),
    };
  });
  const cols = Object.keys(rows[0]);
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => r[c].length)));
  const line = (vals) => vals.map((v, i) => v.padEnd(widths[i])).join('  ').trimEnd();
  console.log(line(cols));
  for (const r of rows) console.log(line(cols.map((c) => r[c])));

  const removed = summary.projects.reduce((s, p) => s + p.events_removed + p.versions_removed, 0);
  const snaps = summary.projects.reduce((s, p) => s + p.snapshots_removed, 0);
  console.log(`\nproject_files + project_events, pg_total_relation_size after VACUUM: ${mib(relBefore)} before, ${mib(relAfter)} after `
    + '(freed rows are reused space; the files shrink only with VACUUM FULL)');
  console.log(`prune: ${n(removed)} rows in ${summary.batches} batch(es), ${summary.db_ms} ms in the database `
    + `(${n(Math.round(removed / (summary.db_ms / 1000)))} rows/s); ${snaps} snapshot archives removed through the Storage API; `
    + `${Math.round(wallMs)} ms for the whole command (node start, RPCs, Storage)`);
} finally {
  await sys.close();
}
