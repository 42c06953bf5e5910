// The first check of a deployment (docs/deploy.md), addressed only by URLs and keys:
//
//   npm run smoke -- --supabase-url https://<ref>.supabase.co --anon-key <anon key> \
//                    --edge-url https://fs-sync-edge.<account>.workers.dev --service-key <service-role key>
//
// It creates a scratch user and project, asks the edge for a session (POST /sessions), starts
// fs-sync-hydrate (the built binary: --hydrate-bin, else the newer of target/release and target/debug) into a
// temporary folder with exactly the nine variables the edge returned, waits for /healthz, makes
// edits with supabase-js as the user and waits until the folder holds them, then ends the session
// (DELETE /sessions/<id>) and checks that the container token no longer refreshes, and removes what
// it created. Each step prints one line with its time; the first failure names the step and what
// was wrong, the cleanup still runs, and the exit status is 1 (2 for bad arguments).
//
// The scratch user comes from Supabase Auth's admin API (/auth/v1/admin/users) and signs in with
// its password (fs-sync-dev serves the same routes, so the run is the same against it). When FSYNC_SNAPSHOT_HYDRATION is enabled but not on for the scratch user, the user is added to
// the flag's targeted users for the run and removed afterwards (both recorded in
// feature_flag_changes by operator "fs-sync smoke").
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from '@supabase/supabase-js';
import WebSocket from 'ws';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const FLAG = 'FSYNC_SNAPSHOT_HYDRATION';
const OPERATOR = 'fs-sync smoke';
const REQUEST_TIMEOUT_MS = 20_000;
const CONTAINER_ENV = ['PROJECT_ID', 'SESSION_ID', 'SNAPSHOT_URL', 'SNAPSHOT_SHA256', 'SUPABASE_URL',
  'SUPABASE_ANON_KEY', 'REALTIME_TOKEN', 'TOKEN_EXPIRES_AT', 'EDGE_URL'];

const USAGE = `usage: npm run smoke -- --supabase-url URL --anon-key KEY --edge-url URL --service-key KEY
  [--hydrate-bin PATH] [--ready-timeout SECS] [--email-domain DOMAIN] [--keep]
  --email-domain  the scratch user's address is fs-sync-smoke-<run>@DOMAIN (default example.com; no mail is sent)
  --keep          leave the temporary folder (its path is printed)`;

function usage(message) {
  console.error(`smoke: ${message}\n${USAGE}`);
  process.exit(2);
}

let opt;
try {
  ({ values: opt } = parseArgs({
    options: {
      'supabase-url': { type: 'string' },
      'anon-key': { type: 'string' },
      'edge-url': { type: 'string' },
      'service-key': { type: 'string' },
      'hydrate-bin': { type: 'string' },
      'ready-timeout': { type: 'string' },
      'email-domain': { type: 'string', default: 'example.com' },
      keep: { type: 'boolean' },
      help: { type: 'boolean' },
    },
  }));
} catch (e) {
  usage(e.message);
}
if (opt.help) {
  console.log(USAGE);
  process.exit(0);
}
for (const name of ['supabase-url', 'anon-key', 'edge-url', 'service-key']) {
  if (!opt[name]) usage(`--${name} is required`);
}
const baseUrl = (name) => {
  let u;
  try { u = new URL(opt[name]); } catch { usage(`--${name} is not a URL: ${JSON.stringify(opt[name])}`); }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') usage(`--${name} must be http(s): ${opt[name]}`);
  return opt[name].replace(/\/+$/, '');
};
const supabaseUrl = baseUrl('supabase-url');
const edgeUrl = baseUrl('edge-url');
const anonKey = opt['anon-key'];
const serviceKey = opt['service-key'];
const readyTimeoutMs = Number(opt['ready-timeout'] ?? 120) * 1000;
if (!(readyTimeoutMs > 0)) usage('--ready-timeout must be a positive number of seconds');

// ---------------------------------------------------------------------------------------------
// Steps, their lines, and failures a human can act on
// ---------------------------------------------------------------------------------------------

/** A failure with the message to print (what was wrong and what to check). */
class Failure extends Error {}
const fail = (message) => { throw new Failure(message); };

