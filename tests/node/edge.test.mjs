// The edge worker (edge/, workers-rs) built by scripts/build-edge.sh, running in workerd under
// `wrangler dev`, against fs-sync-dev: snapshots (build, reuse, signed download, contents), the
// session hand-off (container env and token), token refresh, refusals, and its log lines.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import JSZip from 'jszip';
import { jwtVerify, decodeJwt, SignJWT } from 'jose';
import { createClient } from '@supabase/supabase-js';
import ws from 'ws';
import { startSystem, startWorker, psql, rpc, postJson, until } from '../harness/index.mjs';
import { sourceFiles } from '../../bench/source-tree.mjs';

const FLAG = 'FSYNC_SNAPSHOT_HYDRATION';
const ASSETS_BUCKET = 'project-assets';
// The snapshot limit for this suite: the worker's SNAPSHOT_MAX_BYTES and the project-snapshots
// bucket's file_size_limit, kept equal as in production (50 MB there), small so that projects
// over it are quick to make.
const LIMIT = 3 << 20;
const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

let stack, worker, info, owner, project, stranger, strangerProject;
const tmp = mkdtempSync(join(tmpdir(), 'fs-sync-edge-test-'));
let binary; // {path, bytes, storagePath}

const service = () => ({ authorization: `Bearer ${info.service_role_key}` });
const admin = (path, body) => postJson(`${info.api_url}/admin/v1/${path}`, body, service());
const asOwner = () => ({ apikey: info.anon_key, token: owner.access_token });
const asService = () => ({ apikey: info.service_role_key });
const callWorker = (path, body, headers = service()) => postJson(`${worker.url}${path}`, body, headers);

async function upsert(path, content) {
  const r = await rpc(info.api_url, asOwner(), 'upsert_project_file',
    { project_uuid: project, p_file_path: path, p_content: content });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

/** The project-snapshots bucket's file_size_limit (fs-sync-dev's Storage enforces it). */
function setBucketLimit(bytes) {
  psql(info.db_url, `update storage.buckets set file_size_limit = ${bytes} where id = 'project-snapshots'`);
}

/** Uploads `bytes` to project-assets and registers them as the binary file `path` of `projectId`. */
async function addBinary(projectId, path, bytes, contentType = 'application/octet-stream') {
  const storagePath = `${ASSETS_BUCKET}/${projectId}/${path}`;
  const up = await fetch(`${info.api_url}/storage/v1/object/${storagePath}`, {
    method: 'POST',
    headers: { ...service(), apikey: info.service_role_key, 'content-type': contentType },
    body: bytes,
  });
  assert.equal(up.status, 200, await up.text());
  const reg = await rpc(info.api_url, asService(), 'register_binary_file', {
    project_uuid: projectId, p_file_path: path, p_storage_path: storagePath,
    p_content_hash: sha256(bytes), p_size_bytes: bytes.length,
  });
  assert.equal(reg.status, 200, JSON.stringify(reg.body));
}

/** Writes text files `{path, content}` into `projectId`, 250 per bulk call. */
async function addTexts(projectId, files) {
  for (let i = 0; i < files.length; i += 250) {
    const r = await rpc(info.api_url, asService(), 'bulk_upsert_project_files', {
      project_uuid: projectId, files: files.slice(i, i + 250).map((f) => ({ file_path: f.path, content: f.content })),
    });
    assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 300));
  }
}

/** How many archives project-snapshots holds for `projectId`. */
const storedSnapshots = (projectId) => Number(psql(info.db_url,
  `select count(*) from storage.objects where bucket_id = 'project-snapshots' and name like '${projectId}/%'`));

/** Every regular file under `dir`: {relative path: Buffer}. */
function readTree(dir) {
  const out = new Map();
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) {
      const full = join(e.parentPath ?? e.path, e.name); // parentPath from Node 20.12
      out.set(relative(dir, full), readFileSync(full));
    }
  }
  return out;
}

async function download(url) {
  const res = await fetch(url);
  return { status: res.status, bytes: Buffer.from(await res.arrayBuffer()) };
}

