// The operators' prune command (npm run prune, scripts/prune.mjs) against fs-sync-dev addressed by
// URL and service key only: a dry run removes nothing and says what a prune removes; the prune
// removes old versions and events by the project's policy, then the snapshot archives the database
// listed through the Storage API, never the newest K, a live session's, another project's or
// another bucket's objects; a follower behind the pruned log gets HTTP 410 with the oldest
// position; policies; clear refusals.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import {
  startSystem, createProject, call, rpc, putBinary, root,
} from '../harness/index.mjs';

const BUCKET = 'project-snapshots';
let sys;
let project;
let other;

function prune(args, { key = sys.info.service_role_key } = {}) {
  return spawnSync(process.execPath, [join(root, 'scripts/prune.mjs'), ...args,
    '--supabase-url', sys.info.api_url, '--service-key', key], { encoding: 'utf8' });
}

/** Uploads a snapshot archive as the edge does (service role) and dates it `daysAgo`. */
async function putSnapshot(projectId, id, daysAgo) {
  const name = `${projectId}/${id}.zip`;
  const r = await fetch(`${sys.info.api_url}/storage/v1/object/${BUCKET}/${name}`, {
    method: 'POST',
    headers: { ...sys.service, 'content-type': 'application/zip' },
    body: Buffer.alloc(1000 + daysAgo, 7),
  });
  assert.equal(r.status, 200, `upload ${name}: ${await r.text()}`);
  sys.sql(`update storage.objects set created_at = now() - interval '${daysAgo} days'
            where bucket_id = '${BUCKET}' and name = '${name}'`);
  return name;
}

function snapshotNames(projectId) {
  return sys.sql(`select coalesce(string_agg(name, ',' order by name), '') from storage.objects
                   where bucket_id = '${BUCKET}' and name like '${projectId}/%'`).split(',').filter(Boolean);
}

const snap = (c) => c.repeat(64);
const count = (sql) => Number(sys.sql(sql));

before(async () => {
  sys = await startSystem({ edge: false });
  sys.sql("update fsync.settings set value = 'false' where key = 'rate_limit.enabled'");
  project = await createProject(sys, { name: 'prune', hydration: false });
  other = await createProject(sys, { name: 'other', hydration: false });
  // 12 saves of a.ts, then 3 of b.ts; the first 12 events and versions are 60 days old.
  for (let i = 1; i <= 12; i++) {
    await call(sys, project.owner, 'upsert_project_file', { project_uuid: project.id, p_file_path: 'a.ts', p_content: `a${i}` });
  }
  for (let i = 1; i <= 3; i++) {
    await call(sys, project.owner, 'upsert_project_file', { project_uuid: project.id, p_file_path: 'b.ts', p_content: `b${i}` });
  }
  await putBinary(sys, project.id, project.owner, { path: 'logo.bin', bytes: Buffer.from('not a zip') });
  sys.sql(`update public.project_events set created_at = now() - interval '60 days'
            where project_id = '${project.id}' and seq <= 12`);
  sys.sql(`update public.project_files set created_at = now() - interval '60 days'
            where project_id = '${project.id}' and file_path = 'a.ts'`);
  // Five archives, s1 the oldest; a live session still uses s1. Another project's old archive.
  for (let i = 1; i <= 5; i++) await putSnapshot(project.id, snap(String(i)), 10 - i);
  await putSnapshot(other.id, snap('a'), 90);
  await call(sys, null, 'open_container_session', {
    project_uuid: project.id, session_id: `prune-${project.id}`, snapshot_id: snap('1'), as_of_seq: 3,
  });
});

after(async () => {
  assert.deepEqual(await sys?.close(), { code: 0, signal: null });
});

test('policy shows and changes a project\'s retention policy', () => {
  const show = prune(['policy', project.id, '--json']);
  assert.equal(show.status, 0, show.stderr);
  assert.deepEqual(JSON.parse(show.stdout), {
    project_id: project.id, version_days: 30, keep_versions: 10, log_days: 30, keep_snapshots: 3,
  });
  const set = prune(['policy', project.id, '--keep-versions', '4']);
  assert.equal(set.status, 0, set.stderr);
  assert.match(set.stdout, new RegExp(`${project.id}\\s+30\\s+4\\s+30\\s+3`));
});

