// @velocity/fs-sync against fs-sync-dev: every call's success and error paths, optimistic
// concurrency between two editors, no-op saves, event classification and catch-up, hashing
// agreement with the database, and the retry policy. The Wasm build (the `node` entry);
// client-native.test.mjs runs the same tests through the React Native build.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import {
  importPackage, startSystem, createProject, client as supabaseClient, newUser, subscribe, until,
} from '../harness/index.mjs';

// Which build: client-native.test.mjs sets this before importing this file.
const condition = globalThis.fsSyncTestCondition ?? 'node';
const { FsSyncClient, FsSyncError, contentHash } = await importPackage({ condition });

let sys;
let info;
let owner;
let project;

before(async () => {
  sys = await startSystem({ edge: false, quiet: false });
  info = sys.info;
  ({ id: project, owner } = await createProject(sys, {
    name: 'client tests', emails: ['owner@example.test'], hydration: false,
  }));
});

after(async () => {
  const exit = await sys?.close();
  assert.equal(exit?.code, 0, `fs-sync-dev exited with ${JSON.stringify(exit)}`);
});

/** A client plus a count of the HTTP requests it made. */
function fsClient(user, options = {}) {
  const counter = { requests: 0 };
  const fs = new FsSyncClient({
    supabaseUrl: info.api_url,
    anonKey: info.anon_key,
    projectId: options.projectId ?? project,
    ...(user ? { getAccessToken: async () => user.access_token } : {}),
    fetch: (url, init) => { counter.requests += 1; return fetch(url, init); },
    retry: { maxAttempts: 1 },
    ...options,
  });
  return { fs, counter };
}

async function rejects(promise, kind, check = () => {}) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof Error && e instanceof FsSyncError, `not an FsSyncError: ${e}`);
    assert.equal(e.kind, kind, `${e.kind}: ${e.message}`);
    check(e);
    return true;
  });
}

test('save, load, head and isDirty', async () => {
  const { fs } = fsClient(owner);
  assert.deepEqual(await fs.load(), { asOfSeq: 0, files: 0 });
  const head = await fs.save('src/App.tsx', 'export default 1;\n');
  assert.equal(head.version, 1);
  assert.equal(head.noop, false);
  assert.equal(head.fileType, 'typescript');
  assert.equal(head.contentHash, contentHash('export default 1;\n'));
  assert.equal(typeof head.seq, 'number');
  assert.deepEqual(fs.head('src/App.tsx'), { version: 1, contentHash: head.contentHash, deleted: false });
  assert.equal(fs.isDirty('src/App.tsx', 'export default 1;\n'), false);
  assert.equal(fs.isDirty('src/App.tsx', 'export default 2;\n'), true);

  const fresh = fsClient(owner).fs;
  const loaded = await fresh.load();
  assert.ok(loaded.files >= 1 && loaded.asOfSeq >= head.seq);
  assert.equal(fresh.head('src/App.tsx').version, 1);
  assert.equal(fresh.lastSeq, loaded.asOfSeq);
});

test('a no-op save sends no request', async () => {
  const { fs, counter } = fsClient(owner);
  await fs.load();
  await fs.save('src/noop.ts', 'same');
  const before = counter.requests;
  const again = await fs.save('src/noop.ts', 'same');
  assert.equal(again.noop, true);
  assert.equal(again.version, 1);
  assert.equal(counter.requests, before, 'no request for a no-op');
  await fs.save('src/noop.ts', 'changed');
  assert.equal(counter.requests, before + 1);
});

test('a reload never undoes a save that lands while it is in flight', async () => {
  let release;
  const held = new Promise((r) => { release = r; });
  let holding = false;
  let snapshotRead = false;
  const { fs, counter } = fsClient(owner, {
    fetch: async (url, init) => {
      counter.requests += 1;
      const response = await fetch(url, init);
      if (holding && url.endsWith('/get_project_snapshot')) {
        snapshotRead = true; // the server has answered: its read is done
        await held; // the answer arrives late
      }
      return response;
    },
  });
  await fs.load();
  await fs.save('reload/a.ts', 'A');
  holding = true;
  const loading = fs.load(); // reads the snapshot now (a.ts v1), answers later
  await until('the server to have read the snapshot', () => snapshotRead);
  assert.equal((await fs.save('reload/a.ts', 'B')).version, 2);
  release();
  await loading;
  assert.equal(fs.head('reload/a.ts').version, 2, 'the late snapshot did not move the head back');
  const before = counter.requests;
  const reverted = await fs.save('reload/a.ts', 'A');
  assert.equal(counter.requests, before + 1, 'reverting to older content is a real save');
  assert.equal(reverted.version, 3);
});