before(async () => {
  stack = await startSystem({ edge: false });
  info = stack.info;
  setBucketLimit(LIMIT);
  worker = await startWorker({
    SUPABASE_URL: info.api_url,
    SUPABASE_ANON_KEY: info.anon_key,
    SUPABASE_SERVICE_ROLE_KEY: info.service_role_key,
    SUPABASE_JWT_SECRET: info.jwt_secret,
    SNAPSHOT_MAX_BYTES: LIMIT,
  });

  owner = (await admin('users', { email: 'edge-owner@example.test' })).body;
  stranger = (await admin('users', { email: 'edge-stranger@example.test' })).body;
  project = (await admin('projects', { owner_id: owner.id, name: 'edge' })).body.id;
  strangerProject = (await admin('projects', { owner_id: stranger.id, name: 'other' })).body.id;
  // The flag, on for the owner only (not the stranger): a fixture only the database superuser
  // can set up here.
  psql(info.db_url, `update public.feature_flags set enabled = true,
    target_user_ids = array['${owner.id}']::uuid[] where flag_key = '${FLAG}'`);

  await upsert('src/App.tsx', 'export default function App() {\n  return <h1>héllo</h1>;\n}\n'.repeat(20));
  await upsert('docs/ünïcødé/日本語 ファイル.md', '# 見出し\n\nΚαλημέρα 🌍\n');
  await upsert('empty.txt', '');
  await upsert('src/components/Button.tsx', 'export const Button = () => null;\n');
  await upsert('package.json', '{"name":"demo","version":"1.0.0"}\n');

  // A binary: uploaded to Storage, then registered with its hash and size.
  const bytes = Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), randomBytes(3000)]);
  const storagePath = `${ASSETS_BUCKET}/${project}/blobs/logo.png`;
  const up = await fetch(`${info.api_url}/storage/v1/object/${storagePath}`, {
    method: 'POST',
    headers: { ...service(), apikey: info.service_role_key, 'content-type': 'image/png' },
    body: bytes,
  });
  assert.equal(up.status, 200, await up.text());
  const reg = await rpc(info.api_url, asOwner(), 'register_binary_file', {
    project_uuid: project, p_file_path: 'public/logo.png', p_storage_path: storagePath,
    p_content_hash: sha256(bytes), p_size_bytes: bytes.length,
  });
  assert.equal(reg.status, 200, JSON.stringify(reg.body));
  binary = { path: 'public/logo.png', bytes, storagePath };
});

after(async () => {
  await worker?.stop();
  await stack?.close();
  rmSync(tmp, { recursive: true, force: true });
});

/** Unzips `bytes` with JSZip: {name: Buffer}, in archive order. */
async function entries(bytes) {
  const zip = await JSZip.loadAsync(bytes);
  const out = new Map();
  for (const name of Object.keys(zip.files)) out.set(name, await zip.files[name].async('nodebuffer'));
  return out;
}

let first; // the first snapshot, for later comparisons

