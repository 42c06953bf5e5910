// The orchestrator module (orchestrator/, TypeScript, compiled here with the repository's tsc in
// strict mode) against the real edge under `wrangler dev` and fs-sync-dev: createSession hands back
// exactly the edge's container env, a container started with it hydrates; FSYNC_SNAPSHOT_HYDRATION
// off gives the legacy fallback; endSession ends the session (idempotent) and the token stops
// refreshing; every refusal is an EdgeError naming the request, the status and the edge's message.
// Plus a static check of the preview image (docker/preview/Dockerfile), which is not built here.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  startSystem, createProject, startAgent, waitInSync, postJson, freePort, root,
} from '../harness/index.mjs';

const FLAG = 'FSYNC_SNAPSHOT_HYDRATION';
const tmp = mkdtempSync(join(tmpdir(), 'fs-sync-orchestrator-'));
const agents = [];
let orc; // the compiled module
let sys;
let project;
let opts; // {edgeUrl, serviceKey}

before(async () => {
  // Compiling is the type check too: strict, exactOptionalPropertyTypes, DOM lib only (no Node types).
  const tsc = join(root, 'node_modules/typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', join(root, 'orchestrator'), '--noEmit', 'false', '--outDir', join(tmp, 'dist')],
    { stdio: 'inherit' });
  orc = await import(pathToFileURL(join(tmp, 'dist/index.js')).href);
  sys = await startSystem();
  project = await createProject(sys, {
    name: 'orchestrated',
    app: { files: [{ path: 'package.json', content: '{"name":"app"}\n' }, { path: 'src/App.tsx', content: 'export default 1;\n' }] },
  });
  opts = { edgeUrl: sys.worker.url, serviceKey: sys.info.service_role_key };
});

after(async () => {
  for (const a of agents) await a.stop();
  const exit = await sys?.close();
  rmSync(tmp, { recursive: true, force: true });
  assert.deepEqual(exit, { code: 0, signal: null }, 'fs-sync-dev exits cleanly');
});

/** `fetch` that keeps the raw answers, to compare what the module returns with what the edge sent. */
function recordingFetch() {
  const seen = [];
  const f = async (url, init) => {
    const res = await fetch(url, init);
    const text = await res.text();
    seen.push({ url, method: init.method, status: res.status, text });
    return { status: res.status, text: async () => text };
  };
  return { fetch: f, seen };
}

const refresh = (token) => postJson(`${sys.worker.url}/sessions/refresh`, undefined, { authorization: `Bearer ${token}` });

test('createSession returns exactly the edge env; a container started with it hydrates; endSession ends it', async () => {
  const rec = recordingFetch();
  const s = await orc.createSession({ ...opts, projectId: project.id, sessionId: 'orc-test-1', fetch: rec.fetch });
  assert.equal(s.mode, 'snapshot');
  assert.equal(s.sessionId, 'orc-test-1');
  assert.equal(s.projectId, project.id);
  const [answer] = rec.seen;
  assert.equal(answer.method, 'POST');
  assert.equal(answer.url, `${sys.worker.url}/sessions`);
  assert.deepEqual(s.env, JSON.parse(answer.text).env, 'the env is the edge\'s, unchanged');
  assert.deepEqual(Object.keys(s.env).sort(), [...orc.CONTAINER_ENV_KEYS].sort(), 'the nine variables, nothing else');
  assert.ok(Object.isFrozen(s.env));

  // The container: fs-sync-hydrate with exactly this env (the harness adds PATH only).
  const target = join(tmp, 'c1', 'project');
  const agent = await startAgent(s.env, { target });
  agents.push(agent);
  await agent.waitReady();
  const { diff } = await waitInSync(sys, project.id, agent, target);
  assert.deepEqual(diff, { missing: [], extra: [], differ: [], equal: true });

  assert.equal((await refresh(s.env.REALTIME_TOKEN)).status, 200, 'the live session refreshes');
  await orc.endSession({ ...opts, sessionId: s.sessionId, reason: 'container_stopped' });
  const refused = await refresh(s.env.REALTIME_TOKEN);
  assert.equal(refused.status, 401, refused.text);
  assert.equal(refused.body.error, 'session_ended');
  assert.equal(sys.sql(`select ended_reason from fsync.sessions where session_id = 'orc-test-1'`), 'container_stopped');
  // Idempotent: the orchestrator may call it again (a retried stop hook).
  await orc.endSession({ ...opts, sessionId: s.sessionId });
  await agent.stop();
});

test('maxAgeSeconds reaches the edge: the session expires that long after it was created', async () => {
  const s = await orc.createSession({ ...opts, projectId: project.id, sessionId: 'orc-test-age', maxAgeSeconds: 90 });
  assert.equal(s.mode, 'snapshot');
  const age = Number(sys.sql(`select extract(epoch from expires_at - created_at) from fsync.sessions where session_id = 'orc-test-age'`));
  assert.ok(Math.abs(age - 90) <= 1, `expires_at - created_at = ${age} s`);
  await orc.endSession({ ...opts, sessionId: s.sessionId });
});