test('an explicit file type is never short-circuited as a no-op', async () => {
  const { fs, counter } = fsClient(owner);
  await fs.load();
  await fs.save('types/data.txt', '{}');
  const before = counter.requests;
  const head = await fs.save('types/data.txt', '{}', 'json');
  assert.equal(counter.requests, before + 1, 'the server decides');
  assert.equal(head.fileType, 'json');
  assert.equal(head.version, 2);
});

test('two editors of one file: the stale one gets a conflict with the current version', async () => {
  const a = fsClient(owner).fs;
  const b = fsClient(owner).fs;
  await a.load();
  await a.save('src/shared.ts', 'v1');
  await b.load();
  const bHead = await b.save('src/shared.ts', 'v2 by b');
  await rejects(a.save('src/shared.ts', 'v2 by a'), 'conflict', (e) => {
    assert.equal(e.status, 409);
    assert.equal(e.code, 'PT409');
    assert.equal(e.details.path, 'src/shared.ts');
    assert.equal(e.details.expected_version, 1);
    assert.equal(e.details.current_version, bHead.version);
    assert.equal(e.details.current_hash, contentHash('v2 by b'));
  });
  // The stale editor reloads and then saves on top.
  await a.load();
  assert.equal((await a.save('src/shared.ts', 'v3 by a')).version, 3);
});

test('error kinds: invalid, too_large, not_found, unauthorized', async () => {
  const { fs, counter } = fsClient(owner);
  await fs.load();
  const before = counter.requests;
  await rejects(fs.save('../escape.ts', 'x'), 'invalid', (e) => assert.equal(e.details.rule, 'dot_segment'));
  assert.equal(counter.requests, before, 'invalid paths are refused before any request');
  await rejects(fs.save('big.txt', 'x'.repeat(5 * 1024 * 1024 + 1)), 'too_large', (e) => assert.equal(e.status, 413));
  await rejects(fs.remove('never/existed.ts'), 'not_found', (e) => assert.equal(e.code, 'PT404'));
  await rejects(fsClient(null).fs.save('a.ts', 'x'), 'unauthorized', (e) => assert.equal(e.status, 401));
  const stranger = await newUser(sys, 'stranger@example.test');
  await rejects(fsClient(stranger).fs.save('a.ts', 'x'), 'unauthorized', (e) => assert.equal(e.status, 403));
  const forged = { access_token: owner.access_token.slice(0, -4) + 'AAAA' };
  await rejects(fsClient(forged).fs.load(), 'unauthorized', (e) => assert.equal(e.status, 401));
});

test('remove and rename', async () => {
  const { fs } = fsClient(owner);
  await fs.load();
  await fs.save('docs/old.md', '# hi');
  const moved = await fs.rename('docs/old.md', 'docs/new.md');
  assert.equal(moved.path, 'docs/new.md');
  assert.equal(moved.fromPath, 'docs/old.md');
  assert.equal(fs.head('docs/old.md').deleted, true);
  assert.equal(fs.head('docs/new.md').contentHash, contentHash('# hi'));
  await fs.save('docs/taken.md', 'taken');
  await rejects(fs.rename('docs/new.md', 'docs/taken.md'), 'conflict');
  const removed = await fs.remove('docs/new.md');
  assert.equal(removed.deleted, true);
  assert.equal(fs.head('docs/new.md').deleted, true);
  // Re-creating a deleted path works from the tracked tombstone version.
  assert.equal((await fs.save('docs/new.md', 'back')).version, removed.version + 1);
});

