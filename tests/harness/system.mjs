// The system as real processes: fs-sync-dev (PostgreSQL + the Supabase HTTP surfaces) and the edge
// worker in workerd (`wrangler dev`), plus what every caller does with them: users, projects
// seeded through the RPCs, RPC and admin calls, supabase-js clients, sessions from the edge.
//
// The worker runs the built edge/build (scripts/build-edge.sh) from a copy, configured from
// edge/wrangler.toml with its [vars] and secrets overridden by a .dev.vars file written into a
// temporary folder (never into the repository).
import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createClient } from '@supabase/supabase-js';
import WebSocket from 'ws';
import {
  root, freePort, until, stopProcess, track, devstackBin, comm, descendants,
} from './processes.mjs';

/** The flag that turns snapshot hydration on for a user. */
const FLAG = 'FSYNC_SNAPSHOT_HYDRATION';
/** The bucket of project binaries (migrations/*_fsync-storage.sql): project-assets/<project_id>/…. */
const ASSETS_BUCKET = 'project-assets';

/**
 * fs-sync-dev (`start --port 0 --ready-file … --ephemeral`) on an ephemeral PostgreSQL cluster of
 * its own, resolved once its ready-file is written: {info, proc, pid, stdout, stderr, stop()}.
 * `quiet`: no per-request log lines. `dataDir`: `--data-dir` instead of `--ephemeral` (the
 * caller owns the folder); `port`: instead of a free one. `stop()` sends SIGTERM (fs-sync-dev
 * stops its cluster itself) and resolves the exit {code, signal}; SIGKILL after 20 s.
 */
async function startDevstack({ quiet, timeoutMs = 120_000, dataDir = null, port = 0 }) {
  const dir = mkdtempSync(join(tmpdir(), 'fs-sync-dev-'));
  const readyFile = join(dir, 'ready.json');
  const env = { ...process.env };
  delete env.DATABASE_URL; // always an ephemeral cluster of its own
  const args = ['start', '--port', String(port), '--ready-file', readyFile,
    ...(dataDir ? ['--data-dir', dataDir] : ['--ephemeral']), ...(quiet ? ['--quiet'] : [])];
  const proc = track(spawn(devstackBin(), args, {
    cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true,
  }));
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d) => { stdout += d; });
  proc.stderr.on('data', (d) => { stderr += d; });
  const stop = async () => {
    const result = await stopProcess(proc);
    rmSync(dir, { recursive: true, force: true });
    return result;
  };
  try {
    await until('fs-sync-dev to write its ready file', () => existsSync(readyFile), { timeoutMs, proc, intervalMs: 50 });
  } catch (e) {
    await stop();
    throw new Error(`${e.message}\n${stderr}`);
  }
  return {
    info: JSON.parse(readFileSync(readyFile, 'utf8')),
    proc,
    pid: proc.pid,
    get stdout() { return stdout; },
    get stderr() { return stderr; },
    stop,
  };
}

/**
 * Starts the system: fs-sync-dev and, with `edge` (default), the edge worker against it
 * (fs-sync-hydrate agents are started per container with `startAgent`). `quiet` (default): no
 * per-request log lines from fs-sync-dev. Resolves `sys`:
 *   info           fs-sync-dev's ready file {api_url, anon_key, service_role_key, jwt_secret, db_url}
 *   stack          the fs-sync-dev process {proc, pid, stdout, stderr}
 *   worker         the edge {url, output(), logLines(), …}, null without `edge`
 *   service        headers carrying the service-role key
 *   admin(path, body)        POST /admin/v1/<path>; throws unless 2xx
 *   sql(statement)           psql as postgres, no superuser, as on a hosted project (fixtures only)
 *   fault(name, body)        POST /admin/v1/faults/<name>
 *   faults()                 GET /admin/v1/faults: {mode, delivered, dropped, held}
 *   session(projectId, sessionId?)  POST /sessions on the edge as the orchestrator: {env, body, ms}
 *   sessionLog(sessionId)    the edge's log line for a session, once printed
 *   close()                  stops the worker, then fs-sync-dev; resolves fs-sync-dev's exit {code, signal}
 *   restartStack()           stops fs-sync-dev and starts it again on the same port and data dir
 *                            (needs `dataDir` and `port`); the worker keeps running. Resolves the
 *                            stopped run's exit {code, signal}; `sys.stack`, `sys.info` are the new run's
 * `dataDir`: fs-sync-dev keeps its data there (`--data-dir`) instead of `--ephemeral`; `port`: its
 * port instead of a free one. `startEdge(env)`: how the worker is started (default `startWorker`,
 * `wrangler dev`; benchmarks pass bench/workerd.mjs's `startWorkerd`, workerd without wrangler's
 * DevTools proxy).
 */
