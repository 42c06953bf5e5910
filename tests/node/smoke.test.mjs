// `npm run smoke` (scripts/smoke.mjs), the first check of a deployment, against fs-sync-dev and the
// edge under `wrangler dev` addressed only by URLs and keys, as if they were remote: it passes and
// leaves nothing behind; pointed at a wrong URL or given a wrong key it fails at the step concerned
// with a message that says what to check.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { startSystem, startWorker, freePort, root } from '../harness/index.mjs';
import { hydrateBin } from '../harness/processes.mjs';

const FLAG = 'FSYNC_SNAPSHOT_HYDRATION';
let sys;
let args; // the four addresses and keys of the running system

before(async () => {
  sys = await startSystem();
  args = {
    '--supabase-url': sys.info.api_url,
    '--anon-key': sys.info.anon_key,
    '--edge-url': sys.worker.url,
    '--service-key': sys.info.service_role_key,
    // The agent this run built (not whichever of target/release and target/debug is newer).
    '--hydrate-bin': hydrateBin(),
  };
  // As docs/deploy.md has the operator do before the first check: the flag enabled, for nobody yet.
  const flags = await run(['scripts/flags.mjs', 'set', FLAG, '--enabled', '--rollout', '0',
    '--supabase-url', sys.info.api_url, '--service-key', sys.info.service_role_key]);
  assert.equal(flags.code, 0, flags.stderr);
});

after(async () => {
  assert.deepEqual(await sys?.close(), { code: 0, signal: null });
});

