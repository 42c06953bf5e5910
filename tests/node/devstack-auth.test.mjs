// fs-sync-dev's /auth/v1 through the official supabase-js, as an app or the smoke check calls
// Supabase Auth: auth.admin.createUser and deleteUser with the service-role key,
// auth.signInWithPassword with the anon key, and the access token it returns used for PostgREST.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from '@supabase/supabase-js';
import WebSocket from 'ws';
import { startSystem, client } from '../harness/index.mjs';

let sys;
let service; // supabase-js with the service-role key, as a server-side admin client

before(async () => {
  sys = await startSystem({ edge: false });
  service = createClient(sys.info.api_url, sys.info.service_role_key, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    realtime: { transport: WebSocket },
  });
});

after(async () => {
  assert.deepEqual(await sys?.close(), { code: 0, signal: null });
});

/** Asserts a supabase-js AuthApiError: HTTP status, GoTrue's error code and message. */
function assertAuthError(error, status, code, message) {
  assert.ok(error, `expected ${code}`);
  assert.equal(error.name, 'AuthApiError', JSON.stringify(error));
  assert.equal(error.status, status, JSON.stringify(error));
  assert.equal(error.code, code, JSON.stringify(error));
  assert.match(error.message, message);
}

test('createUser, signInWithPassword, the token for PostgREST, deleteUser', async () => {
  const email = 'grace@example.test';
  const created = await service.auth.admin.createUser({
    email, password: 'a long password', email_confirm: true, user_metadata: { team: 'compilers' },
  });
  assert.equal(created.error, null);
  const { user } = created.data;
  assert.match(user.id, /^[0-9a-f-]{36}$/);
  assert.equal(user.email, email);
  assert.equal(user.user_metadata.team, 'compilers');
  assert.ok(user.email_confirmed_at);

  const signedIn = await client(sys).auth.signInWithPassword({ email, password: 'a long password' });
  assert.equal(signedIn.error, null);
  const { session } = signedIn.data;
  assert.equal(signedIn.data.user.id, user.id);
  assert.equal(session.token_type, 'bearer');
  assert.equal(session.user.id, user.id);
  assert.ok(session.expires_at > Date.now() / 1000 + 3500, `expires_at ${session.expires_at}`);

  // The session's access token is that user's for PostgREST: a project it creates is its own.
  const db = client(sys, session);
  const project = await db.rpc('create_project', { p_name: 'signed in with a password' });
  assert.equal(project.error, null);
  assert.equal(sys.sql(`select owner_id from public.projects where id = '${project.data}'`), user.id);

  const deleted = await service.auth.admin.deleteUser(user.id);
  assert.equal(deleted.error, null);
  assert.equal(sys.sql(`select count(*) from auth.users where id = '${user.id}'`), '0');
  const again = await client(sys).auth.signInWithPassword({ email, password: 'a long password' });
  assertAuthError(again.error, 400, 'invalid_credentials', /^Invalid login credentials$/);
  assert.equal(again.data.session, null);
  assertAuthError((await service.auth.admin.deleteUser(user.id)).error, 404, 'user_not_found', /User not found/);
});

test('refusals arrive as supabase-js AuthApiErrors with GoTrue\'s codes', async () => {
  const email = 'linus@example.test';
  assert.equal((await service.auth.admin.createUser({ email, password: 'right', email_confirm: true })).error, null);

  const wrong = await client(sys).auth.signInWithPassword({ email, password: 'wrong' });
  assertAuthError(wrong.error, 400, 'invalid_credentials', /^Invalid login credentials$/);
  const unknown = await client(sys).auth.signInWithPassword({ email: 'nobody@example.test', password: 'right' });
  assertAuthError(unknown.error, 400, 'invalid_credentials', /^Invalid login credentials$/);

  const dup = await service.auth.admin.createUser({ email: email.toUpperCase(), password: 'x' });
  assertAuthError(dup.error, 422, 'email_exists', /already been registered/);

  // The anon key may not use the admin API; nothing is created.
  const asAnon = await client(sys).auth.admin.createUser({ email: 'mallory@example.test', password: 'x' });
  assertAuthError(asAnon.error, 403, 'not_admin', /User not allowed/);
  assert.equal(sys.sql("select count(*) from auth.users where email = 'mallory@example.test'"), '0');

  // Not confirmed by the admin: the right password, but no session.
  assert.equal((await service.auth.admin.createUser({ email: 'new@example.test', password: 'pw' })).error, null);
  const unconfirmed = await client(sys).auth.signInWithPassword({ email: 'new@example.test', password: 'pw' });
  assertAuthError(unconfirmed.error, 400, 'email_not_confirmed', /Email not confirmed/);
});