test('409 (FSYNC_SNAPSHOT_HYDRATION off for the owner) gives the legacy fallback, and no session', async () => {
  const rec = recordingFetch();
  sys.sql(`update public.feature_flags set target_user_ids = array_remove(target_user_ids, '${project.owner.id}'::uuid)
           where flag_key = '${FLAG}'`);
  try {
    const s = await orc.createSession({ ...opts, projectId: project.id, sessionId: 'orc-test-legacy', fetch: rec.fetch });
    assert.equal(rec.seen[0].status, 409);
    assert.equal(s.mode, 'legacy');
    assert.match(s.reason, /FSYNC_SNAPSHOT_HYDRATION is off/);
    assert.equal(sys.sql(`select count(*) from fsync.sessions where session_id = 'orc-test-legacy'`), '0');
  } finally {
    sys.sql(`update public.feature_flags set target_user_ids = array_append(target_user_ids, '${project.owner.id}'::uuid)
             where flag_key = '${FLAG}'`);
  }
  assert.equal((await orc.createSession({ ...opts, projectId: project.id })).mode, 'snapshot', 'back on: a session again');
});

test('refusals are EdgeErrors naming the request, the status, the edge\'s code and message', async () => {
  const reject = async (promise, check) => {
    const e = await promise.then(() => assert.fail('expected a rejection'), (err) => err);
    assert.ok(e instanceof orc.EdgeError, `${e}`);
    check(e);
    return e;
  };
  const wrongKey = await reject(orc.createSession({ ...opts, serviceKey: sys.info.anon_key, projectId: project.id }), (e) => {
    assert.equal(e.status, 401);
    assert.equal(e.code, 'unauthorized');
  });
  assert.match(wrongKey.message, new RegExp(`^POST ${sys.worker.url}/sessions: HTTP 401 unauthorized: .+`));

  await reject(orc.createSession({ ...opts, projectId: '00000000-0000-4000-8000-000000000000' }), (e) => {
    assert.equal(e.status, 404);
    assert.match(e.edgeMessage, /not found/);
  });
  await reject(orc.endSession({ ...opts, sessionId: 'never-created' }), (e) => {
    assert.equal(e.status, 404);
    assert.match(e.message, /^DELETE .*\/sessions\/never-created: HTTP 404/);
  });
  await reject(orc.endSession({ ...opts, serviceKey: 'not-a-key', sessionId: 'orc-test-1' }), (e) => assert.equal(e.status, 401));

  const port = await freePort();
  const down = await reject(orc.createSession({ ...opts, edgeUrl: `http://127.0.0.1:${port}`, projectId: project.id }), (e) => {
    assert.equal(e.status, null);
  });
  assert.match(down.message, /could not be reached.*ECONNREFUSED|could not be reached/);

  // A proxy's page instead of the edge: the status and a clipped quote of the body.
  const html = async () => ({ status: 502, text: async () => '<html><body>Bad gateway</body></html>' });
  await reject(orc.createSession({ ...opts, projectId: project.id, fetch: html }), (e) => {
    assert.equal(e.status, 502);
    assert.equal(e.code, null);
    assert.match(e.edgeMessage, /unexpected answer: <html><body>Bad gateway/);
  });
  // A 200 without the nine variables is not a session; what it did carry (a token) is not quoted.
  const partial = async () => ({ status: 200, text: async () => JSON.stringify({ env: { PROJECT_ID: project.id, REALTIME_TOKEN: 'tok-secret' } }) });
  await reject(orc.createSession({ ...opts, projectId: project.id, fetch: partial }), (e) => {
    assert.match(e.edgeMessage, /no env with the nine container variables: SESSION_ID, SNAPSHOT_URL, .* missing/);
    assert.doesNotMatch(e.message, /tok-secret/);
  });

  // Caught before any request.
  await assert.rejects(orc.createSession({ ...opts, projectId: project.id, sessionId: 'a b' }), TypeError);
  await assert.rejects(orc.createSession({ ...opts, projectId: project.id, maxAgeSeconds: 0 }), TypeError);
  await assert.rejects(orc.createSession({ ...opts, edgeUrl: 'ftp://edge', projectId: project.id }), TypeError);
});

// ---------------------------------------------------------------------------------------------
// docker/preview/Dockerfile: read, not built (there is no Docker here)
// ---------------------------------------------------------------------------------------------