const started = performance.now();
const clock = () => `${((performance.now() - started) / 1000).toFixed(2).padStart(7)}s`;
let firstFailure = null;

/** Runs one step: prints `<time> ok <step> <detail> (<ms>)` or `<time> FAIL <step>: <why>`. */
async function step(name, fn) {
  const t0 = performance.now();
  try {
    const detail = await fn();
    console.log(`${clock()}  ok    ${name.padEnd(10)} ${detail ?? ''} (${Math.round(performance.now() - t0)} ms)`);
    return true;
  } catch (e) {
    const why = e instanceof Failure ? e.message : `unexpected error: ${e?.stack ?? e}`;
    console.log(`${clock()}  FAIL  ${name.padEnd(10)} ${why}`);
    firstFailure ??= { name, why };
    return false;
  }
}

const clip = (text, n = 300) => {
  const flat = String(text).replace(/\s+/g, ' ').trim();
  return flat.length > n ? `${flat.slice(0, n)}…` : flat;
};

/** Why a request got no answer, in words: refused, unknown host, timeout; anything else (TLS…) quoted. */
function unreachable(url, flag, e) {
  const code = e?.cause?.code ?? e?.code ?? e?.name;
  const { origin, hostname } = new URL(url);
  switch (code) {
    case 'ECONNREFUSED':
      return `nothing is listening at ${origin} (connection refused): check ${flag}`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `the host ${hostname} does not resolve: check ${flag}`;
    case 'TimeoutError':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return `no answer from ${origin} within ${REQUEST_TIMEOUT_MS / 1000} s: check ${flag}`;
    default:
      return `cannot reach ${origin} (${code ?? ''} ${e?.cause?.message ?? e?.message ?? e}): check ${flag}`;
  }
}