export async function startSystem({ edge = true, quiet = true, dataDir = null, port = 0, startEdge = startWorker } = {}) {
  let stack = await startDevstack({ quiet, dataDir, port });
  const { info } = stack;
  let worker = null;
  if (edge) {
    try {
      worker = await startEdge({
        SUPABASE_URL: info.api_url,
        SUPABASE_ANON_KEY: info.anon_key,
        SUPABASE_SERVICE_ROLE_KEY: info.service_role_key,
        SUPABASE_JWT_SECRET: info.jwt_secret,
      });
    } catch (e) {
      await stack.stop();
      throw e;
    }
  }
  const service = { authorization: `Bearer ${info.service_role_key}`, apikey: info.service_role_key };
  const adminUrl = (path) => `${info.api_url}/admin/v1/${path}`;
  const admin = async (path, body = {}) => {
    const r = await postJson(adminUrl(path), body, service);
    if (r.status < 200 || r.status > 299) throw new Error(`admin ${path}: ${r.status} ${r.text}`);
    return r.body;
  };
  return {
    info,
    stack,
    worker,
    service,
    admin,
    sql: (statement) => psql(info.db_url, statement),
    fault: (name, body = {}) => admin(`faults/${name}`, body),
    async faults() {
      const r = await fetch(adminUrl('faults'), { headers: service });
      if (r.status !== 200) throw new Error(`admin faults: ${r.status} ${await r.text()}`);
      return r.json();
    },
    async session(projectId, sessionId) {
      const t0 = performance.now();
      const r = await postJson(`${worker.url}/sessions`, { projectId, ...(sessionId ? { sessionId } : {}) },
        { authorization: `Bearer ${info.service_role_key}` });
      const ms = performance.now() - t0;
      if (r.status !== 200) throw new Error(`POST /sessions: ${r.status} ${r.text}`);
      return { env: r.body.env, body: r.body, ms };
    },
    sessionLog(sessionId, timeoutMs = 5000) {
      return until('the edge log line', () => worker.logLines()
        .find((l) => l.event_type === 'session.create' && l.session_id === sessionId), { timeoutMs });
    },
    async close() {
      await worker?.stop();
      return stack.stop();
    },
    async restartStack() {
      if (!dataDir || !port) throw new Error('restartStack needs startSystem({dataDir, port})');
      const exit = await stack.stop();
      stack = await startDevstack({ quiet, dataDir, port });
      this.stack = stack;
      this.info = stack.info;
      return exit;
    },
  };
}

const wranglerBin = join(root, 'node_modules/.bin/wrangler');
// wrangler runs detached in its own process group: SIGTERM the group (wrangler and its workerd).
const WRANGLER_STOP = { group: true, graceMs: 5000 };

/** edge/wrangler.toml without its [build] step (the harness runs the already built worker). */
export function testConfig(mainPath) {
  const src = readFileSync(join(root, 'edge/wrangler.toml'), 'utf8');
  const out = [];
  let skip = false;
  for (const line of src.split('\n')) {
    const header = line.match(/^\s*\[([^\]]+)\]/);
    if (header) skip = header[1].trim() === 'build';
    if (skip) continue;
    out.push(line.replace(/^main\s*=.*$/, `main = ${JSON.stringify(mainPath)}`));
  }
  return out.join('\n');
}

/**
 * Starts the built worker under `wrangler dev` (workerd) on a free port.
 * `env`: SUPABASE_URL, SUPABASE_ANON_KEY, SUPABASE_SERVICE_ROLE_KEY, SUPABASE_JWT_SECRET and any
 * var overrides, written to .dev.vars. `main`: another worker script (the benchmark's JSZip worker).
 */