test('build-project-snapshot: a signed, verified archive equal to list_current_files byte for byte', async () => {
  const r = await callWorker('/build-project-snapshot', { projectId: project });
  assert.equal(r.status, 200, r.text);
  const s = r.body;
  assert.deepEqual(Object.keys(s).sort(),
    ['asOfSeq', 'expiresAt', 'fileCount', 'reused', 'sha256', 'signedUrl', 'size', 'snapshotId'].sort());
  assert.equal(s.reused, false);
  assert.match(s.snapshotId, /^[0-9a-f]{64}$/);
  assert.ok(s.signedUrl.startsWith(`${info.api_url}/storage/v1/object/sign/project-snapshots/${project}/${s.snapshotId}.zip?token=`), s.signedUrl);
  assert.ok(Date.parse(s.expiresAt) > Date.now());

  const sync = await rpc(info.api_url, asOwner(), 'get_project_sync_state', { project_uuid: project });
  assert.equal(s.asOfSeq, sync.body.seq);

  const { status, bytes } = await download(s.signedUrl);
  assert.equal(status, 200);
  assert.equal(bytes.length, s.size);
  assert.equal(sha256(bytes), s.sha256);

  // Independent readers accept it.
  const file = join(tmp, 'snapshot.zip');
  writeFileSync(file, bytes);
  execFileSync('unzip', ['-tq', file], { stdio: 'pipe' });
  const py = execFileSync('python3', ['-c', `
import json, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
assert z.testzip() is None
print(json.dumps(z.namelist()))`, file], { encoding: 'utf8' });
  const names = JSON.parse(py);
  assert.equal(names[0], '.fs-sync/manifest.json');

  // Contents equal list_current_files (text) and the Storage object (binary), byte for byte.
  const rows = (await rpc(info.api_url, asOwner(), 'list_current_files', { project_uuid: project })).body;
  const files = await entries(bytes);
  const manifest = JSON.parse(files.get('.fs-sync/manifest.json'));
  assert.equal(manifest.project_id, project);
  assert.equal(manifest.as_of_seq, s.asOfSeq);
  assert.equal(s.fileCount, rows.length);
  assert.equal(files.size, rows.length + 1);
  assert.deepEqual(names.slice(1), [...rows.map((r) => r.file_path)].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
  for (const row of rows) {
    const got = files.get(row.file_path);
    assert.ok(got, `missing ${row.file_path}`);
    if (row.storage_path) {
      const obj = await fetch(`${info.api_url}/storage/v1/object/${row.storage_path}`, { headers: { ...service(), apikey: info.service_role_key } });
      assert.ok(got.equals(Buffer.from(await obj.arrayBuffer())), row.file_path);
      assert.ok(got.equals(binary.bytes));
    } else {
      assert.ok(got.equals(Buffer.from(row.content, 'utf8')), row.file_path);
    }
    assert.equal(sha256(got), row.content_hash);
  }
  assert.ok(files.has('docs/ünïcødé/日本語 ファイル.md'));
  assert.equal(files.get('empty.txt').length, 0);
  first = s;
});

test('an unchanged project reuses its snapshot; an edit makes a new one at a later seq', async () => {
  const again = (await callWorker('/build-project-snapshot', { projectId: project })).body;
  assert.equal(again.snapshotId, first.snapshotId);
  assert.equal(again.reused, true);
  assert.equal(again.sha256, first.sha256);
  assert.equal(again.size, first.size);
  assert.equal(again.asOfSeq, first.asOfSeq);

  await upsert('src/App.tsx', 'export default () => "edited";\n');
  // Two concurrent requests for the new state: both succeed with the same archive.
  const [a, b] = await Promise.all([
    callWorker('/build-project-snapshot', { projectId: project }),
    callWorker('/build-project-snapshot', { projectId: project }),
  ]);
  assert.equal(a.status, 200, a.text);
  assert.equal(b.status, 200, b.text);
  assert.notEqual(a.body.snapshotId, first.snapshotId);
  assert.ok(a.body.asOfSeq > first.asOfSeq);
  assert.equal(a.body.snapshotId, b.body.snapshotId);
  assert.equal(a.body.sha256, b.body.sha256);
  const { bytes } = await download(a.body.signedUrl);
  assert.equal(sha256(bytes), a.body.sha256);
  assert.equal((await entries(bytes)).get('src/App.tsx').toString(), 'export default () => "edited";\n');
});

test('reuse comes from the snapshot record: a pruned archive is built again, an unrecorded one is found by its upload', async () => {
  const record = () => psql(info.db_url, `select sha256 || ' ' || size_bytes || ' ' || as_of_seq || ' ' || snapshot_id
    from fsync.project_snapshots where project_id = '${project}'`);
  const current = (await callWorker('/build-project-snapshot', { projectId: project })).body;
  assert.equal(current.reused, true);
  assert.equal(record(), `${current.sha256} ${current.size} ${current.asOfSeq} ${current.snapshotId}`,
    'the record holds what the edge answers');

  // Deleted through the Storage API, as `npm run prune` deletes archives: no longer offered, so
  // the next request builds it again, to the same bytes (the writer is deterministic).
  const del = await fetch(`${info.api_url}/storage/v1/object/project-snapshots/${project}/${current.snapshotId}.zip`,
    { method: 'DELETE', headers: { ...service(), apikey: info.service_role_key } });
  assert.equal(del.status, 200, await del.text());
  const rebuilt = (await callWorker('/build-project-snapshot', { projectId: project })).body;
  assert.equal(rebuilt.reused, false, 'a pruned archive is built again, not signed');
  assert.equal(rebuilt.snapshotId, current.snapshotId);
  assert.equal(rebuilt.sha256, current.sha256);
  const { status, bytes } = await download(rebuilt.signedUrl);
  assert.equal(status, 200);
  assert.equal(sha256(bytes), current.sha256);

  // An archive stored without a record (one stored before records existed, or a racing build's):
  // the build's upload finds it, hashes it and records it.
  psql(info.db_url, `delete from fsync.project_snapshots where project_id = '${project}'`);
  const found = (await callWorker('/build-project-snapshot', { projectId: project })).body;
  assert.equal(found.reused, true);
  assert.equal(found.sha256, current.sha256);
  assert.equal(record(), `${current.sha256} ${current.size} ${current.asOfSeq} ${current.snapshotId}`);
});

test('callers without the service role get 401 with a JSON error', async () => {
  const wrongSecret = await new SignJWT({ role: 'service_role' }).setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt().setExpirationTime('1h').sign(new TextEncoder().encode('not-the-secret-but-long-enough-1234567890'));
  const expired = await new SignJWT({ role: 'service_role' }).setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt(Math.floor(Date.now() / 1000) - 7200).setExpirationTime(Math.floor(Date.now() / 1000) - 3600)
    .sign(new TextEncoder().encode(info.jwt_secret));
  const cases = {
    'no token': {},
    'anon key': { authorization: `Bearer ${info.anon_key}` },
    'a user token': { authorization: `Bearer ${owner.access_token}` },
    'service_role signed with another secret': { authorization: `Bearer ${wrongSecret}` },
    'an expired service token': { authorization: `Bearer ${expired}` },
    'not a bearer': { authorization: `Basic ${info.service_role_key}` },
  };
  for (const path of ['/build-project-snapshot', '/sessions']) {
    for (const [name, headers] of Object.entries(cases)) {
      const r = await callWorker(path, { projectId: project }, headers);
      assert.equal(r.status, 401, `${path} with ${name}: ${r.text}`);
      assert.equal(r.body.error, 'unauthorized', name);
      assert.equal(typeof r.body.message, 'string');
    }
  }
});

test('tampered and expired signed URLs are refused with Storage error bodies', async () => {
  const s = (await callWorker('/build-project-snapshot', { projectId: project })).body;
  const url = new URL(s.signedUrl);
  const token = url.searchParams.get('token');
  const claims = decodeJwt(token);
  assert.equal(claims.exp - claims.iat, 600, 'the URL expires after SNAPSHOT_URL_TTL');

  const refused = async (u, code) => {
    const res = await fetch(u);
    const body = await res.json();
    assert.ok(res.status >= 400, `${u} answered ${res.status}`);
    assert.equal(body.error, code, JSON.stringify(body));
    assert.ok(body.statusCode && body.message, JSON.stringify(body));
  };
  // A flipped signature character.
  const sig = token.slice(token.lastIndexOf('.') + 1);
  const flipped = token.slice(0, token.length - sig.length) + (sig[0] === 'A' ? 'B' : 'A') + sig.slice(1);
  await refused(`${url.origin}${url.pathname}?token=${flipped}`, 'InvalidSignature');
  // The same token for another object.
  await refused(`${url.origin}${url.pathname.replace(s.snapshotId, first.snapshotId)}?token=${token}`, 'InvalidSignature');
  // The same claims, expired (re-signed with the project's secret: only exp differs).
  const now = Math.floor(Date.now() / 1000);
  const expired = await new SignJWT({ ...claims, iat: now - 1200, exp: now - 600 })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new TextEncoder().encode(info.jwt_secret));
  await refused(`${url.origin}${url.pathname}?token=${expired}`, 'ExpiredToken');
});

