// End to end, container sessions with a lifecycle (docs/contracts.md "Sessions"): fs-sync-dev and
// the edge worker under `wrangler dev`. A session that was revoked (DELETE /sessions/<id>), that
// reached its maximum age, or whose project was deleted: the next read RPC, the next Storage read
// and the next refresh are refused, each naming why. And the realtime window Supabase Realtime
// leaves (authorization is checked at join and at an access-token refresh only): a joined channel
// keeps receiving after its member is removed or its session revoked, until it re-joins or
// refreshes its token.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt, SignJWT } from 'jose';
import {
  startSystem, createProject, rpc, postJson, call, client, subscribe, until, iconPng,
} from '../harness/index.mjs';

let sys;

before(async () => {
  sys = await startSystem();
});

after(async () => {
  const exit = await sys?.close();
  assert.deepEqual(exit, { code: 0, signal: null }, 'fs-sync-dev exits cleanly');
});

const service = () => ({ authorization: `Bearer ${sys.info.service_role_key}` });

/** A project with one text file and one binary in Storage: {project, asset} (asset: its storage path). */
async function projectWithAsset(name) {
  const project = await createProject(sys, {
    name,
    app: {
      files: [{ path: 'src/App.tsx', content: 'export default 1;\n' }],
      binary: { path: 'assets/icon.png', bytes: iconPng(), contentType: 'image/png' },
    },
  });
  const rows = await call(sys, null, 'list_current_files', { project_uuid: project.id });
  return { project, asset: rows.find((r) => r.storage_path).storage_path };
}

/** POST /sessions as the orchestrator; resolves the whole answer. */
async function openSession(projectId, extra = {}) {
  const r = await postJson(`${sys.worker.url}/sessions`, { projectId, ...extra }, service());
  assert.equal(r.status, 200, r.text);
  return r.body;
}

/** What a container holding `token` gets from each of the three: an RPC, a Storage read, a refresh. */
async function probe(projectId, asset, token) {
  const as = { apikey: sys.info.anon_key, token };
  const [rpcAnswer, storage, refresh] = await Promise.all([
    rpc(sys.info.api_url, as, 'get_project_sync_state', { project_uuid: projectId }),
    fetch(`${sys.info.api_url}/storage/v1/object/${asset}`, {
      headers: { apikey: sys.info.anon_key, authorization: `Bearer ${token}` },
    }).then(async (r) => ({ status: r.status, body: r.status === 200 ? null : await r.json() })),
    postJson(`${sys.worker.url}/sessions/refresh`, undefined, { authorization: `Bearer ${token}` }),
  ]);
  return { rpc: rpcAnswer, storage, refresh };
}

/** Storage answers a read its policy hides as a missing object (it cannot say more). */
function assertStorageRefused(storage, what) {
  assert.notEqual(storage.status, 200, `${what}: the Storage read was served`);
  assert.equal(storage.body.error, 'NoSuchKey', `${what}: ${JSON.stringify(storage.body)}`);
}

/** A container token for `session` signed with the project's secret, valid for `ttl` seconds. */
function longToken(session, ttl) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({
    role: 'fsync_container', sub: session.sessionId, session_id: session.sessionId,
    project_id: session.projectId, scope: 'fsync:read',
  }).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setIssuedAt(now).setExpirationTime(now + ttl)
    .sign(new TextEncoder().encode(sys.info.jwt_secret));
}