export async function startWorker(env, { main, name } = {}) {
  const mainPath = main ?? join(root, 'edge/build/index.js');
  if (!main && !existsSync(mainPath)) {
    throw new Error('edge/build/index.js is missing: run bash scripts/build-edge.sh');
  }
  const dir = mkdtempSync(join(tmpdir(), 'fs-sync-edge-'));
  // Serve a copy of the build: wrangler reloads when `main` changes, and a rebuild of edge/build
  // during a run (another suite's build step) must not restart this worker mid-request.
  let served = mainPath;
  if (!main) {
    cpSync(join(root, 'edge/build'), join(dir, 'build'), { recursive: true });
    served = join(dir, 'build/index.js');
  }
  let config = testConfig(served);
  if (name) config = config.replace(/^name\s*=.*$/m, `name = ${JSON.stringify(name)}`);
  writeFileSync(join(dir, 'wrangler.toml'), config);
  writeFileSync(join(dir, '.dev.vars'),
    Object.entries(env).map(([k, v]) => `${k}=${JSON.stringify(String(v))}`).join('\n') + '\n');
  const port = await freePort();
  const inspector = await freePort();
  const proc = track(spawn(wranglerBin, [
    'dev', '--config', join(dir, 'wrangler.toml'), '--ip', '127.0.0.1', '--port', String(port),
    '--inspector-port', String(inspector), '--show-interactive-dev-session=false',
  ], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
    env: { ...process.env, WRANGLER_SEND_METRICS: 'false', NO_COLOR: '1', CI: 'true' },
  }));
  // Keep at most the last ~8 MB (a failing worker's error pages can be large).
  let output = '';
  const keep = (d) => {
    output += d;
    if (output.length > 16 << 20) output = output.slice(-(8 << 20));
  };
  proc.stdout.on('data', keep);
  proc.stderr.on('data', keep);
  const url = `http://127.0.0.1:${port}`;
  try {
    await until('wrangler dev to answer /health', async () => {
      try { return (await fetch(`${url}/health`)).status === 200; } catch { return false; }
    }, { timeoutMs: 90_000, proc, intervalMs: 50 });
  } catch (e) {
    await stopProcess(proc, WRANGLER_STOP);
    throw new Error(`${e.message}\n${output}`);
  }
  return {
    url,
    proc,
    /** The V8 inspector (Chrome DevTools protocol) of the worker's isolate. */
    inspectorPort: inspector,
    /** Everything wrangler and the worker printed so far. */
    output: () => output,
    /** The worker's JSON log lines (one per request). */
    logLines: () => output.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('{"event_type"'))
      .map((l) => JSON.parse(l)),
    /**
     * The workerd processes of this `wrangler dev` (for CPU and memory readings): wrangler runs
     * two, the worker's own and an entry proxy in front of it; readings should sum them.
     */
    workerdPids: () => descendants(proc.pid).filter((pid) => comm(pid) === 'workerd'),
    async stop() { await stopProcess(proc, WRANGLER_STOP); rmSync(dir, { recursive: true, force: true }); },
  };
}

/**
 * Connects to a worker's V8 inspector; `call(method, params)` resolves the result. Used by the
 * benchmark for `Runtime.getHeapUsage` (the isolate's JS heap and ArrayBuffer backing stores).
 */
export async function inspect(port) {
  const [target] = await (await fetch(`http://127.0.0.1:${port}/json`)).json();
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  let id = 0;
  const pending = new Map();
  ws.on('message', (m) => {
    const d = JSON.parse(m);
    const p = pending.get(d.id);
    if (!p) return;
    pending.delete(d.id);
    if (d.error) p.reject(new Error(`${d.error.message}`)); else p.resolve(d.result);
  });
  return {
    call: (method, params = {}) => new Promise((resolve, reject) => {
      pending.set(++id, { resolve, reject });
      ws.send(JSON.stringify({ id, method, params }));
    }),
    close: () => ws.close(),
  };
}

/** Runs SQL as postgres, the project's own role (fixtures only: flags, settings, buckets). */
export function psql(dbUrl, sql) {
  return execFileSync('psql', [dbUrl, '-v', 'ON_ERROR_STOP=1', '-qAt', '-c', sql], { encoding: 'utf8' }).trim();
}

/** A PostgREST-style RPC call; resolves {status, body}. */
export async function rpc(api, { apikey, token }, fn, args) {
  const res = await fetch(`${api}/rest/v1/rpc/${fn}`, {
    method: 'POST',
    headers: { apikey, authorization: `Bearer ${token ?? apikey}`, 'content-type': 'application/json' },
    body: JSON.stringify(args),
  });
  const text = await res.text();
  let body = text;
  try { body = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, body };
}

/** POST with a JSON body (admin endpoints, the worker); resolves {status, body, text}. */
export async function postJson(url, body, headers = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, body: json, text };
}

/**
 * A new user (POST /admin/v1/users): {id, email, access_token, expires_at}, the token a GoTrue-
 * shaped one valid for an hour. Every helper that acts as a user reads `user.access_token`.
 */
export function newUser(sys, email) {
  return sys.admin('users', email ? { email } : {});
}

/**
 * A project owned by a new user, with `editors` more users as editors, seeded with `app`
 * ({files, binary}) when given. `emails`: the users' addresses, owner first (default: generated).
 * `hydration` (default): the snapshot-hydration flag on for the owner, as the edge requires;
 * off for tests that count the user's flags. Resolves {id, owner, editors, users}.
 */