let session;

test('POST /sessions: the snapshot plus a container token, as exactly the container env', async () => {
  const r = await callWorker('/sessions', { projectId: project });
  assert.equal(r.status, 200, r.text);
  session = r.body;
  const env = session.env;
  assert.deepEqual(Object.keys(env).sort(), ['EDGE_URL', 'PROJECT_ID', 'REALTIME_TOKEN', 'SESSION_ID',
    'SNAPSHOT_SHA256', 'SNAPSHOT_URL', 'SUPABASE_ANON_KEY', 'SUPABASE_URL', 'TOKEN_EXPIRES_AT']);
  assert.equal(env.PROJECT_ID, project);
  assert.match(env.SESSION_ID, /^[0-9a-f-]{36}$/);
  assert.equal(env.SUPABASE_URL, info.api_url);
  assert.equal(env.SUPABASE_ANON_KEY, info.anon_key);
  assert.equal(env.EDGE_URL, worker.url);
  assert.equal(env.SNAPSHOT_URL, session.snapshot.signedUrl);
  assert.equal(env.SNAPSHOT_SHA256, session.snapshot.sha256);
  assert.equal(session.snapshot.reused, true);
  // Never the service key or the JWT secret.
  assert.ok(!r.text.includes(info.service_role_key));
  assert.ok(!r.text.includes(info.jwt_secret));

  const { bytes } = await download(env.SNAPSHOT_URL);
  assert.equal(sha256(bytes), env.SNAPSHOT_SHA256);

  const { payload, protectedHeader } = await jwtVerify(env.REALTIME_TOKEN, new TextEncoder().encode(info.jwt_secret),
    { algorithms: ['HS256'] });
  assert.equal(protectedHeader.alg, 'HS256');
  assert.deepEqual(Object.keys(payload).sort(), ['exp', 'iat', 'project_id', 'role', 'scope', 'session_id', 'sub']);
  assert.equal(payload.role, 'fsync_container');
  assert.equal(payload.sub, env.SESSION_ID);
  assert.equal(payload.session_id, env.SESSION_ID);
  assert.equal(payload.project_id, project);
  assert.equal(payload.scope, 'fsync:read');
  assert.equal(payload.exp - payload.iat, 900);
  assert.equal(new Date(payload.exp * 1000).toISOString().replace('.000Z', 'Z'), env.TOKEN_EXPIRES_AT);

  const named = await callWorker('/sessions', { projectId: project, sessionId: 'preview-42' });
  assert.equal(named.body.env.SESSION_ID, 'preview-42');
  assert.equal(decodeJwt(named.body.env.REALTIME_TOKEN).sub, 'preview-42');
  const bad = await callWorker('/sessions', { projectId: project, sessionId: 'no spaces' });
  assert.equal(bad.status, 400);
});

