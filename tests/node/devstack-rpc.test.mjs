// Every fs-sync RPC through the official supabase-js against fs-sync-dev, errors included.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createConnection } from 'node:net';
import { startSystem, client, newUser } from '../harness/index.mjs';

let sys;
let info;

before(async () => {
  sys = await startSystem({ edge: false, quiet: false });
  info = sys.info;
});

after(async () => {
  const { code, signal } = await sys.close();
  assert.equal(signal, null, 'exits by itself on SIGTERM');
  assert.equal(code, 0, `clean exit:\n${sys.stack.stderr.slice(-2000)}`);
  // The PostgreSQL it started is gone too.
  const port = Number(new URL(info.db_url.replace(/^postgres(ql)?:/, 'http:')).port);
  const open = await new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
  assert.equal(open, false, 'no orphaned postgres');
});

/** Asserts a supabase-js error: code, HTTP status, and (for fs-sync errors) JSON details. */
function assertError({ error, status }, code, httpStatus) {
  assert.ok(error, `expected ${code}`);
  assert.equal(error.code, code, JSON.stringify(error));
  assert.equal(status, httpStatus);
  return error.details && error.details.startsWith('{') ? JSON.parse(error.details) : error.details;
}

test('the startup banner and ready file carry what a developer needs', () => {
  for (const k of ['api_url', 'anon_key', 'service_role_key', 'jwt_secret', 'db_url']) assert.ok(info[k], k);
  assert.ok(info.jwt_secret.length >= 40);
  assert.match(sys.stack.stdout, /API URL: http:\/\/127\.0\.0\.1:\d+/);
  assert.match(sys.stack.stdout, /anon key: ey/);
  assert.match(sys.stack.stdout, /service_role key: ey/);
  const [, payload] = info.anon_key.split('.');
  assert.equal(JSON.parse(Buffer.from(payload, 'base64url')).role, 'anon');
});

