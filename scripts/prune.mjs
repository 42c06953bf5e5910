// Retention for operators, with the service role (docs/contracts.md "Retention"):
//
//   npm run prune                                   every project, by each one's policy
//   npm run prune -- --project <uuid> --dry-run     what would go, nothing removed
//   npm run prune -- --max-rows 2000 --json         smaller batches; the summary as JSON
//   npm run prune -- policy <uuid>                  a project's policy
//   npm run prune -- policy <uuid> --keep-versions 20 --log-days 60   change it (--default KEY: back to the default)
//
// Where: --supabase-url and --service-key, or SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY.
// The database part runs as repeated prune_project_history calls (at most --max-rows rows each, one
// transaction each, each resuming at the project the previous one stopped in) until complete; then the snapshot archives it listed are removed through the
// Storage API (hosted Supabase refuses direct deletes on storage.objects), from the
// project-snapshots bucket only. `--now` (RFC 3339) prunes as if it were that time.
import { UUID, operatorCommand } from './operator-cli.mjs';

/** The only bucket the command deletes from (migrations/*_fsync-retention.sql lists its archives). */
const BUCKET = 'project-snapshots';
/** Objects per Storage API delete request (the API's limit is 1,000). */
const REMOVE_CHUNK = 1000;
const POLICY_KEYS = ['version_days', 'keep_versions', 'log_days', 'keep_snapshots'];

const { opt, positionals: [command, ...rest], db, die, check } = operatorCommand('prune', {
  project: { type: 'string' },
  'dry-run': { type: 'boolean' },
  now: { type: 'string' },
  'max-rows': { type: 'string' },
  json: { type: 'boolean' },
  'version-days': { type: 'string' },
  'keep-versions': { type: 'string' },
  'log-days': { type: 'string' },
  'keep-snapshots': { type: 'string' },
  default: { type: 'string', multiple: true },
});

function positiveInt(name) {
  const v = opt[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) die(`--${name} must be a non-negative integer, not ${JSON.stringify(v)}`);
  return n;
}

function print(rows, columns) {
  const cell = (v) => (v === null || v === undefined ? '' : String(v));
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals) => vals.map((v, i) => v.padStart(i === 0 ? 0 : widths[i]).padEnd(widths[i])).join('  ').trimEnd();
  console.log(line(columns));
  for (const r of rows) console.log(line(columns.map((c) => cell(r[c]))));
}