test('the container token calls only the read RPCs of its own project', async () => {
  const asContainer = { apikey: info.anon_key, token: session.env.REALTIME_TOKEN };
  for (const [fn, args] of [
    ['list_current_files', { project_uuid: project }],
    ['get_project_snapshot', { project_uuid: project, include_content: false }],
    ['get_project_sync_state', { project_uuid: project }],
    ['list_project_events', { project_uuid: project, after_seq: 0 }],
    ['get_project_files', { project_uuid: project, paths: ['package.json'] }],
  ]) {
    const r = await rpc(info.api_url, asContainer, fn, args);
    assert.equal(r.status, 200, `${fn}: ${JSON.stringify(r.body)}`);
  }
  for (const [fn, args] of [
    ['upsert_project_file', { project_uuid: project, p_file_path: 'x.ts', p_content: 'x' }],
    ['delete_project_file', { project_uuid: project, p_file_path: 'package.json' }],
    ['rename_project_file', { project_uuid: project, p_from_path: 'package.json', p_to_path: 'p.json' }],
    ['bulk_upsert_project_files', { project_uuid: project, files: [{ file_path: 'y.ts', content: 'y' }] }],
    ['register_binary_file', { project_uuid: project, p_file_path: 'b.png', p_storage_path: binary.storagePath,
      p_content_hash: sha256(binary.bytes), p_size_bytes: binary.bytes.length }],
    ['list_current_files', { project_uuid: strangerProject }],
  ]) {
    const r = await rpc(info.api_url, asContainer, fn, args);
    assert.ok([401, 403, 404].includes(r.status), `${fn} answered ${r.status}: ${JSON.stringify(r.body)}`);
    if (r.status !== 404) assert.equal(r.body.code, '42501', `${fn}: ${JSON.stringify(r.body)}`);
  }
});