export async function createProject(sys, {
  name = 'project', app = null, editors = 0, emails = [], hydration = true,
} = {}) {
  const slug = `${name}-${Math.random().toString(36).slice(2, 8)}`.replace(/[^a-z0-9-]/gi, '');
  const owner = await newUser(sys, emails[0] ?? `owner-${slug}@example.test`);
  const id = (await sys.admin('projects', { owner_id: owner.id, name })).id;
  if (hydration) {
    sys.sql(`update public.feature_flags set enabled = true,
               target_user_ids = array_append(target_user_ids, '${owner.id}'::uuid)
             where flag_key = '${FLAG}'`);
  }
  const eds = [];
  for (let i = 0; i < editors; i++) {
    const u = await newUser(sys, emails[i + 1] ?? `editor${i + 1}-${slug}@example.test`);
    await sys.admin('members', { project_id: id, user_id: u.id, role: 'editor' });
    eds.push(u);
  }
  if (app) await seed(sys, id, owner, app);
  return { id, owner, editors: eds, users: [owner, ...eds] };
}

/** PostgREST RPC as `user` (or the service role when null); throws unless 200. */
export async function call(sys, user, fn, args) {
  const who = user ? { apikey: sys.info.anon_key, token: user.access_token } : { apikey: sys.info.service_role_key };
  const r = await rpc(sys.info.api_url, who, fn, args);
  if (r.status !== 200) throw new Error(`rpc ${fn}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/** Writes `files` ([{path, content}]) with bulk_upsert_project_files and registers `binary`. */
async function seed(sys, projectId, user, { files = [], binary = null }) {
  for (let i = 0; i < files.length; i += 1000) {
    const batch = files.slice(i, i + 1000).map((f) => ({ file_path: f.path, content: f.content }));
    await call(sys, user, 'bulk_upsert_project_files', { project_uuid: projectId, files: batch });
  }
  if (binary) await putBinary(sys, projectId, user, binary);
}

/**
 * Uploads bytes to Storage as `user` (owners and editors may write their project's folder of the
 * project-assets bucket) and registers them as a binary file version.
 */
export async function putBinary(sys, projectId, user, { path, bytes, contentType = 'application/octet-stream' }) {
  const hash = createHash('sha256').update(bytes).digest('hex');
  const storagePath = `${ASSETS_BUCKET}/${projectId}/blobs/${hash}`;
  const up = await fetch(`${sys.info.api_url}/storage/v1/object/${storagePath}`, {
    method: 'POST',
    headers: {
      apikey: sys.info.anon_key, authorization: `Bearer ${user.access_token}`,
      'content-type': contentType, 'x-upsert': 'true',
    },
    body: bytes,
  });
  if (up.status !== 200) throw new Error(`storage upload: ${up.status} ${await up.text()}`);
  return call(sys, user, 'register_binary_file', {
    project_uuid: projectId, p_file_path: path, p_storage_path: storagePath,
    p_content_hash: hash, p_size_bytes: bytes.length,
  });
}

/** The project's current seq (get_project_sync_state). */
export async function currentSeq(sys, projectId) {
  return (await call(sys, null, 'get_project_sync_state', { project_uuid: projectId })).seq;
}

/**
 * The database's state of a project as files: list_current_files, text contents as UTF-8 bytes,
 * binaries read back from their Storage objects. Map path → Buffer.
 */
export async function databaseFiles(sys, projectId) {
  const rows = await call(sys, null, 'list_current_files', { project_uuid: projectId });
  const out = new Map();
  for (const row of rows) {
    if (row.storage_path) {
      const r = await fetch(`${sys.info.api_url}/storage/v1/object/${row.storage_path}`, { headers: sys.service });
      if (r.status !== 200) throw new Error(`storage ${row.storage_path}: ${r.status}`);
      out.set(row.file_path, Buffer.from(await r.arrayBuffer()));
    } else {
      out.set(row.file_path, Buffer.from(row.content ?? '', 'utf8'));
    }
  }
  return out;
}

/**
 * A supabase-js client of the system acting as `auth` — anything with an `access_token` (a user,
 * or `{access_token: sys.info.service_role_key}`), read on every request, so swapping it swaps
 * the caller; omit it for the anon key. Node 20 has no global WebSocket, so realtime gets the `ws`
 * package as its transport; `realtime` adds options (e.g. {vsn: '1.0.0'}).
 */
export function client(sys, auth = null, realtime = {}) {
  return createClient(sys.info.api_url, sys.info.anon_key, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    ...(auth ? { accessToken: async () => auth.access_token } : {}),
    realtime: { transport: WebSocket, ...realtime },
  });
}

/** Subscribes a channel and resolves with its status once it settles (SUBSCRIBED or an error). */
export function subscribe(channel) {
  return new Promise((resolve) => {
    channel.subscribe((status, err) => {
      if (status === 'SUBSCRIBED' || status === 'CHANNEL_ERROR' || status === 'TIMED_OUT') resolve({ status, err });
    });
  });
}