test('saveAll is one round trip, all or nothing', async () => {
  const { fs, counter } = fsClient(owner);
  await fs.load();
  await fs.save('bulk/gone.ts', 'bye');
  const before = counter.requests;
  const result = await fs.saveAll([
    { path: 'bulk/a.ts', content: 'a' },
    { path: 'bulk/b.json', content: '{}', fileType: 'json' },
    { path: 'bulk/gone.ts', delete: true },
  ]);
  assert.equal(counter.requests, before + 1);
  assert.equal(result.applied, 3);
  assert.equal(typeof result.seq, 'number');
  assert.equal(fs.head('bulk/gone.ts').deleted, true);
  assert.equal(fs.head('bulk/a.ts').version, 1);
  // Someone else creates a file this client has never seen: the bulk's expected_version 0 for it
  // makes the server refuse the whole bulk after it wrote the entries before it.
  await fsClient(owner).fs.save('bulk/theirs.ts', 'theirs');
  await rejects(fs.saveAll([{ path: 'bulk/c.ts', content: 'c' }, { path: 'bulk/theirs.ts', content: 'mine' }]), 'conflict',
    (e) => assert.equal(e.details.path, 'bulk/theirs.ts'));
  const rows = sys.sql(`select count(*) from public.project_files where project_id = '${project}' and file_path = 'bulk/c.ts'`);
  assert.equal(rows, '0', 'nothing from the refused bulk');
  assert.equal(fs.head('bulk/c.ts'), undefined);
});

test('applyEvent classifies realtime events; catchUp closes a gap', async () => {
  const watcher = fsClient(owner).fs;
  await watcher.load();
  const writer = fsClient(owner).fs;
  await writer.load();

  // Receive the server's broadcasts the way the app does: a supabase-js private channel.
  const sb = supabaseClient(sys, owner);
  await sb.realtime.setAuth(owner.access_token);
  const received = [];
  const channel = sb.channel(`project:${project}`, { config: { private: true } })
    .on('broadcast', { event: '*' }, (message) => received.push(message));
  assert.equal((await subscribe(channel)).status, 'SUBSCRIBED');

  const start = watcher.lastSeq;
  await writer.save('events/one.ts', '1');
  await writer.save('events/two.ts', '2');
  await writer.save('events/three.ts', '3');
  await until('three broadcasts', () => received.filter((m) => m.payload.seq > start).length >= 3);
  const [first, second, third] = received.filter((m) => m.payload.seq > start).sort((x, y) => x.payload.seq - y.payload.seq);

  const applied = watcher.applyEvent(first);
  assert.equal(applied.kind, 'applied');
  assert.deepEqual(applied.changedPaths, ['events/one.ts']);
  assert.equal(watcher.applyEvent(first).kind, 'duplicate');
  const gap = watcher.applyEvent(third);
  assert.equal(gap.kind, 'gap');
  assert.equal(gap.from, second.payload.seq);
  assert.equal(gap.to, second.payload.seq);
  assert.equal(applied.syncNeeded, false);
  assert.equal(gap.syncNeeded, true, 'the follower wants the gap read from the log');
  assert.equal(watcher.nextSyncInMs, 0);
  assert.equal(watcher.head('events/three.ts'), undefined, 'nothing applied past a gap');

  const caught = await watcher.catchUp();
  assert.equal(caught.lastSeq, third.payload.seq);
  assert.ok(caught.changedPaths.includes('events/two.ts') && caught.changedPaths.includes('events/three.ts'));
  assert.equal(watcher.head('events/three.ts').contentHash, contentHash('3'));
  assert.equal(watcher.applyEvent(second).kind, 'duplicate');
  // Caught up: the next position check is the follower's idle cadence away, not now.
  assert.ok(watcher.nextSyncInMs > 0 && watcher.nextSyncInMs <= 15_000, `${watcher.nextSyncInMs}`);
  await assert.rejects(async () => watcher.applyEvent({ v: 1, seq: 1e6, type: 'file:explode' }), (e) => e.kind === 'invalid');
  await sb.removeAllChannels();
});