test('as a realtime access_token it joins only its own project topic', async () => {
  // Node 20 has no global WebSocket: realtime-js takes `ws` as its transport.
  const client = createClient(info.api_url, info.anon_key, {
    auth: { persistSession: false, autoRefreshToken: false },
    realtime: { transport: ws },
  });
  await client.realtime.setAuth(session.env.REALTIME_TOKEN);
  const join = (topic) => new Promise((resolve) => {
    const ch = client.channel(topic, { config: { private: true } });
    const timer = setTimeout(() => resolve({ status: 'TIMED_OUT', ch }), 10_000);
    ch.subscribe((status, err) => {
      if (status === 'SUBSCRIBED' || status === 'CHANNEL_ERROR') { clearTimeout(timer); resolve({ status, err, ch }); }
    });
  });
  try {
    const own = await join(`project:${project}`);
    assert.equal(own.status, 'SUBSCRIBED');
    const got = new Promise((resolve) => own.ch.on('broadcast', { event: 'file:update' }, (m) => resolve(m.payload)));
    await upsert('src/live.ts', 'export const live = true;\n');
    const payload = await Promise.race([got, new Promise((_, rej) => setTimeout(() => rej(new Error('no broadcast')), 10_000))]);
    assert.equal(payload.file_path, 'src/live.ts');

    const other = await join(`project:${strangerProject}`);
    assert.equal(other.status, 'CHANNEL_ERROR');
  } finally {
    await client.removeAllChannels();
    client.realtime.disconnect();
  }
});

test('POST /sessions/refresh: a still-valid container token gets a new one with the same scope', async () => {
  const old = decodeJwt(session.env.REALTIME_TOKEN);
  await new Promise((r) => setTimeout(r, 1100)); // a later iat
  const r = await callWorker('/sessions/refresh', undefined, { authorization: `Bearer ${session.env.REALTIME_TOKEN}` });
  assert.equal(r.status, 200, r.text);
  const { payload } = await jwtVerify(r.body.token, new TextEncoder().encode(info.jwt_secret), { algorithms: ['HS256'] });
  assert.deepEqual(Object.keys(payload).sort(), ['exp', 'iat', 'project_id', 'role', 'scope', 'session_id', 'sub']);
  for (const k of ['role', 'sub', 'project_id', 'session_id', 'scope']) assert.equal(payload[k], old[k], k);
  assert.ok(payload.iat > old.iat && payload.exp > old.exp);
  assert.equal(r.body.env.REALTIME_TOKEN, r.body.token);
  assert.equal(r.body.expiresAt, r.body.env.TOKEN_EXPIRES_AT);

  const now = Math.floor(Date.now() / 1000);
  const expired = await new SignJWT({ ...old, iat: now - 1000, exp: now - 1 }).setProtectedHeader({ alg: 'HS256' })
    .sign(new TextEncoder().encode(info.jwt_secret));
  const forged = await new SignJWT({ ...old, exp: now + 600 }).setProtectedHeader({ alg: 'HS256' })
    .sign(new TextEncoder().encode('some-other-secret-of-sufficient-length-123'));
  for (const [name, token] of [['expired', expired], ['forged', forged], ['service key', info.service_role_key],
    ['user token', owner.access_token]]) {
    const bad = await callWorker('/sessions/refresh', undefined, { authorization: `Bearer ${token}` });
    assert.equal(bad.status, 401, `${name}: ${bad.text}`);
    assert.equal(bad.body.error, 'unauthorized');
  }
});

test('409 when snapshot hydration is off for the owner; 404 for an unknown project; 400 for junk', async () => {
  for (const path of ['/build-project-snapshot', '/sessions']) {
    const r = await callWorker(path, { projectId: strangerProject });
    assert.equal(r.status, 409, r.text);
    assert.equal(r.body.error, 'hydration_disabled');
    assert.match(r.body.message, /FSYNC_SNAPSHOT_HYDRATION is off/);
  }
  const missing = await callWorker('/build-project-snapshot', { projectId: '00000000-0000-4000-8000-000000000000' });
  assert.equal(missing.status, 404, missing.text);
  assert.equal((await callWorker('/build-project-snapshot', { projectId: 'nope' })).status, 400);
  assert.equal((await callWorker('/build-project-snapshot', 'not an object')).status, 400);
  assert.equal((await fetch(`${worker.url}/sessions`)).status, 405);
});

