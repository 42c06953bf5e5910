// Realtime through the official supabase-js against fs-sync-dev: private project channels get the
// server-authored events of writes made by another client, with the library's default protocol
// (vsn 2.0.0, binary broadcast frames) and with vsn 1.0.0; a non-member's join is refused;
// setAuth with a fresh token keeps a channel alive past the old token's expiry.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSystem, createProject, newUser, client, until, subscribe } from '../harness/index.mjs';

let sys;
let owner;
let editor;
let project;
const clients = [];

before(async () => {
  sys = await startSystem({ edge: false, quiet: false });
  ({ id: project, owner, editors: [editor] } = await createProject(sys, { name: 'realtime', editors: 1 }));
});

after(async () => {
  for (const c of clients) {
    await c.removeAllChannels();
    c.realtime.disconnect();
  }
  const { code, signal } = await sys.close();
  assert.deepEqual({ code, signal }, { code: 0, signal: null }, sys.stack.stderr.slice(-2000));
});

function track(c) {
  clients.push(c);
  return c;
}

/** A subscribed private channel on project:<id> collecting broadcast events. */
async function listen(c, token) {
  await c.realtime.setAuth(token);
  const events = [];
  const channel = c.channel(`project:${project}`, { config: { private: true } })
    .on('broadcast', { event: '*' }, (msg) => events.push(msg));
  const { status, err } = await subscribe(channel);
  return { channel, events, status, err };
}

async function write(path, content) {
  const r = await track(client(sys, editor)).rpc('upsert_project_file', {
    project_uuid: project, p_file_path: path, p_content: content,
  });
  assert.equal(r.error, null, JSON.stringify(r.error));
  return r.data;
}

test('private channel receives broadcasts of writes by another client (default vsn 2.0.0)', async () => {
  const c = track(client(sys, owner));
  assert.equal(c.realtime.vsn, '2.0.0', 'the library default is 2.0.0');
  const { channel, events, status, err } = await listen(c, owner.access_token);
  assert.equal(status, 'SUBSCRIBED', String(err));

  const saved = await write('src/hello.ts', 'export const hello = 1;\n');
  await until('the broadcast', () => events.length >= 1);
  const msg = events[0];
  assert.equal(msg.type, 'broadcast');
  assert.equal(msg.event, 'file:update');
  assert.equal(msg.payload.seq, saved.seq);
  assert.equal(msg.payload.project_id, project);
  assert.equal(msg.payload.file_path, 'src/hello.ts');
  assert.equal(msg.payload.content, 'export const hello = 1;\n');
  assert.equal(msg.payload.v, 1);
  assert.match(msg.meta.id, /^[0-9a-f-]{36}$/);
  await c.removeChannel(channel);
});

test('the same with vsn 1.0.0 (JSON broadcast events)', async () => {
  const c = track(client(sys, owner, { vsn: '1.0.0' }));
  assert.equal(c.realtime.vsn, '1.0.0');
  const { channel, events, status } = await listen(c, owner.access_token);
  assert.equal(status, 'SUBSCRIBED');
  const first = await write('v1/a.txt', 'a');
  const second = await write('v1/b.txt', 'b');
  await until('two broadcasts', () => events.length >= 2);
  assert.deepEqual(events.map((e) => e.payload.seq), [first.seq, second.seq]);
  assert.deepEqual(events.map((e) => e.event), ['file:update', 'file:update']);
  assert.ok(events[0].meta.id);
  await c.removeChannel(channel);
});

test("a non-member's join is refused", async () => {
  const stranger = await newUser(sys);
  const c = track(client(sys, stranger));
  const { channel, status, err } = await listen(c, stranger.access_token);
  assert.equal(status, 'CHANNEL_ERROR');
  assert.match(String(err?.message ?? err), /Unauthorized: You do not have permissions to read from this Channel topic: project:/);
  await c.removeChannel(channel);

  // Anonymous (the anon key as token) is refused as well.
  const anon = track(client(sys));
  const ch = anon.channel(`project:${project}`, { config: { private: true } });
  const res = await subscribe(ch);
  assert.equal(res.status, 'CHANNEL_ERROR');
  await anon.removeChannel(ch);
});

test('setAuth with a fresh token keeps the channel working past the old expiry', async () => {
  const short = await sys.admin('token', { user_id: owner.id, expires_in: 3 });
  const session = { access_token: short.access_token };
  const c = track(client(sys, session));
  const { channel, events, status } = await listen(c, short.access_token);
  assert.equal(status, 'SUBSCRIBED');
  const closed = [];
  channel.on('system', {}, (m) => closed.push(m));
  // A control: the same token on another socket, never refreshed. The server closes every channel
  // holding a token at the same moment, so the control's expiry notice shows it has passed.
  const control = await listen(track(client(sys, { access_token: short.access_token })), short.access_token);
  assert.equal(control.status, 'SUBSCRIBED');
  const controlSystem = [];
  control.channel.on('system', {}, (m) => controlSystem.push(m));

  const fresh = await sys.admin('token', { user_id: owner.id, expires_in: 3600 });
  session.access_token = fresh.access_token;
  await c.realtime.setAuth(fresh.access_token);
  await until('the first token to expire (the control channel is closed)',
    () => controlSystem.some((m) => m.status === 'error'), { timeoutMs: 8000 });
  assert.match(controlSystem.find((m) => m.status === 'error').message, /Token has expired/);

  const saved = await write('after-refresh.txt', 'still here');
  await until('the broadcast after refresh', () => events.some((e) => e.payload.seq === saved.seq));
  assert.equal(channel.state, 'joined');
  assert.deepEqual(closed.filter((m) => m.status === 'error'), []);
  await c.removeChannel(channel);
});

test('without a refresh the channel is closed when its token expires', async () => {
  const short = await sys.admin('token', { user_id: owner.id, expires_in: 2 });
  const c = track(client(sys, { access_token: short.access_token }));
  const { channel, status } = await listen(c, short.access_token);
  assert.equal(status, 'SUBSCRIBED');
  const system = [];
  channel.on('system', {}, (m) => system.push(m));
  await until('the expiry notice', () => system.some((m) => m.status === 'error'), { timeoutMs: 8000 });
  assert.match(system.find((m) => m.status === 'error').message, /Token has expired/);
  await until('the channel to close', () => channel.state !== 'joined', { timeoutMs: 5000 });
  await c.removeChannel(channel);
});