/** The Dockerfile's instructions: [{op, args}] with continuation lines joined, comments dropped. */
function instructions(text) {
  const out = [];
  let cur = '';
  for (const line of text.split('\n')) {
    if (/^\s*#/.test(line) && !cur) continue;
    cur += line.replace(/\\\s*$/, ' ');
    if (/\\\s*$/.test(line)) continue;
    const m = cur.trim().match(/^(\w+)\s+([\s\S]*)$/);
    if (m) out.push({ op: m[1].toUpperCase(), args: m[2].trim() });
    cur = '';
  }
  return out;
}

/** `A=1 B="x y"` (ENV, ARG) → [[name, value]]. */
function assignments(args) {
  return [...args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)(?:=("[^"]*"|\S*))?/g)].map(([, k, v = '']) => [k, v.replace(/^"|"$/g, '')]);
}

test('the preview image: builds the crate\'s binary with TLS, runs it as ENTRYPOINT as non-root, carries no key', () => {
  const ins = instructions(readFileSync(join(root, 'docker/preview/Dockerfile'), 'utf8'));
  const cargoToml = readFileSync(join(root, 'crates/hydrate/Cargo.toml'), 'utf8');
  const config = readFileSync(join(root, 'crates/hydrate/src/config.rs'), 'utf8');
  const bin = cargoToml.match(/\[\[bin\]\]\s*name\s*=\s*"([^"]+)"/)[1];
  assert.equal(bin, 'fs-sync-hydrate');

  const froms = ins.filter((i) => i.op === 'FROM').map((i) => i.args);
  assert.equal(froms.length, 2, 'two stages');
  assert.match(froms[0], /^rust:\S+ AS build$/);
  // One Debian release for both: the binary runs on the glibc it was linked against.
  const codename = (f) => f.match(/(bookworm|trixie|bullseye)/)?.[1];
  assert.ok(codename(froms[0]) && codename(froms[0]) === codename(froms[1]), `${froms.join(' / ')}`);

  const build = ins.find((i) => i.op === 'RUN' && /cargo build/.test(i.args)).args;
  assert.match(build, new RegExp(`-p ${bin}\\b`));
  assert.match(build, /--release/);
  assert.match(build, /--locked/);
  assert.match(build, /--features tls\b/);
  assert.match(cargoToml, /^tls\s*=/m, 'the crate has the tls feature');
  assert.match(build, new RegExp(`target/release/${bin}\\b`));

  const runtime = ins.slice(ins.findLastIndex((i) => i.op === 'FROM'));
  const copied = runtime.find((i) => i.op === 'COPY' && i.args.startsWith('--from=build')).args.split(/\s+/).pop();
  const entrypoint = JSON.parse(runtime.find((i) => i.op === 'ENTRYPOINT').args);
  assert.ok(entrypoint.includes(copied), `ENTRYPOINT ${JSON.stringify(entrypoint)} runs ${copied}`);
  assert.equal(copied.split('/').pop(), bin);
  const cmd = JSON.parse(runtime.find((i) => i.op === 'CMD').args);
  assert.equal(cmd[0], '--exec', 'CMD is the dev server, given to the agent with --exec');

  const user = runtime.findLast((i) => i.op === 'USER')?.args;
  assert.ok(user && !/^(root|0)(:|$)/.test(user), `runs as ${user}`);
  const workdir = runtime.findLast((i) => i.op === 'WORKDIR').args;
  const env = Object.fromEntries(runtime.filter((i) => i.op === 'ENV').flatMap((i) => assignments(i.args)));
  assert.equal(env.FS_SYNC_TARGET, workdir, 'the agent hydrates the WORKDIR');
  assert.ok(runtime.some((i) => i.op === 'VOLUME' && JSON.parse(i.args).some((v) => workdir.startsWith(v))), 'the project folder is on a volume');
  // Every FS_SYNC_* variable set is one of the agent's flags.
  for (const name of Object.keys(env).filter((k) => k.startsWith('FS_SYNC_'))) {
    assert.ok(config.includes(`env = "${name}"`), `${name} is a flag of fs-sync-hydrate`);
  }

  // No credential in the image: no ENV/ARG named like one or holding a JWT, none of the nine.
  const all = ins.filter((i) => i.op === 'ENV' || i.op === 'ARG').flatMap((i) => assignments(i.args));
  for (const [name, value] of all) {
    assert.doesNotMatch(name, /KEY|SECRET|TOKEN|PASSWORD|SNAPSHOT_URL|SESSION_ID|PROJECT_ID/i, `${name} is set in the image`);
    assert.doesNotMatch(value, /eyJ[\w-]+\.[\w-]+/, `${name} holds a JWT`);
  }

  // The build context keeps what the build stage copies.
  const ignored = readFileSync(join(root, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  for (const needed of ['Cargo.toml', 'Cargo.lock', 'crates', 'edge']) {
    assert.ok(!ignored.includes(needed), `.dockerignore keeps ${needed}`);
  }
});