/** Runs `node <argv>` (or `npm <argv>` with `npm: true`) in the repository; resolves {code, stdout, stderr}. */
function run(argv, { npm = false } = {}) {
  return new Promise((resolve) => {
    const child = spawn(npm ? 'npm' : process.execPath, argv, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** scripts/smoke.mjs with the system's addresses, `override` replacing some. */
function smoke(override = {}) {
  const all = { ...args, ...override };
  return run(['scripts/smoke.mjs', ...Object.entries(all).flat(), '--ready-timeout', '60']);
}

const STEPS = ['supabase', 'anon-key', 'edge', 'user', 'project', 'flag', 'session', 'hydrate', 'edits',
  'stop', 'end', 'revoked', 'rm-project', 'unflag', 'rm-user'];

test('npm run smoke passes against the local stack addressed only by URLs and keys, and cleans up', async () => {
  const projectsBefore = sys.sql('select count(*) from public.projects');
  const r = await run(['run', 'smoke', '--', ...Object.entries(args).flat()], { npm: true });
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  // One line per step, in order, each with its time.
  const lines = r.stdout.split('\n').filter((l) => /^\s+\d+\.\d\ds {2}ok {4}/.test(l));
  assert.deepEqual(lines.map((l) => l.trim().split(/\s+/)[2]), STEPS, r.stdout);
  assert.match(r.stdout, /smoke: passed/);
  // The scratch user came from fs-sync-dev's Auth routes, as from Supabase Auth, and was deleted there.
  assert.match(r.stdout, /ok {4}user {7}fs-sync-smoke-[0-9a-f]{8}@example\.com \([0-9a-f-]{36}\) through Supabase Auth/);
  assert.match(r.stdout, /ok {4}rm-user {4}fs-sync-smoke-[0-9a-f]{8}@example\.com deleted/);

  // What it left: no project, no targeted user, an ended session.
  assert.equal(sys.sql('select count(*) from public.projects'), projectsBefore);
  assert.equal(sys.sql(`select cardinality(target_user_ids) from public.feature_flags where flag_key = '${FLAG}'`), '0');
  const run_ = r.stdout.match(/start smoke run ([0-9a-f]{8})/)[1];
  // The project's deletion took its session rows with it (on delete cascade); the audit keeps both flag changes.
  assert.equal(sys.sql(`select count(*) from fsync.sessions where session_id = 'smoke-${run_}'`), '0');
  assert.equal(sys.sql(`select count(*) from public.feature_flag_changes where flag_key = '${FLAG}' and changed_by = 'fs-sync smoke'`), '2');
  assert.equal(sys.sql(`select count(*) from auth.users where email like 'fs-sync-smoke-${run_}@%'`), '0');
});

test('a wrong URL fails at its step with a message naming the URL and the flag to check', async () => {
  const closed = `http://127.0.0.1:${await freePort()}`;
  const cases = [
    [{ '--supabase-url': closed }, 'supabase', new RegExp(`nothing is listening at ${closed} \\(connection refused\\): check --supabase-url`)],
    // A server that is not Supabase (here: the edge).
    [{ '--supabase-url': sys.worker.url }, 'supabase', /answered 404 .*not PostgREST: --supabase-url does not look like a Supabase project URL/],
    [{ '--supabase-url': 'http://no-such-host.invalid' }, 'supabase', /the host no-such-host\.invalid does not resolve: check --supabase-url/],
    [{ '--edge-url': closed }, 'edge', /nothing is listening at .* \(connection refused\): check --edge-url/],
    // A server that is not the edge (here: Supabase).
    [{ '--edge-url': sys.info.api_url }, 'edge', /\/health answered 404 .*not fs-sync-edge's .*check --edge-url/],
  ];
  for (const [override, step, message] of cases) {
    const r = await smoke(override);
    assert.equal(r.code, 1, `${JSON.stringify(override)}: ${r.stdout}`);
    assert.match(r.stderr, new RegExp(`^smoke: FAILED at step "${step}": `), JSON.stringify(override));
    assert.match(r.stderr, message, JSON.stringify(override));
    assert.doesNotMatch(r.stdout, /ok {4}user/, 'nothing was created');
  }
});

test('a wrong key fails with a message saying which key was refused, and by whom', async () => {
  const foreign = await new SignJWT({ role: 'service_role' }).setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt().setExpirationTime('1h').sign(new TextEncoder().encode('another project\'s jwt secret, 40+ chars'));
  const cases = [
    [{ '--service-key': foreign }, 'supabase', /refused --service-key \(401: Invalid API key\)/],
    [{ '--service-key': sys.info.anon_key }, 'supabase', /--service-key is not the service-role key/],
    [{ '--anon-key': 'not-a-key' }, 'anon-key', /refused --anon-key \(401: Invalid API key\)/],
    [{ '--anon-key': sys.info.service_role_key }, 'anon-key', /--anon-key reads public\.feature_flags: that is a service-role key/],
  ];
  for (const [override, step, message] of cases) {
    const r = await smoke(override);
    assert.equal(r.code, 1, `${step}: ${r.stdout}`);
    assert.match(r.stderr, new RegExp(`^smoke: FAILED at step "${step}": `));
    assert.match(r.stderr, message);
  }
});

test('an edge whose JWT secret is not the project\'s refuses the session: the smoke says so and cleans up', async () => {
  // The commonest deployment slip: `wrangler secret put SUPABASE_JWT_SECRET` of another project.
  const edge = await startWorker({
    SUPABASE_URL: sys.info.api_url,
    SUPABASE_ANON_KEY: sys.info.anon_key,
    SUPABASE_SERVICE_ROLE_KEY: sys.info.service_role_key,
    SUPABASE_JWT_SECRET: 'not this project\'s jwt secret, but 40+ characters long',
  });
  try {
    const projectsBefore = sys.sql('select count(*) from public.projects');
    const r = await smoke({ '--edge-url': edge.url });
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /^smoke: FAILED at step "session": the edge refused --service-key \(401 unauthorized: .*\): its SUPABASE_JWT_SECRET must be this project's JWT secret/);
    assert.match(r.stdout, /ok {4}rm-project/);
    assert.match(r.stdout, /ok {4}unflag/);
    assert.equal(sys.sql('select count(*) from public.projects'), projectsBefore);
    assert.equal(sys.sql(`select cardinality(target_user_ids) from public.feature_flags where flag_key = '${FLAG}'`), '0');
  } finally {
    await edge.stop();
  }
});