test('contentHash equals the database hash', async () => {
  const { fs } = fsClient(owner);
  await fs.load();
  const cases = { 'hash/ascii.txt': 'hello', 'hash/multi.txt': 'héllo wörld ✓ 🚀 日本語', 'hash/empty.txt': '', 'hash/five.txt': 'ü'.repeat(5 * 1024 * 1024 / 2) };
  for (const [path, content] of Object.entries(cases)) {
    const head = await fs.save(path, content);
    const stored = sys.sql(`select content_hash from public.project_files where project_id = '${project}' and file_path = '${path}' and is_current_version`);
    assert.equal(contentHash(content), stored, path);
    assert.equal(head.contentHash, stored, path);
  }
});

test('feature flags for the signed-in user', async () => {
  const { fs } = fsClient(owner);
  // A fresh database seeds FSYNC_KEEP_CLIENT_BROADCAST off; targeting turns it on for one user.
  assert.equal(await fs.isFeatureEnabled('FSYNC_KEEP_CLIENT_BROADCAST'), false);
  const before = await fs.enabledFeatures();
  sys.sql(`update public.feature_flags set enabled = true, target_user_ids = array['${owner.id}']::uuid[] where flag_key = 'FSYNC_KEEP_CLIENT_BROADCAST'`);
  try {
    assert.equal(await fs.isFeatureEnabled('FSYNC_KEEP_CLIENT_BROADCAST'), true);
    assert.deepEqual(await fs.enabledFeatures(), [...before, 'FSYNC_KEEP_CLIENT_BROADCAST'].sort());
  } finally {
    sys.sql("update public.feature_flags set enabled = false, target_user_ids = '{}' where flag_key = 'FSYNC_KEEP_CLIENT_BROADCAST'");
  }
});

test('rate limits: the client waits retry_after_ms and then succeeds', async () => {
  const { id: own, owner: user } = await createProject(sys, { name: 'limited', emails: ['limited@example.test'] });
  sys.sql("update fsync.settings set value = '2' where key = 'rate_limit.capacity'; update fsync.settings set value = '2' where key = 'rate_limit.refill_per_second'");
  try {
    const strict = fsClient(user, { projectId: own }).fs;
    await strict.save('a.ts', '1');
    await strict.save('a.ts', '2');
    await rejects(strict.save('a.ts', '3'), 'rate_limited', (e) => {
      assert.equal(e.status, 429);
      assert.ok(e.details.retry_after_ms > 0);
    });
    const { fs, counter } = fsClient(user, { projectId: own, retry: { maxAttempts: 4, baseDelayMs: 1, maxDelayMs: 2000 } });
    await fs.load();
    await fs.save('b.ts', '1');
    const t0 = performance.now();
    const before = counter.requests;
    await fs.save('b.ts', '2'); // bucket empty now: 429, wait, retry
    await fs.save('b.ts', '3');
    assert.ok(counter.requests > before + 2, 'a 429 was retried');
    assert.ok(performance.now() - t0 >= 400, 'waited for the bucket to refill');
  } finally {
    sys.sql("update fsync.settings set value = '200' where key = 'rate_limit.capacity'; update fsync.settings set value = '50' where key = 'rate_limit.refill_per_second'");
  }
});

test('retries stop at the bound for 5xx and network errors, and never retry 4xx', async () => {
  let hits = 0;
  let status = 503;
  const server = createServer((req, res) => {
    hits += 1;
    res.statusCode = status;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ code: status === 503 ? 'PGRST001' : 'PT422', message: 'nope', details: null, hint: null }));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}`;
  const fs = new FsSyncClient({ supabaseUrl: url, anonKey: 'k', projectId: 'p', accessToken: 't', retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 50 } });
  await rejects(fs.save('a.ts', 'x'), 'server', (e) => assert.equal(e.status, 503));
  assert.equal(hits, 3, 'exactly maxAttempts requests');
  hits = 0;
  status = 422;
  await rejects(fs.save('a.ts', 'y'), 'invalid');
  assert.equal(hits, 1, '4xx is not retried');
  server.close();
  const dead = new FsSyncClient({ supabaseUrl: url, anonKey: 'k', projectId: 'p', accessToken: 't', retry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 20 } });
  await rejects(dead.save('a.ts', 'z'), 'network');
});