test('a live session reads, refreshes within its maximum age, and gets a fresh snapshot for itself', async () => {
  const { project, asset } = await projectWithAsset('live');
  const session = await openSession(project.id, { maxAgeSeconds: 600 });
  const claims = decodeJwt(session.env.REALTIME_TOKEN);
  const sessionEnd = Date.parse(session.sessionExpiresAt) / 1000;
  assert.ok(sessionEnd - claims.iat <= 600 && sessionEnd - claims.iat >= 599, session.sessionExpiresAt);

  const live = await probe(project.id, asset, session.env.REALTIME_TOKEN);
  assert.equal(live.rpc.status, 200, JSON.stringify(live.rpc.body));
  assert.equal(live.storage.status, 200, JSON.stringify(live.storage.body));
  assert.equal(live.refresh.status, 200, live.refresh.text);
  assert.ok(decodeJwt(live.refresh.body.token).exp <= sessionEnd, 'the refreshed token ends with the session at the latest');

  // Re-hydrating in place: a snapshot of the current state, recorded on the session.
  await call(sys, project.owner, 'upsert_project_file',
    { project_uuid: project.id, p_file_path: 'src/new.ts', p_content: 'export const n = 2;\n' });
  const snap = await postJson(`${sys.worker.url}/sessions/snapshot`, undefined,
    { authorization: `Bearer ${session.env.REALTIME_TOKEN}` });
  assert.equal(snap.status, 200, snap.text);
  assert.deepEqual(Object.keys(snap.body), ['snapshot']);
  assert.deepEqual(Object.keys(snap.body.snapshot).sort(), Object.keys(session.snapshot).sort());
  assert.equal(snap.body.snapshot.asOfSeq, session.snapshot.asOfSeq + 1);
  assert.equal(snap.body.snapshot.fileCount, session.snapshot.fileCount + 1);
  assert.equal((await fetch(snap.body.snapshot.signedUrl)).status, 200);
  assert.equal(sys.sql(`select snapshot_id || ' ' || as_of_seq from fsync.sessions where session_id = '${session.sessionId}'`),
    `${snap.body.snapshot.snapshotId} ${snap.body.snapshot.asOfSeq}`, 'the session records the snapshot it uses');

  const tooOld = await postJson(`${sys.worker.url}/sessions`, { projectId: project.id, maxAgeSeconds: 43_201 }, service());
  assert.equal(tooOld.status, 400, tooOld.text);
  assert.match(tooOld.body.message, /maxAgeSeconds must be 1 to 43200 \(this worker's SESSION_MAX_AGE\)/);
});

test('revoked: DELETE /sessions/<id> refuses the next RPC, Storage read, refresh and snapshot', async () => {
  const { project, asset } = await projectWithAsset('revoked');
  const session = await openSession(project.id);
  const token = session.env.REALTIME_TOKEN;
  assert.equal((await probe(project.id, asset, token)).rpc.status, 200);

  const del = (id) => fetch(`${sys.worker.url}/sessions/${encodeURIComponent(id)}`, { method: 'DELETE', headers: service() });
  const asContainer = await fetch(`${sys.worker.url}/sessions/${session.sessionId}`,
    { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
  assert.equal(asContainer.status, 401, 'a container cannot end sessions');
  assert.equal((await del(session.sessionId)).status, 204);
  assert.equal((await del(session.sessionId)).status, 204, 'ending it again: still 204 (idempotent)');
  const unknown = await del('never-opened');
  assert.equal(unknown.status, 404);
  assert.match((await unknown.json()).message, /container session never-opened not found/);

  const after = await probe(project.id, asset, token);
  assert.equal(after.rpc.status, 403, JSON.stringify(after.rpc.body));
  assert.equal(after.rpc.body.code, '42501');
  assert.match(after.rpc.body.message, new RegExp(`container session ${session.sessionId} was ended at \\S+ \\(revoked\\)`));
  assertStorageRefused(after.storage, 'revoked');
  assert.equal(after.refresh.status, 401, after.refresh.text);
  assert.equal(after.refresh.body.error, 'session_ended');
  assert.match(after.refresh.body.message, new RegExp(`session ${session.sessionId} was ended at .* \\(revoked\\)`));
  const snap = await postJson(`${sys.worker.url}/sessions/snapshot`, undefined, { authorization: `Bearer ${token}` });
  assert.equal(snap.status, 401, snap.text);
  assert.equal(snap.body.error, 'session_ended');

  const reopen = await postJson(`${sys.worker.url}/sessions`, { projectId: project.id, sessionId: session.sessionId }, service());
  assert.equal(reopen.status, 422, `a revoked session id is never reopened: ${reopen.text}`);
  assert.match(reopen.body.message, /already used \(ended\)/);
});

test('expired: a session past its maximum age refuses the next RPC, Storage read and refresh', async () => {
  const { project, asset } = await projectWithAsset('expired');
  const session = await openSession(project.id, { maxAgeSeconds: 3 });
  const token = session.env.REALTIME_TOKEN;
  const claims = decodeJwt(token);
  assert.ok(claims.exp <= Date.parse(session.sessionExpiresAt) / 1000 && claims.exp - claims.iat <= 3,
    'the edge mints no token that outlives the session');
  // A token that does outlive it (minted before sessions existed, or leaked with a long exp):
  // the session, not the token's exp, is what the database and the edge go by.
  const long = await longToken(session, 3600);
  const fresh = await probe(project.id, asset, long);
  assert.equal(fresh.rpc.status, 200, JSON.stringify(fresh.rpc.body));
  assert.equal(fresh.storage.status, 200);

  const expired = await until('the session to reach its maximum age', async () => {
    const p = await probe(project.id, asset, long);
    return p.rpc.status !== 200 && p;
  }, { timeoutMs: 15_000, intervalMs: 200 });
  assert.equal(expired.rpc.status, 403, JSON.stringify(expired.rpc.body));
  assert.match(expired.rpc.body.message,
    new RegExp(`container session ${session.sessionId} expired at \\S+ \\(its maximum age\\)`));
  assertStorageRefused(expired.storage, 'expired');
  assert.equal(expired.refresh.status, 401, expired.refresh.text);
  assert.equal(expired.refresh.body.error, 'session_expired');
  assert.match(expired.refresh.body.message, new RegExp(`session ${session.sessionId} expired at`));

  // And the token the edge handed out expired with the session (PostgREST still takes it for its
  // 30 s of clock skew, and the session refuses it; after that, PostgREST does).
  const own = await probe(project.id, asset, token);
  assert.ok(own.rpc.status === 401 || own.rpc.status === 403, JSON.stringify(own.rpc.body));
  assert.match(own.rpc.body.message, /JWT expired|expired at \S+ \(its maximum age\)/);
  assert.notEqual(own.storage.status, 200);
  assert.equal(own.refresh.status, 401);
  assert.match(own.refresh.body.message, /the token has expired|expired at \S+ \(its maximum age\)/);
});

test('deleted project: its sessions go with it; the next RPC, Storage read and refresh are refused', async () => {
  const { project, asset } = await projectWithAsset('deleted');
  const session = await openSession(project.id);
  const token = session.env.REALTIME_TOKEN;
  assert.equal((await probe(project.id, asset, token)).storage.status, 200);

  sys.sql(`delete from public.projects where id = '${project.id}'`);
  assert.equal(sys.sql(`select count(*) from fsync.sessions where session_id = '${session.sessionId}'`), '0');
  const after = await probe(project.id, asset, token);
  assert.equal(after.rpc.status, 404, JSON.stringify(after.rpc.body));
  assert.match(after.rpc.body.message, new RegExp(`project ${project.id} not found`));
  assertStorageRefused(after.storage, 'deleted project (its Storage objects are still there)');
  assert.equal(after.refresh.status, 404, after.refresh.text);
  assert.equal(after.refresh.body.error, 'project_not_found');
  assert.match(after.refresh.body.message, new RegExp(`project ${project.id} of session ${session.sessionId} no longer exists`));
});

/** A private channel on project:<id> for `c`, recording what arrives: {ch, status, got: paths}. */
async function join(c, projectId) {
  const got = [];
  const ch = c.channel(`project:${projectId}`, { config: { private: true } });
  ch.on('broadcast', { event: 'file:update' }, (m) => got.push(m.payload.file_path));
  const { status } = await subscribe(ch);
  return { ch, status, got };
}

test('realtime window: a removed member keeps receiving on a joined channel until it re-joins or refreshes its token', async () => {
  const project = await createProject(sys, { name: 'window', editors: 2 });
  const [owner, stays, refreshes] = project.users;
  const write = (path) => call(sys, owner, 'upsert_project_file',
    { project_uuid: project.id, p_file_path: path, p_content: `// ${path}\n` });
  // `refreshes` reads its token through this object on every request, as supabase-js does.
  const refreshAuth = { access_token: refreshes.access_token };
  const watcher = client(sys, owner);
  const c1 = client(sys, stays);
  const c2 = client(sys, refreshAuth);
  try {
    // The join carries the token supabase-js has by then: fetch it first (as the app does).
    for (const c of [watcher, c1, c2]) await c.realtime.setAuth();
    const w = await join(watcher, project.id);
    const a = await join(c1, project.id);
    const b = await join(c2, project.id);
    assert.deepEqual([w.status, a.status, b.status], ['SUBSCRIBED', 'SUBSCRIBED', 'SUBSCRIBED']);

    await call(sys, owner, 'remove_project_member', { project_uuid: project.id, p_user_id: stays.id });
    await call(sys, owner, 'remove_project_member', { project_uuid: project.id, p_user_id: refreshes.id });
    await write('after-removal.ts');
    await until('both removed members to receive the write made after their removal',
      () => a.got.includes('after-removal.ts') && b.got.includes('after-removal.ts'));

    // An access-token refresh re-runs the join check: the channel is closed.
    refreshAuth.access_token = (await sys.admin('token', { user_id: refreshes.id, expires_in: 3600 })).access_token;
    await c2.realtime.setAuth();
    await until('the refreshed channel to be closed', () => ['errored', 'closed'].includes(b.ch.state));

    // A re-join runs it too: refused.
    await c1.removeChannel(a.ch);
    const again = await join(c1, project.id);
    assert.equal(again.status, 'CHANNEL_ERROR', 'the removed member may not join again');

    await write('after-rejoin.ts');
    await until('the owner to receive the next write', () => w.got.includes('after-rejoin.ts'));
    assert.ok(!b.got.includes('after-rejoin.ts'), 'nothing after the token refresh');
    assert.ok(!again.got.includes('after-rejoin.ts'), 'nothing on the refused re-join');
    assert.ok(!a.got.includes('after-rejoin.ts'), 'nor on the channel it left');
  } finally {
    for (const c of [watcher, c1, c2]) {
      await c.removeAllChannels();
      c.realtime.disconnect();
    }
  }
});

test('realtime window: a revoked container keeps its joined channel until it re-joins', async () => {
  const project = await createProject(sys, { name: 'container-window' });
  const session = await openSession(project.id);
  const write = (path) => call(sys, project.owner, 'upsert_project_file',
    { project_uuid: project.id, p_file_path: path, p_content: `// ${path}\n` });
  const c = client(sys);
  await c.realtime.setAuth(session.env.REALTIME_TOKEN);
  try {
    const joined = await join(c, project.id);
    assert.equal(joined.status, 'SUBSCRIBED');
    const del = await fetch(`${sys.worker.url}/sessions/${session.sessionId}`, { method: 'DELETE', headers: service() });
    assert.equal(del.status, 204);
    await write('after-revoke.ts');
    await until('the revoked container to receive the write made after revocation',
      () => joined.got.includes('after-revoke.ts'));

    await c.removeChannel(joined.ch);
    const again = await join(c, project.id);
    assert.equal(again.status, 'CHANNEL_ERROR', 'a revoked container may not join again');
  } finally {
    await c.removeAllChannels();
    c.realtime.disconnect();
  }
});