test('a project of compressible files over the limit in raw bytes is served when its archive fits', async () => {
  const big = (await admin('projects', { owner_id: owner.id, name: 'compressible' })).body.id;
  // ~4 MB of source-like text (it deflates about 3x), a 2 MiB compressible binary and a 1.1 MB
  // photo stored as it is: ~7.3 MB of files, more than twice the limit.
  const texts = sourceFiles(800, 11);
  await addTexts(big, texts);
  const wasm = Buffer.from(texts.slice(0, 400).map((f) => f.content).join('')).subarray(0, 2 << 20);
  const photo = Buffer.concat([Buffer.from('ffd8ffe0', 'hex'), randomBytes(1_100_000)]);
  await addBinary(big, 'public/app.wasm', wasm, 'application/wasm');
  await addBinary(big, 'public/hero.jpg', photo, 'image/jpeg');
  const expected = new Map([...texts.map((f) => [f.path, Buffer.from(f.content)]),
    ['public/app.wasm', wasm], ['public/hero.jpg', photo]]);
  const raw = [...expected.values()].reduce((a, b) => a + b.length, 0);
  assert.ok(raw > 2 * LIMIT, `${raw} bytes of files`);

  const r = await callWorker('/build-project-snapshot', { projectId: big });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.fileCount, expected.size);
  assert.ok(r.body.size <= LIMIT, `${r.body.size} bytes`);
  const { status, bytes } = await download(r.body.signedUrl);
  assert.equal(status, 200);
  assert.equal(bytes.length, r.body.size);
  assert.equal(sha256(bytes), r.body.sha256);

  // Extracted by Info-ZIP, every file is the one written, byte for byte, and nothing else.
  const zip = join(tmp, 'compressible.zip');
  const out = join(tmp, 'compressible');
  writeFileSync(zip, bytes);
  execFileSync('unzip', ['-q', zip, '-d', out], { stdio: 'pipe' });
  const tree = readTree(out);
  const manifest = JSON.parse(tree.get('.fs-sync/manifest.json'));
  tree.delete('.fs-sync/manifest.json');
  assert.deepEqual([...tree.keys()].sort(), [...expected.keys()].sort());
  for (const [path, content] of expected) assert.ok(tree.get(path).equals(content), path);
  assert.equal(manifest.files.length, expected.size);
  for (const f of manifest.files) assert.equal(f.content_hash, sha256(expected.get(f.path)), f.path);

  const again = await callWorker('/build-project-snapshot', { projectId: big });
  assert.equal(again.body.reused, true);
  assert.equal(again.body.sha256, r.body.sha256);
});

test('413 saying how large the archive got when it exceeds the limit, and nothing is stored', async () => {
  const big = (await admin('projects', { owner_id: owner.id, name: 'incompressible' })).body.id;
  // 60 files of random base64 text: ~6 MB that deflate only to ~4.5 MB.
  await addTexts(big, Array.from({ length: 60 }, (_, i) => ({
    path: `data/blob-${String(i).padStart(2, '0')}.txt`, content: randomBytes(75_000).toString('base64'),
  })));
  const r = await callWorker('/build-project-snapshot', { projectId: big });
  assert.equal(r.status, 413, r.text);
  assert.equal(r.body.error, 'too_large');
  const m = r.body.message.match(
    /^snapshot archive is at least (\d+) bytes, over the project-snapshots limit of (\d+) bytes \(stopped after (\d+) of 60 files\)$/);
  assert.ok(m, r.body.message);
  const [reached, limit, done] = m.slice(1).map(Number);
  assert.equal(limit, LIMIT);
  // Measured where the archive crossed the limit (within one file), not estimated from raw bytes.
  assert.ok(reached > LIMIT && reached < LIMIT + 110_000, r.body.message);
  assert.ok(done > 0 && done < 60, r.body.message);
  assert.equal(storedSnapshots(big), 0);
});