/** One HTTP request; resolves {status, json, text}; a request that gets no answer fails the step. */
async function http(flag, url, { method = 'GET', headers = {}, body } = {}) {
  let res;
  let text;
  try {
    res = await fetch(url, {
      method,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    text = await res.text();
  } catch (e) {
    fail(unreachable(url, flag, e));
  }
  let json;
  try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
  return { status: res.status, json, text };
}

/** The edge's error body ({error: code, message} or {error: {code, message}}) as `code: message`. */
function edgeError({ status, json, text }) {
  const e = json?.error;
  if (e && typeof e === 'object') return `${status} ${e.code ?? ''}: ${e.message ?? ''}`;
  if (typeof e === 'string') return `${status} ${e}: ${json.message ?? ''}`;
  return `${status}: ${clip(text) || 'empty body'}`;
}

/** What a Supabase (Kong/PostgREST) 401 means for the key that was sent as `flag`. */
function keyRefused(flag, r) {
  const msg = r.json?.message ?? clip(r.text);
  const code = r.json?.code ? ` ${r.json.code}` : '';
  return `${supabaseUrl} refused ${flag} (${r.status}${code}: ${msg}): give this project's key (Project Settings → API)`;
}

const service = { apikey: serviceKey, authorization: `Bearer ${serviceKey}` };
const supabaseClient = (accessToken, headers = {}) => createClient(supabaseUrl, anonKey, {
  auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
  ...(accessToken ? { accessToken: async () => accessToken } : {}),
  global: { headers },
  // Unused, but supabase-js builds its realtime client eagerly and Node 20 has no WebSocket.
  realtime: { transport: WebSocket },
});
const serviceClient = () => createClient(supabaseUrl, serviceKey, {
  auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
  global: { headers: { 'x-fsync-operator': OPERATOR } },
  realtime: { transport: WebSocket },
});

/** A supabase-js result, or the step fails naming `what` with the error and its HTTP status. */
function check(what, { data, error, status }) {
  if (error) {
    const code = error.code ? ` ${error.code}` : '';
    fail(`${what}: ${error.message}${status ? ` (HTTP ${status}${code})` : ''}`);
  }
  return data;
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

const run = randomBytes(4).toString('hex');
const tmp = mkdtempSync(join(tmpdir(), 'fs-sync-smoke-'));
const target = join(tmp, 'project');
const state = {}; // what was created, for the cleanup
const edits = {
  'smoke/hello.txt': `hello from smoke run ${run}\n`,
  'smoke/remove-me.txt': 'deleted by the smoke run\n',
};

async function main() {
  let flagRow;
  const ok = await step('supabase', async () => {
    const url = `${supabaseUrl}/rest/v1/feature_flags?select=flag_key,enabled,rollout_percentage,target_user_ids,updated_at&flag_key=eq.${FLAG}`;
    const r = await http('--supabase-url', url, { headers: service });
    if (r.status === 401 || (r.status === 403 && r.json?.code === '42501')) {
      if (r.json?.code === '42501') fail(`--service-key is not the service-role key (it may not read public.feature_flags: ${r.json.message})`);
      fail(keyRefused('--service-key', r));
    }
    if (r.status === 404 && r.json?.code === 'PGRST205') {
      fail(`${supabaseUrl} has no public.feature_flags: apply fs-sync's migrations (supabase db push)`);
    }
    if (r.status !== 200 || !Array.isArray(r.json)) {
      fail(`${url.split('?')[0]} answered ${r.status} (${clip(r.text, 120) || 'empty body'}), not PostgREST: `
        + '--supabase-url does not look like a Supabase project URL (https://<ref>.supabase.co)');
    }
    if (r.json.length === 0) fail(`no ${FLAG} row in public.feature_flags: are fs-sync's migrations applied (supabase db push)?`);
    [flagRow] = r.json;
    return `${supabaseUrl}: PostgREST answers, the service-role key is accepted, fs-sync's tables are there`;
  }) && await step('anon-key', async () => {
    // The anon role may read nothing of fs-sync's: a key Supabase accepts gets 42501 (or an empty
    // list); one it does not know gets 401 without that code.
    const r = await http('--supabase-url', `${supabaseUrl}/rest/v1/feature_flags?select=flag_key&limit=1`,
      { headers: { apikey: anonKey, authorization: `Bearer ${anonKey}` } });
    if (r.status === 200 && Array.isArray(r.json) && r.json.length > 0) {
      fail('--anon-key reads public.feature_flags: that is a service-role key; give the anon (public) key');
    }
    if (!(r.status === 200 || r.json?.code === '42501')) fail(keyRefused('--anon-key', r));
    return 'accepted';
  }) && await step('edge', async () => {
    const r = await http('--edge-url', `${edgeUrl}/health`);
    if (r.status !== 200 || r.json?.service !== 'fs-sync-edge') {
      fail(`${edgeUrl}/health answered ${r.status} (${clip(r.text, 120) || 'empty body'}), not fs-sync-edge's `
        + '{"service":"fs-sync-edge","ok":true}: check --edge-url');
    }
    return `${edgeUrl}: fs-sync-edge answers`;
  }) && await step('user', async () => {
    const email = `fs-sync-smoke-${run}@${opt['email-domain']}`;
    const password = randomBytes(18).toString('base64url');
    const created = await serviceClient().auth.admin.createUser({ email, password, email_confirm: true });
    if (created.error?.status === 404) {
      fail(`${supabaseUrl}/auth/v1/admin/users does not exist (404): no Supabase Auth there: check --supabase-url`);
    }
    if (created.error?.status === 401 || created.error?.status === 403) {
      fail(`Supabase Auth refused --service-key for its admin API (${created.error.status}: ${created.error.message})`);
    }
    const { user } = check('creating the scratch user (auth.admin.createUser)', created);
    state.user = { id: user.id, email };
    const signIn = await supabaseClient().auth.signInWithPassword({ email, password });
    if (signIn.error?.status === 401) {
      fail(`Supabase Auth refused --anon-key (${signIn.error.status}: ${signIn.error.message})`);
    }
    state.user.token = check('signing the scratch user in (auth.signInWithPassword)', signIn).session.access_token;
    return `${email} (${user.id}) through Supabase Auth`;
  }) && await step('project', async () => {
    const db = supabaseClient(state.user.token);
    const id = check('create_project as the scratch user', await db.rpc('create_project', { p_name: `fs-sync smoke ${run}` }));
    state.project = id;
    for (const [path, content] of Object.entries(edits)) {
      check(`saving ${path}`, await db.rpc('upsert_project_file', { project_uuid: id, p_file_path: path, p_content: content }));
    }
    return `${id}, ${Object.keys(edits).length} files saved`;
  }) && await step('flag', async () => {
    const sb = serviceClient();
    const on = async () => check(`is_feature_enabled_for_project(${FLAG})`,
      await sb.rpc('is_feature_enabled_for_project', { flag_key: FLAG, project_uuid: state.project }));
    if (await on()) return `${FLAG} is on for the scratch project's owner`;
    if (!flagRow.enabled) {
      fail(`${FLAG} is disabled on this deployment, so the edge answers 409 to every session. Enable it for `
        + `nobody but targeted users first: npm run flags -- set ${FLAG} --enabled --rollout 0`);
    }
    await changeTargets((ids) => [...ids, state.user.id]);
    state.flagTargeted = true;
    if (!(await on())) fail(`${FLAG} stays off for a targeted user: check the flag's environments (npm run flags -- list)`);
    return `${FLAG}: the scratch user added to the targeted users for this run`;
  }) && await step('session', async () => {
    const sessionId = `smoke-${run}`;
    const r = await http('--edge-url', `${edgeUrl}/sessions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${serviceKey}` },
      body: { projectId: state.project, sessionId, maxAgeSeconds: 900 },
    });
    if (r.status === 401) {
      fail(`the edge refused --service-key (${edgeError(r)}): its SUPABASE_JWT_SECRET must be this project's `
        + 'JWT secret, and --service-key this project\'s service-role key');
    }
    if (r.status === 409) fail(`the edge says hydration is off (${edgeError(r)}) although the database says on: is the edge's SUPABASE_URL ${supabaseUrl}?`);
    if (r.status === 404) fail(`the edge cannot see the scratch project (${edgeError(r)}): is the edge's SUPABASE_URL ${supabaseUrl}?`);
    if (r.status !== 200) fail(`POST /sessions: ${edgeError(r)}`);
    const env = r.json?.env ?? {};
    const missing = CONTAINER_ENV.filter((k) => typeof env[k] !== 'string' || env[k] === '');
    if (missing.length) fail(`POST /sessions returned an env without ${missing.join(', ')}`);
    const extra = Object.keys(env).filter((k) => !CONTAINER_ENV.includes(k));
    if (extra.length) fail(`POST /sessions returned an env with more than the nine variables: ${extra.join(', ')}`);
    state.session = { id: r.json.sessionId ?? env.SESSION_ID, env };
    if (env.SUPABASE_URL.replace(/\/+$/, '') !== supabaseUrl) {
      console.log(`${clock()}  note  session   the edge hands containers SUPABASE_URL=${env.SUPABASE_URL}, not ${supabaseUrl}`);
    }
    return `${state.session.id}: snapshot ${r.json.snapshot?.snapshotId?.slice(0, 12) ?? '?'}… `
      + `(${r.json.snapshot?.fileCount ?? '?'} files, ${r.json.snapshot?.reused ? 'reused' : 'built'})`;
  }) && await step('hydrate', async () => {
    const agent = await startAgent(state.session.env);
    state.agent = agent;
    await waitFor(`fs-sync-hydrate's /healthz to answer 200`, readyTimeoutMs, agent, async () => (await agent.healthz()) === 200);
    for (const [path, content] of Object.entries(edits)) {
      const got = readText(path);
      if (got !== content) fail(`the hydrated folder's ${path} is ${got === null ? 'missing' : JSON.stringify(clip(got, 80))}`);
    }
    return `ready in ${target}, the saved files are there`;
  }) && await step('edits', async () => {
    const db = supabaseClient(state.user.token);
    const want = {
      'smoke/hello.txt': `changed by smoke run ${run}\n`,
      'smoke/new/file.ts': `export const run = ${JSON.stringify(run)};\n`,
      'smoke/remove-me.txt': null,
    };
    const t0 = performance.now();
    check('upsert_project_file (a change)', await db.rpc('upsert_project_file',
      { project_uuid: state.project, p_file_path: 'smoke/hello.txt', p_content: want['smoke/hello.txt'] }));
    check('upsert_project_file (a new file)', await db.rpc('upsert_project_file',
      { project_uuid: state.project, p_file_path: 'smoke/new/file.ts', p_content: want['smoke/new/file.ts'] }));
    check('delete_project_file', await db.rpc('delete_project_file',
      { project_uuid: state.project, p_file_path: 'smoke/remove-me.txt' }));
    const saved = performance.now();
    const pending = () => Object.entries(want).filter(([p, c]) => readText(p) !== c).map(([p]) => p);
    await waitFor('the edits to arrive in the folder', 30_000, state.agent, () => pending().length === 0)
      .catch(() => fail(`after 30 s the folder still differs at ${pending().join(', ')}\n${state.agent.lastLogs(10)}`));
    return `3 edits saved in ${Math.round(saved - t0)} ms, in the folder ${Math.round(performance.now() - saved)} ms later`;
  });
  return ok;
}

async function cleanup() {
  if (state.agent) {
    await step('stop', async () => {
      const exit = await state.agent.stop();
      return `fs-sync-hydrate exited (${exit.signal ?? exit.code})`;
    });
  }
  if (state.session) {
    await step('end', async () => {
      const r = await http('--edge-url', `${edgeUrl}/sessions/${encodeURIComponent(state.session.id)}?reason=smoke`,
        { method: 'DELETE', headers: { authorization: `Bearer ${serviceKey}` } });
      if (r.status === 405 || (r.status === 404 && /no route/.test(r.text))) {
        fail(`the edge has no DELETE /sessions/<id> (${edgeError(r)}): deploy the current edge`);
      }
      if (r.status !== 204) fail(`DELETE /sessions/${state.session.id}: ${edgeError(r)}`);
      return `DELETE /sessions/${state.session.id}: 204`;
    }) && await step('revoked', async () => {
      const r = await http('--edge-url', `${edgeUrl}/sessions/refresh`,
        { method: 'POST', headers: { authorization: `Bearer ${state.session.env.REALTIME_TOKEN}` } });
      if (r.status === 200) fail('the ended session\'s token still refreshes: the edge does not check sessions (deploy the current edge, apply the sessions migration)');
      if (r.status !== 401) fail(`POST /sessions/refresh with the ended session's token: ${edgeError(r)} (expected 401)`);
      return `the ended session's token is refused (${edgeError(r)})`;
    });
  }
  if (state.project) {
    await step('rm-project', async () => {
      const r = await http('--supabase-url', `${supabaseUrl}/rest/v1/projects?id=eq.${state.project}`,
        { method: 'DELETE', headers: { ...service, prefer: 'return=representation' } });
      if (r.status !== 200 || !Array.isArray(r.json) || r.json.length !== 1) fail(`deleting project ${state.project}: ${r.status} ${clip(r.text)}`);
      return `${state.project} deleted`;
    });
  }
  if (state.flagTargeted) {
    await step('unflag', async () => {
      await changeTargets((ids) => ids.filter((id) => id !== state.user.id));
      return `the scratch user removed from ${FLAG}'s targeted users`;
    });
  }
  if (state.user) {
    await step('rm-user', async () => {
      check(`deleting ${state.user.email}`, await serviceClient().auth.admin.deleteUser(state.user.id));
      return `${state.user.email} deleted`;
    });
  }
  if (opt.keep) console.log(`${clock()}  note  kept      ${tmp}`);
  else rmSync(tmp, { recursive: true, force: true });
}

/**
 * Rewrites FSYNC_SNAPSHOT_HYDRATION's targeted users with `change(ids)`, only if nobody changed the
 * row since it was read (compare-and-set on updated_at; retried on a concurrent change).
 */
async function changeTargets(change) {
  const sb = serviceClient();
  for (let attempt = 1; attempt <= 5; attempt++) {
    const [row] = check(`reading ${FLAG}`, await sb.from('feature_flags')
      .select('target_user_ids,updated_at').eq('flag_key', FLAG));
    const ids = [...new Set(change(row.target_user_ids ?? []))];
    const updated = check(`updating ${FLAG}'s targeted users`, await sb.from('feature_flags')
      .update({ target_user_ids: ids, updated_at: new Date().toISOString() })
      .eq('flag_key', FLAG).eq('updated_at', row.updated_at).select('flag_key'));
    if (updated.length === 1) return;
  }
  fail(`${FLAG} kept changing under the smoke run (5 attempts)`);
}

// ---------------------------------------------------------------------------------------------
// The agent
// ---------------------------------------------------------------------------------------------

/** --hydrate-bin, else the more recently built of target/release and target/debug. */
function hydrateBin() {
  const candidates = opt['hydrate-bin'] ? [opt['hydrate-bin']]
    : ['release', 'debug'].map((p) => join(root, 'target', p, 'fs-sync-hydrate'));
  const [bin] = candidates.filter((p) => existsSync(p)).sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  if (!bin) {
    fail(`no fs-sync-hydrate at ${candidates.join(' or ')}: build it (cargo build --release -p fs-sync-hydrate --features tls) or pass --hydrate-bin`);
  }
  return bin;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** fs-sync-hydrate with nothing in its environment but the nine variables. */
async function startAgent(env) {
  const port = await freePort();
  const proc = spawn(hydrateBin(), ['--target', target, '--metrics-addr', `127.0.0.1:${port}`, '--no-progress'], {
    env: Object.fromEntries(CONTAINER_ENV.map((k) => [k, env[k]])),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  // No agent outlives the smoke run, however it ends.
  const kill = () => { try { proc.kill('SIGKILL'); } catch { /* gone */ } };
  process.once('exit', kill);
  const lines = [];
  let rest = '';
  proc.stderr.on('data', (d) => {
    rest += d;
    let nl;
    while ((nl = rest.indexOf('\n')) >= 0) {
      lines.push(rest.slice(0, nl));
      if (lines.length > 200) lines.shift();
      rest = rest.slice(nl + 1);
    }
  });
  let exit = null;
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => {
    exit = { code, signal };
    process.off('exit', kill);
    resolve(exit);
  }));
  await new Promise((resolve, reject) => { proc.once('spawn', resolve); proc.once('error', reject); })
    .catch((e) => fail(`starting fs-sync-hydrate: ${e.message}`));
  return {
    get exit() { return exit; },
    lastLogs: (n) => lines.slice(-n).map((l) => `    ${logLine(l)}`).join('\n'),
    async healthz() {
      try { return (await fetch(`http://127.0.0.1:${port}/healthz`)).status; } catch { return 0; }
    },
    async stop() {
      if (exit) return exit;
      proc.kill('SIGTERM');
      const timer = setTimeout(kill, 10_000);
      return exited.finally(() => clearTimeout(timer));
    },
  };
}

/** An agent's JSON log line as `level msg: error (reason)`, anything else as it is. */
function logLine(line) {
  let o;
  try { o = JSON.parse(line); } catch { return line; }
  return `${o.level ?? ''} ${o.msg ?? ''}${o.error ? `: ${o.error}` : ''}${o.reason ? ` (${o.reason})` : ''}`.trim();
}

/** Polls `predicate` until it holds; fails naming `label` on timeout or when the agent exits. */
async function waitFor(label, timeoutMs, agent, predicate) {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (agent.exit) fail(`fs-sync-hydrate exited (${agent.exit.signal ?? agent.exit.code}) before ${label}; its last log lines:\n${agent.lastLogs(15)}`);
    if (performance.now() > deadline) fail(`timed out after ${timeoutMs / 1000} s waiting for ${label}; the agent's last log lines:\n${agent.lastLogs(15)}`);
    await sleep(50);
  }
}

/** A file of the hydrated folder as text, or null when it is not a regular file. */
function readText(rel) {
  const abs = join(target, rel);
  try {
    return lstatSync(abs).isFile() ? readFileSync(abs, 'utf8') : null;
  } catch {
    return null;
  }
}

console.log(`${clock()}  start smoke run ${run}: ${supabaseUrl}, ${edgeUrl}`);
try {
  await main();
} finally {
  await cleanup();
}
if (firstFailure) {
  // The step's line above has the details (the agent's log lines); this is the one-line verdict.
  console.error(`smoke: FAILED at step "${firstFailure.name}": ${firstFailure.why.split('\n')[0]}`);
  process.exit(1);
}
console.log(`${clock()}  smoke: passed`);
