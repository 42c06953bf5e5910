// End to end, docs/contracts.md invariant 7: containers hold no service credential. The env the edge hands
// out, the running agent's own environment (/proc/<pid>/environ), the --exec child's environment
// and the agent's logs are scanned for the service-role key and the JWT secret; the agent refuses
// to start next to either; the container token reads its own project only and writes nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { startSystem, createProject, startAgent, rpc, until, sampleApp } from '../harness/index.mjs';

const ENV_KEYS = ['PROJECT_ID', 'SESSION_ID', 'SNAPSHOT_URL', 'SNAPSHOT_SHA256', 'SUPABASE_URL',
  'SUPABASE_ANON_KEY', 'REALTIME_TOKEN', 'TOKEN_EXPIRES_AT', 'EDGE_URL'];
const tmp = mkdtempSync(join(tmpdir(), 'fs-sync-e2e-security-'));
let sys;
let project;
let other;
let session;
let secrets; // [name, value]

before(async () => {
  sys = await startSystem();
  const app = sampleApp(200);
  project = await createProject(sys, { name: 'security', app: { files: app.files.slice(0, 20) } });
  other = await createProject(sys, { name: 'someone else', app: { files: [{ path: 'secret.txt', content: 'not yours' }] } });
  session = await sys.session(project.id);
  secrets = [['service_role key', sys.info.service_role_key], ['JWT secret', sys.info.jwt_secret]];
});

after(async () => {
  const exit = await sys?.close();
  rmSync(tmp, { recursive: true, force: true });
  assert.deepEqual(exit, { code: 0, signal: null });
});

/** Fails when `text` contains a secret, or a JWT whose role is service_role. */
function assertClean(what, text) {
  for (const [name, value] of secrets) {
    assert.ok(!text.includes(value), `${what} contains the ${name}`);
  }
  for (const jwt of text.match(/eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+/g) ?? []) {
    assert.notEqual(decodeJwt(jwt).role, 'service_role', `${what} holds a service_role JWT`);
  }
}

test('the env the edge hands a container: the nine docs/contracts.md names, no service key, no JWT secret', () => {
  const env = session.env;
  assert.deepEqual(Object.keys(env).sort(), [...ENV_KEYS].sort());
  for (const [k, v] of Object.entries(env)) assertClean(`env ${k}`, String(v));
  assertClean('the whole /sessions answer', JSON.stringify(session.body));
  assert.equal(env.SUPABASE_ANON_KEY, sys.info.anon_key);
  const claims = decodeJwt(env.REALTIME_TOKEN);
  assert.equal(claims.role, 'fsync_container');
  assert.equal(claims.project_id, project.id);
  assert.equal(claims.scope, 'fsync:read');
  assert.ok(claims.exp - claims.iat <= 15 * 60, 'short-lived: at most 15 minutes');
});

test("the running agent's environment holds neither secret, and its --exec child gets no token", async () => {
  const target = join(tmp, 'exec', 'project');
  const childEnvFile = join(tmp, 'exec', 'child-env.txt');
  const agent = await startAgent(session.env, {
    target, args: ['--exec', `env > ${JSON.stringify(childEnvFile)} && exec sleep 120`],
  });
  try {
    await agent.waitReady();
    const environ = readFileSync(`/proc/${agent.pid}/environ`, 'utf8');
    assertClean('/proc/<agent>/environ', environ);
    const names = environ.split('\0').filter(Boolean).map((kv) => kv.slice(0, kv.indexOf('=')));
    assert.deepEqual(names.filter((n) => n !== 'PATH').sort(), [...ENV_KEYS].sort(), 'exactly the edge env (plus PATH)');

    await until('the --exec child', () => existsSync(childEnvFile) && readFileSync(childEnvFile, 'utf8').includes('PATH='));
    const childEnv = readFileSync(childEnvFile, 'utf8');
    assertClean('the --exec child env', childEnv);
    assert.ok(!childEnv.includes(session.env.REALTIME_TOKEN), 'the dev server does not get the container token');
  } finally {
    await agent.stop();
  }
  assertClean("the agent's logs", agent.logs.map((l) => JSON.stringify(l)).join('\n'));
  const logText = agent.logs.map((l) => JSON.stringify(l)).join('\n');
  assert.ok(!logText.includes(session.env.REALTIME_TOKEN), 'the logs do not print the container token');
  assert.ok(!logText.includes(new URL(session.env.SNAPSHOT_URL).search.slice(1)), 'nor the signed URL token');
});

test('the agent refuses to start when a service credential is in its environment', async () => {
  const cases = [
    ['SUPABASE_SERVICE_ROLE_KEY', sys.info.service_role_key],
    ['SUPABASE_JWT_SECRET', sys.info.jwt_secret],
    ['SOME_INNOCENT_NAME', sys.info.service_role_key], // the key itself, under any name
  ];
  for (const [name, value] of cases) {
    const target = join(tmp, `refuse-${name}`, 'project');
    const agent = await startAgent(session.env, { target, extraEnv: { [name]: value } });
    const exit = await agent.waitExit(15_000);
    if (!exit) await agent.kill();
    assert.deepEqual(exit, { code: 2, signal: null }, `${name}: refused with exit code 2`);
    const said = agent.logs.map((l) => l.raw ?? JSON.stringify(l)).join('\n');
    assert.match(said, /refusing to start/);
    assert.ok(said.includes(name), `${name}: the message names the variable: ${said}`);
    assert.ok(!said.includes(value), `${name}: the message does not print the value`);
    assert.equal(existsSync(target), false, `${name}: nothing was downloaded or extracted`);
    assert.equal(existsSync(join(tmp, `refuse-${name}`)), false, `${name}: not even the parent folder`);
  }
});

test('the container token reads its own project only and cannot write', async () => {
  const as = { apikey: sys.info.anon_key, token: session.env.REALTIME_TOKEN };
  const own = await rpc(sys.info.api_url, as, 'get_project_sync_state', { project_uuid: project.id });
  assert.equal(own.status, 200, JSON.stringify(own.body));
  const theirs = await rpc(sys.info.api_url, as, 'list_current_files', { project_uuid: other.id });
  assert.ok([401, 403, 404].includes(theirs.status), `another project: ${theirs.status} ${JSON.stringify(theirs.body)}`);
  const write = await rpc(sys.info.api_url, as, 'upsert_project_file',
    { project_uuid: project.id, p_file_path: 'pwned.txt', p_content: 'x' });
  assert.ok([401, 403].includes(write.status), `a write: ${write.status} ${JSON.stringify(write.body)}`);
  assertClean('the refusals', JSON.stringify([theirs.body, write.body]));
});