test('413 before reading any content when the files stored as they are already exceed the limit', async () => {
  const big = (await admin('projects', { owner_id: owner.id, name: 'photos' })).body.id;
  // Registered without uploading them: reading either would fail (502), refusing first does not.
  for (const name of ['a', 'b']) {
    const reg = await rpc(info.api_url, asService(), 'register_binary_file', {
      project_uuid: big, p_file_path: `photos/${name}.jpg`, p_storage_path: `${ASSETS_BUCKET}/${big}/photos/${name}.jpg`,
      p_content_hash: sha256(Buffer.from(name)), p_size_bytes: 2 << 20,
    });
    assert.equal(reg.status, 200, JSON.stringify(reg.body));
  }
  const r = await callWorker('/build-project-snapshot', { projectId: big });
  assert.equal(r.status, 413, r.text);
  assert.match(r.body.message, new RegExp(`^snapshot archive is at least (\\d+) bytes, over the project-snapshots limit of ${LIMIT} bytes \\(counting its headers, names and the files stored as they are, before reading any content\\)$`));
  assert.ok(Number(r.body.message.match(/\d+/)[0]) > 4 << 20, r.body.message);
});

test('a bucket limit below SNAPSHOT_MAX_BYTES is a 413 that names the setting to fix', async () => {
  await upsert('src/limit.ts', 'export const limit = true;\n');
  setBucketLimit(1000);
  try {
    const r = await callWorker('/build-project-snapshot', { projectId: project });
    assert.equal(r.status, 413, r.text);
    assert.match(r.body.message, new RegExp(`^Storage refused the snapshot archive as over the project-snapshots bucket's file_size_limit, which is below this worker's SNAPSHOT_MAX_BYTES of ${LIMIT} bytes: set SNAPSHOT_MAX_BYTES to the bucket's limit`));
  } finally {
    setBucketLimit(LIMIT);
  }
  const r = await callWorker('/build-project-snapshot', { projectId: project });
  assert.equal(r.status, 200, r.text);
});

test('a request body over 16 KiB is refused without reading it all', async () => {
  const r = await callWorker('/build-project-snapshot', { projectId: project, padding: 'x'.repeat(20_000) });
  assert.equal(r.status, 400, r.text);
  assert.match(r.body.message, /^the request body is over 16384 bytes/);
});

test('one JSON log line per request, never a secret', async () => {
  // wrangler prints a line after its response: wait for the one of the last request above.
  const lines = await until('the last log line', () => {
    const all = worker.logLines();
    return all.some((l) => l.status === 400 && l.message?.startsWith('the request body is over')) && all;
  }, { timeoutMs: 10_000, proc: worker.proc });
  const builds = lines.filter((l) => l.event_type === 'snapshot.build' && l.status === 200 && l.project_id === project);
  assert.ok(builds.length >= 4);
  for (const l of builds) {
    assert.equal(typeof l.duration_ms, 'number');
    assert.ok(['reused', 'built'].includes(l.snapshot));
    assert.equal(typeof l.snapshot_bytes, 'number');
    assert.equal(typeof l.snapshot_files, 'number');
    assert.ok(l.wasm_memory_bytes > 0);
  }
  assert.ok(builds.some((l) => l.snapshot === 'built') && builds.some((l) => l.snapshot === 'reused'));
  const sessions = lines.filter((l) => l.event_type === 'session.create' && l.status === 200);
  assert.ok(sessions.length >= 1 && sessions.every((l) => l.session_id && l.project_id === project));
  assert.ok(lines.some((l) => l.event_type === 'session.refresh' && l.status === 200 && l.session_id));
  assert.ok(lines.some((l) => l.status === 401 && l.error === 'unauthorized'));
  assert.ok(lines.some((l) => l.status === 413 && l.error === 'too_large' && l.message.startsWith('snapshot archive is at least')));
  const out = worker.output();
  for (const secret of [info.service_role_key, info.jwt_secret, session.env.REALTIME_TOKEN,
    new URL(session.env.SNAPSHOT_URL).searchParams.get('token')]) {
    assert.ok(!out.includes(secret), 'a secret reached the log');
  }
});