async function prune() {
  if (rest.length) die(`unexpected argument ${rest[0]}`);
  if (opt.project !== undefined && !UUID.test(opt.project)) die(`--project: ${JSON.stringify(opt.project)} is not a project uuid`);
  if (opt.now !== undefined && Number.isNaN(Date.parse(opt.now))) die(`--now: ${JSON.stringify(opt.now)} is not an RFC 3339 timestamp`);
  const maxRows = positiveInt('max-rows');
  if (maxRows === 0) die('--max-rows must be at least 1');
  const dryRun = Boolean(opt['dry-run']);
  const args = {
    ...(opt.project ? { project_uuid: opt.project } : {}),
    ...(dryRun ? { dry_run: true } : {}),
    ...(opt.now ? { now: opt.now } : {}),
    ...(maxRows ? { max_rows: maxRows } : {}),
  };

  // The database part, batch after batch; per project the sums, and the latest listing of archives.
  const projects = new Map();
  const t0 = performance.now();
  let batches = 0;
  for (;;) {
    const r = check('prune_project_history', await db.rpc('prune_project_history', args));
    batches += 1;
    let removed = 0;
    for (const p of r.projects) {
      const acc = projects.get(p.project_id) ?? {
        project_id: p.project_id, events_removed: 0, versions_removed: 0, sessions_removed: 0, bytes_freed: 0,
      };
      acc.events_removed += p.events_removed;
      acc.versions_removed += p.versions_removed;
      acc.sessions_removed += p.sessions_removed;
      acc.bytes_freed += p.bytes_freed;
      Object.assign(acc, {
        oldest_seq: p.oldest_seq, last_seq: p.last_seq, policy: p.policy,
        snapshots: p.snapshots, snapshot_bytes: p.snapshot_bytes,
      });
      projects.set(p.project_id, acc);
      removed += p.events_removed + p.versions_removed + p.sessions_removed;
    }
    if (r.complete) break;
    if (removed === 0) die(`prune_project_history reported more to do but removed nothing (batch ${batches}): ${JSON.stringify(r)}`);
    args.from_project = r.resume_from;
  }
  const dbMs = performance.now() - t0;

  // Storage: only <project>/<snapshot>.zip of a project the database listed, only in BUCKET.
  const rows = [...projects.values()];
  for (const p of rows) {
    const names = p.snapshots.filter((n) => n.startsWith(`${p.project_id}/`) && n.endsWith('.zip'));
    if (names.length !== p.snapshots.length) die(`refusing to delete objects outside ${BUCKET}/${p.project_id}/: ${JSON.stringify(p.snapshots)}`);
    p.snapshots_removed = 0;
    if (dryRun) continue;
    for (let i = 0; i < names.length; i += REMOVE_CHUNK) {
      const chunk = names.slice(i, i + REMOVE_CHUNK);
      const gone = check(`removing ${chunk.length} snapshot archives of project ${p.project_id} from ${BUCKET}`,
        await db.storage.from(BUCKET).remove(chunk));
      p.snapshots_removed += gone.length;
    }
  }

  const summary = {
    dry_run: dryRun, batches, db_ms: Math.round(dbMs),
    projects: rows,
  };
  if (opt.json) {
    console.log(JSON.stringify(summary, null, 2));
    return;
  }
  const table = rows.map((p) => ({
    project: p.project_id,
    events: p.events_removed,
    versions: p.versions_removed,
    bytes_freed: p.bytes_freed,
    oldest_seq: p.oldest_seq,
    last_seq: p.last_seq,
    snapshots: dryRun ? p.snapshots.length : p.snapshots_removed,
    snapshot_bytes: p.snapshot_bytes,
    sessions: p.sessions_removed,
  }));
  const total = (k) => table.reduce((s, r) => s + r[k], 0);
  table.push({
    project: 'total', events: total('events'), versions: total('versions'), bytes_freed: total('bytes_freed'),
    oldest_seq: '', last_seq: '', snapshots: total('snapshots'), snapshot_bytes: total('snapshot_bytes'),
    sessions: total('sessions'),
  });
  console.log(`${dryRun ? 'dry run (nothing removed): would remove' : 'removed'}; ${batches} batch(es), ${Math.round(dbMs)} ms in the database`);
  print(table, ['project', 'events', 'versions', 'bytes_freed', 'oldest_seq', 'last_seq', 'snapshots', 'snapshot_bytes', 'sessions']);
}

async function policy() {
  const [project, ...extra] = rest;
  if (extra.length) die(`unexpected argument ${extra[0]}`);
  if (!project || !UUID.test(project)) die(`policy needs a project uuid, e.g. policy <uuid> --keep-versions 20; got ${JSON.stringify(project ?? '')}`);
  const change = {};
  for (const k of POLICY_KEYS) {
    const v = positiveInt(k.replace('_', '-'));
    if (v !== undefined) change[k] = v;
  }
  for (const d of opt.default ?? []) {
    const k = d.replace('-', '_');
    if (!POLICY_KEYS.includes(k)) die(`--default ${JSON.stringify(d)}: use one of ${POLICY_KEYS.join(', ')}`);
    change[k] = null;
  }
  const p = check(`the retention policy of project ${project}`,
    await db.rpc('set_retention_policy', { project_uuid: project, ...change }));
  if (opt.json) console.log(JSON.stringify(p, null, 2));
  else print([p], ['project_id', ...POLICY_KEYS]);
}

const commands = { prune, policy };
const name = command ?? 'prune';
if (!commands[name]) die(`unknown command ${JSON.stringify(name)}: use policy, or no command to prune`);
await commands[name]();