test('file RPCs: writes, reads, the change log and their errors', async () => {
  const owner = await newUser(sys, 'owner@example.test');
  const db = client(sys, owner);

  const created = await db.rpc('create_project', { p_name: 'demo' });
  assert.equal(created.error, null);
  const project = created.data;
  assert.match(project, /^[0-9a-f-]{36}$/);

  // upsert_project_file: a new version and an event; saving the same content is a no-op.
  let r = await db.rpc('upsert_project_file', { project_uuid: project, p_file_path: 'src/App.tsx', p_content: 'export default 1;\n' });
  assert.equal(r.error, null);
  assert.equal(r.status, 200);
  assert.deepEqual([r.data.version, r.data.seq, r.data.noop, r.data.file_type], [1, 1, false, 'typescript']);
  const hash1 = r.data.content_hash;
  r = await db.rpc('upsert_project_file', { project_uuid: project, p_file_path: 'src/App.tsx', p_content: 'export default 1;\n' });
  assert.deepEqual([r.data.version, r.data.seq, r.data.noop], [1, null, true]);
  r = await db.rpc('upsert_project_file', { project_uuid: project, p_file_path: 'src/App.tsx', p_content: 'export default 2;\n', expected_version: 1 });
  assert.deepEqual([r.data.version, r.data.seq], [2, 2]);

  // A conflict: PT409, HTTP 409, details JSON.
  r = await db.rpc('upsert_project_file', { project_uuid: project, p_file_path: 'src/App.tsx', p_content: 'stale', expected_version: 1 });
  const conflict = assertError(r, 'PT409', 409);
  assert.deepEqual(
    [conflict.path, conflict.expected_version, conflict.current_version],
    ['src/App.tsx', 1, 2],
  );
  assert.match(conflict.current_hash, /^[0-9a-f]{64}$/);
  assert.match(r.error.message, /version conflict/);
  // expected_version 0: must not exist yet.
  r = await db.rpc('upsert_project_file', { project_uuid: project, p_file_path: 'src/App.tsx', p_content: 'x', expected_version: 0 });
  assertError(r, 'PT409', 409);

  // Path rules: PT422 naming the rule.
  r = await db.rpc('upsert_project_file', { project_uuid: project, p_file_path: '../etc/passwd', p_content: 'x' });
  assert.equal(assertError(r, 'PT422', 422).rule, 'dot_segment');

  // Too large: PT413 with the limit.
  sys.sql(`update fsync.settings set value = '16' where key = 'limits.max_file_bytes'`);
  r = await db.rpc('upsert_project_file', { project_uuid: project, p_file_path: 'big.txt', p_content: 'x'.repeat(17) });
  const tooLarge = assertError(r, 'PT413', 413);
  assert.deepEqual([tooLarge.limit, tooLarge.actual], [16, 17]);
  sys.sql(`update fsync.settings set value = '5242880' where key = 'limits.max_file_bytes'`);

  // rename, delete (tombstone), then a delete of a missing path: PT404.
  r = await db.rpc('rename_project_file', { project_uuid: project, p_from_path: 'src/App.tsx', p_to_path: 'src/Main.tsx' });
  assert.equal(r.error, null);
  assert.deepEqual([r.data.file_path, r.data.from_path, r.data.seq], ['src/Main.tsx', 'src/App.tsx', 3]);
  r = await db.rpc('rename_project_file', { project_uuid: project, p_from_path: 'nope.ts', p_to_path: 'x.ts' });
  assertError(r, 'PT404', 404);
  r = await db.rpc('delete_project_file', { project_uuid: project, p_file_path: 'src/Main.tsx' });
  assert.deepEqual([r.data.is_deleted, r.data.seq], [true, 4]);
  r = await db.rpc('delete_project_file', { project_uuid: project, p_file_path: 'never-existed.ts' });
  assertError(r, 'PT404', 404);

  // bulk_upsert_project_files: all or nothing, one event.
  r = await db.rpc('bulk_upsert_project_files', {
    project_uuid: project,
    files: [
      { file_path: 'a.md', content: '# a\n' },
      { file_path: 'b.json', content: '{}' },
      { file_path: 'src/Main.tsx', content: 'back', expected_version: 2 },
    ],
  });
  assert.equal(r.error, null, JSON.stringify(r.error));
  assert.deepEqual([r.data.applied, r.data.seq], [3, 5]);
  r = await db.rpc('bulk_upsert_project_files', { project_uuid: project, files: [{ file_path: 'a.md', content: 'x' }, { file_path: 'a.md', content: 'y' }] });
  assert.equal(assertError(r, 'PT422', 422).rule, 'duplicate_path');

  // register_binary_file: the object lives at project-assets/<project>/<path>; any other
  // storage_path is refused (fs-sync-edge reads it with the service role).
  r = await db.rpc('register_binary_file', {
    project_uuid: project, p_file_path: 'logo.png', p_storage_path: `${project}/logo.png`,
    p_content_hash: 'a'.repeat(64), p_size_bytes: 1234,
  });
  assert.equal(assertError(r, 'PT422', 422).rule, 'storage_path');
  r = await db.rpc('register_binary_file', {
    project_uuid: project, p_file_path: 'logo.png', p_storage_path: `project-assets/${project}/logo.png`,
    p_content_hash: 'a'.repeat(64), p_size_bytes: 1234,
  });
  assert.equal(r.error, null, JSON.stringify(r.error));
  assert.deepEqual([r.data.file_type, r.data.seq], ['binary', 6]);

  // Reads.
  r = await db.rpc('list_current_files', { project_uuid: project });
  assert.deepEqual(r.data.map((f) => f.file_path), ['a.md', 'b.json', 'logo.png', 'src/Main.tsx']);
  r = await db.rpc('get_project_snapshot', { project_uuid: project });
  assert.equal(r.data.as_of_seq, 6);
  assert.equal(r.data.files.length, 4);
  r = await db.rpc('get_project_snapshot', { project_uuid: project, include_content: false });
  assert.equal(r.data.files[0].content, undefined);
  r = await db.rpc('get_project_sync_state', { project_uuid: project });
  assert.deepEqual(r.data, { project_id: project, seq: 6 });
  r = await db.rpc('list_project_events', { project_uuid: project, after_seq: 2, max_events: 10 });
  assert.deepEqual(r.data.map((e) => e.seq), [3, 4, 5, 6]);
  assert.deepEqual(r.data.map((e) => e.type), ['file:rename', 'file:delete', 'bulk:apply', 'file:update']);
  // Historical contents by (path, version). fs-sync's RPCs take the body as one json argument, so
  // they are called with POST (PostgREST passes no query string to such a function).
  r = await db.rpc('get_project_files', { project_uuid: project, paths: ['src/App.tsx', 'src/Main.tsx'], versions: [1, 3] });
  assert.equal(r.error, null, JSON.stringify(r.error));
  assert.deepEqual(r.data.map((f) => [f.file_path, f.version, f.content]), [['src/App.tsx', 1, 'export default 1;\n'], ['src/Main.tsx', 3, 'back']]);
  r = await db.rpc('get_project_files', { project_uuid: project });
  assert.equal(r.data.length, 4);
  assert.ok(hash1);

  // Argument errors are the RPC's own: 422 naming the parameter and the rule.
  r = await db.rpc('upsert_project_file', { project_uuid: project, p_path: 'x' });
  assert.deepEqual(assertError(r, 'PT422', 422), { param: 'p_path', rule: 'unknown' });
  r = await db.rpc('upsert_project_file', { project_uuid: project, p_file_path: 'nul.txt', p_content: 'a\u0000b' });
  assert.deepEqual(assertError(r, 'PT422', 422), { param: 'p_content', rule: 'nul' });
  r = await db.rpc('upsert_project_file', { project_uuid: project, p_file_path: 'n.txt', p_content: 42 });
  assert.deepEqual(assertError(r, 'PT422', 422), { param: 'p_content', rule: 'string' });
  // PostgREST's own errors through supabase-js.
  r = await db.rpc('no_such_function', { project_uuid: project });
  assertError(r, 'PGRST202', 404);
});