test('a dry run says what a prune removes and removes nothing', async () => {
  const before = count(`select count(*) from public.project_files where project_id = '${project.id}'`);
  const r = prune(['--project', project.id, '--dry-run', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const [p] = JSON.parse(r.stdout).projects;
  // a.ts: v1-v8 are older than 30 days and beyond the last 4; the log keeps seq 13 on (point 12).
  assert.equal(p.events_removed, 12);
  assert.equal(p.versions_removed, 8);
  assert.equal(p.oldest_seq, 12);
  assert.deepEqual(p.snapshots, [`${project.id}/${snap('2')}.zip`]);
  assert.equal(count(`select count(*) from public.project_files where project_id = '${project.id}'`), before);
  assert.equal(count(`select min(seq) from public.project_events where project_id = '${project.id}'`), 1);
  assert.equal((snapshotNames(project.id)).length, 5);
});

test('prune (every project, in batches) removes old history and the listed archives, and keeps the rest', async () => {
  const r = prune(['--max-rows', '5']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^removed; 5 batch\(es\)/);
  assert.match(r.stdout, new RegExp(`${project.id}\\s+12\\s+8\\s+\\d+\\s+12\\s+16\\s+1\\s+\\d+`));
  assert.match(r.stdout, /total\s+12\s+8\s/);

  assert.equal(sys.sql(`select string_agg(file_path || ':' || version, ',' order by file_path, version)
                          from public.project_files where project_id = '${project.id}'`),
  'a.ts:9,a.ts:10,a.ts:11,a.ts:12,b.ts:1,b.ts:2,b.ts:3,logo.bin:1');
  assert.equal(sys.sql(`select min(seq) || '-' || max(seq) from public.project_events where project_id = '${project.id}'`), '13-16');
  // The newest 3 and the live session's archive stay; another project's and the binary too.
  assert.deepEqual(snapshotNames(project.id), [1, 3, 4, 5].map((i) => `${project.id}/${snap(String(i))}.zip`));
  assert.deepEqual(snapshotNames(other.id), [`${other.id}/${snap('a')}.zip`]);
  assert.equal(count(`select count(*) from storage.objects where bucket_id = 'project-assets' and name like '${project.id}/%'`), 1);
  const gone = await fetch(`${sys.info.api_url}/storage/v1/object/${BUCKET}/${project.id}/${snap('2')}.zip`, { headers: sys.service });
  assert.equal((await gone.json()).code, 'NoSuchKey', 'the removed archive is gone from Storage');

  // A follower behind the oldest kept event is told to re-hydrate; one at it follows on.
  const owner = { apikey: sys.info.anon_key, token: project.owner.access_token };
  const behind = await rpc(sys.info.api_url, owner, 'list_project_events', { project_uuid: project.id, after_seq: 3 });
  assert.equal(behind.status, 410, JSON.stringify(behind.body));
  assert.equal(behind.body.code, 'PT410');
  assert.deepEqual(JSON.parse(behind.body.details), { param: 'after_seq', oldest_seq: 12 });
  const at = await rpc(sys.info.api_url, owner, 'list_project_events', { project_uuid: project.id, after_seq: 12 });
  assert.equal(at.status, 200);
  assert.deepEqual(at.body.map((e) => e.seq), [13, 14, 15, 16]);

  const again = prune(['--project', project.id, '--json']);
  assert.equal(again.status, 0, again.stderr);
  const [p] = JSON.parse(again.stdout).projects;
  assert.deepEqual([p.events_removed, p.versions_removed, p.snapshots_removed], [0, 0, 0], 'a second prune finds nothing');
});

test('bad input and a wrong key are refused with a message naming them', () => {
  const cases = [
    [['--project', 'alice'], /--project: "alice" is not a project uuid/],
    [['--max-rows', '0'], /--max-rows must be at least 1/],
    [['--now', 'soon'], /--now: "soon" is not an RFC 3339 timestamp/],
    [['policy', project.id, '--keep-versions', '0'], /invalid keep_versions: must be an integer from 1 to 1000000; got 0 \(HTTP 422, PT422\)/],
    [['policy', project.id, '--default', 'forever'], /--default "forever": use one of/],
    [['--project', '00000000-0000-0000-0000-000000000000'], /project 00000000-0000-0000-0000-000000000000 not found \(HTTP 404, PT404\)/],
    [['frobnicate'], /unknown command "frobnicate"/],
  ];
  for (const [args, message] of cases) {
    const r = prune(args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stdout}`);
    assert.match(r.stderr, message);
  }
  const wrongKey = prune(['--dry-run'], { key: sys.info.anon_key });
  assert.equal(wrongKey.status, 2);
  assert.match(wrongKey.stderr, /prune_project_history: .*\(HTTP 40[13]/);
});