test('access: members, viewers, strangers, anon, the service role and rate limits', async () => {
  const owner = await newUser(sys);
  const viewer = await newUser(sys);
  const stranger = await newUser(sys);
  const asOwner = client(sys, owner);
  const project = (await asOwner.rpc('create_project', { p_name: 'shared' })).data;

  let r = await asOwner.rpc('add_project_member', { project_uuid: project, p_user_id: viewer.id, p_role: 'viewer' });
  assert.equal(r.error, null);
  assert.equal(r.status, 204);
  await asOwner.rpc('upsert_project_file', { project_uuid: project, p_file_path: 'x.txt', p_content: 'x' });

  // A viewer reads but may not write: 42501 is 403 for a signed-in caller.
  const asViewer = client(sys, viewer);
  r = await asViewer.rpc('list_current_files', { project_uuid: project });
  assert.equal(r.data.length, 1);
  r = await asViewer.rpc('upsert_project_file', { project_uuid: project, p_file_path: 'y.txt', p_content: 'y' });
  assertError(r, '42501', 403);

  // A stranger cannot even read; anon gets 401.
  r = await client(sys, stranger).rpc('get_project_sync_state', { project_uuid: project });
  assertError(r, '42501', 403);
  r = await client(sys).rpc('get_project_sync_state', { project_uuid: project });
  assertError(r, '42501', 401);

  r = await asOwner.rpc('remove_project_member', { project_uuid: project, p_user_id: viewer.id });
  assert.equal(r.data, true);
  r = await asViewer.rpc('list_current_files', { project_uuid: project });
  assertError(r, '42501', 403);

  // The service role reads any project; PT404 for one that does not exist.
  const service = createServiceClient();
  r = await service.rpc('get_project_sync_state', { project_uuid: project });
  assert.equal(r.data.seq, 1);
  r = await service.rpc('get_project_sync_state', { project_uuid: '00000000-0000-4000-8000-000000000000' });
  assertError(r, 'PT404', 404);

  // Rate limit: PT429 with retry_after_ms.
  sys.sql(`update fsync.settings set value = '1' where key = 'rate_limit.capacity';
             update fsync.settings set value = '0.01' where key = 'rate_limit.refill_per_second'`);
  try {
    r = await asOwner.rpc('upsert_project_file', { project_uuid: project, p_file_path: 'r1.txt', p_content: '1' });
    r = await asOwner.rpc('upsert_project_file', { project_uuid: project, p_file_path: 'r2.txt', p_content: '2' });
    const limited = assertError(r, 'PT429', 429);
    assert.ok(limited.retry_after_ms > 0);
  } finally {
    sys.sql(`update fsync.settings set value = '200' where key = 'rate_limit.capacity';
               update fsync.settings set value = '50' where key = 'rate_limit.refill_per_second'`);
  }

  function createServiceClient() {
    return client(sys, { access_token: info.service_role_key });
  }
});

test('feature flags', async () => {
  const user = await newUser(sys);
  const db = client(sys, user);
  const flag = 'FSYNC_KEEP_CLIENT_BROADCAST'; // seeded off on a fresh database
  let r = await db.rpc('is_feature_enabled', { flag_key: flag });
  assert.equal(r.data, false);
  r = await db.rpc('get_enabled_features');
  const before = r.data;
  assert.ok(!before.includes(flag));
  sys.sql(`update public.feature_flags set enabled = true, rollout_percentage = 100 where flag_key = '${flag}'`);
  try {
    r = await db.rpc('is_feature_enabled', { flag_key: flag });
    assert.equal(r.data, true);
    r = await db.rpc('is_feature_enabled', { flag_key: flag, user_id: user.id }, { get: true });
    assert.equal(r.data, true);
    r = await db.rpc('get_enabled_features');
    assert.deepEqual(r.data, [...before, flag].sort());
  } finally {
    sys.sql(`update public.feature_flags set enabled = false, rollout_percentage = 0 where flag_key = '${flag}'`);
  }
  r = await client(sys).rpc('get_enabled_features');
  assertError(r, '42501', 401);
});

test('admin endpoints need the service-role key', async () => {
  const r = await fetch(`${info.api_url}/admin/v1/users`, {
    method: 'POST', headers: { apikey: info.anon_key, 'content-type': 'application/json' }, body: '{}',
  });
  assert.equal(r.status, 401);
  const user = await sys.admin('users', { email: 'x@example.test' });
  assert.equal(user.email, 'x@example.test');
  const claims = JSON.parse(Buffer.from(user.access_token.split('.')[1], 'base64url'));
  assert.deepEqual([claims.sub, claims.role, claims.aud, claims.is_anonymous], [user.id, 'authenticated', 'authenticated', false]);
  assert.equal(claims.exp - claims.iat, 3600);
  assert.ok(claims.session_id);
});
