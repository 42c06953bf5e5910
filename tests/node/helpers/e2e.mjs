// The whole pipeline as real processes, for the end-to-end tests, bench/e2e.mjs and the demo:
// fs-sync-dev (PostgreSQL + the Supabase HTTP surfaces), the edge worker in workerd
// (`wrangler dev`), projects seeded through the RPCs, sessions from the edge, fs-sync-hydrate agents
// started with exactly the env the edge hands out, and the checks that tie them together (the
// container folder against list_current_files, byte for byte).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, waitFor, stopProcess, track, workspaceBin, startDevstack } from './procs.mjs';
import { startWorker, psql, rpc, postJson } from './edge.mjs';

export const FLAG = 'FSYNC_SNAPSHOT_HYDRATION';
/** The bucket of project binaries (migrations/*_fsync-storage.sql): project-assets/<project_id>/…. */
export const ASSETS_BUCKET = 'project-assets';

/** The fs-sync-hydrate binary ($FS_SYNC_HYDRATE_BIN overrides; see procs.workspaceBin). */
export function hydrateBin() {
  return workspaceBin('fs-sync-hydrate', 'fs-sync-hydrate', 'FS_SYNC_HYDRATE_BIN');
}

/**
 * Starts fs-sync-dev and the edge worker against it. Resolves `sys`:
 *   info (fs-sync-dev's ready-file), worker ({url, logLines(), …}), admin(path, body),
 *   sql(statement), fault(name, body), session(projectId, sessionId?), close().
 */
export async function startSystem() {
  const stack = await startDevstack({ quiet: true });
  const info = stack.info;
  let worker;
  try {
    worker = await startWorker({
      SUPABASE_URL: info.api_url,
      SUPABASE_ANON_KEY: info.anon_key,
      SUPABASE_SERVICE_ROLE_KEY: info.service_role_key,
      SUPABASE_JWT_SECRET: info.jwt_secret,
    });
  } catch (e) {
    await stack.stop();
    throw e;
  }
  const service = { authorization: `Bearer ${info.service_role_key}`, apikey: info.service_role_key };
  const sql = (statement) => psql(info.db_url, statement);

  const admin = async (path, body = {}) => {
    const r = await postJson(`${info.api_url}/admin/v1/${path}`, body, service);
    if (r.status < 200 || r.status > 299) throw new Error(`admin ${path}: ${r.status} ${r.text}`);
    return r.body;
  };
  return {
    stack,
    worker,
    info,
    service,
    sql,
    admin,
    /** POST /admin/v1/faults/<name>. */
    fault: (name, body = {}) => admin(`faults/${name}`, body),
    /** POST /sessions on the edge as the orchestrator: {env, body, ms}. */
    async session(projectId, sessionId) {
      const t0 = performance.now();
      const r = await postJson(`${worker.url}/sessions`, { projectId, ...(sessionId ? { sessionId } : {}) },
        { authorization: `Bearer ${info.service_role_key}` });
      const ms = performance.now() - t0;
      if (r.status !== 200) throw new Error(`POST /sessions: ${r.status} ${r.text}`);
      return { env: r.body.env, body: r.body, ms };
    },
    /** The edge's log line for a session (build_ms, snapshot bytes…), once it has been printed. */
    async sessionLog(sessionId, timeoutMs = 5000) {
      return waitFor('the edge log line', () => worker.logLines()
        .find((l) => l.event_type === 'session.create' && l.session_id === sessionId), timeoutMs);
    },
    /** Stops the worker and fs-sync-dev; resolves fs-sync-dev's exit {code, signal}. */
    async close() {
      await worker.stop();
      return stack.stop();
    },
  };
}

/** A user with an access token: {id, email, access_token}. */
export function newUser(sys, email) {
  return sys.admin('users', email ? { email } : {});
}

/**
 * A project owned by a new user, with `editors` more users as editors, the snapshot-hydration
 * flag on for the owner, seeded with `app` ({files, binary}) when given. `emails`: the users'
 * addresses, owner first (default: generated). Resolves {id, owner, editors, users}.
 */
export async function createProject(sys, { name = 'project', app = null, editors = 0, emails = [] } = {}) {
  const slug = `${name}-${Math.random().toString(36).slice(2, 8)}`.replace(/[^a-z0-9-]/gi, '');
  const owner = await newUser(sys, emails[0] ?? `owner-${slug}@example.test`);
  const id = (await sys.admin('projects', { owner_id: owner.id, name })).id;
  sys.sql(`update public.feature_flags set enabled = true,
             target_user_ids = array_append(target_user_ids, '${owner.id}'::uuid)
           where flag_key = '${FLAG}'`);
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
export async function seed(sys, projectId, user, { files = [], binary = null }) {
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
 * Everything under `dir`: regular files (Map relative path → Buffer), anything else that is not a
 * folder (symlinks, sockets…), and empty folders. Paths use '/', as the project does.
 */
export function readTree(dir) {
  const files = new Map();
  const others = [];
  const emptyDirs = [];
  const walk = (abs, rel) => {
    const names = readdirSync(abs);
    if (rel && names.length === 0) emptyDirs.push(rel);
    for (const name of names) {
      const a = join(abs, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(a);
      if (st.isDirectory()) walk(a, r);
      else if (st.isFile()) files.set(r, readFileSync(a));
      else others.push(r);
    }
  };
  if (existsSync(dir)) walk(dir, '');
  return { files, others, emptyDirs };
}

/** Differences between two Map path → Buffer: {missing, extra, differ, equal}. */
export function compareFiles(expected, actual) {
  const missing = [...expected.keys()].filter((p) => !actual.has(p));
  const extra = [...actual.keys()].filter((p) => !expected.has(p));
  const differ = [...expected.keys()].filter((p) => actual.has(p) && !actual.get(p).equals(expected.get(p)));
  return { missing, extra, differ, equal: missing.length + extra.length + differ.length === 0 };
}

/** Prometheus text → {name: number} (histogram buckets keep their labels in the name). */
export function parseMetrics(text) {
  const out = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out[line.slice(0, i)] = Number(line.slice(i + 1));
  }
  return out;
}

/** An `event applied` log line of the agent (its event_type field is the fs-sync event's type). */
export const isApplied = (l) => l.msg === 'event applied' && typeof l.seq === 'number';

/**
 * Starts fs-sync-hydrate with exactly `env` (the edge's container env) plus PATH and `extraEnv`,
 * into `target`, serving /healthz and /metrics on a free port. Its JSON log lines are collected
 * (`logs`); `onLine(obj)` sees each as it arrives.
 */
export async function startAgent(env, { target, stateDir, args = [], extraEnv = {}, onLine } = {}) {
  const port = await freePort();
  const argv = ['--target', target, '--metrics-addr', `127.0.0.1:${port}`, '--no-progress',
    ...(stateDir ? ['--state-dir', stateDir] : []), ...args];
  const startedAt = performance.now();
  const proc = track(spawn(hydrateBin(), argv, {
    env: { PATH: process.env.PATH, ...env, ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  }));
  const logs = [];
  let stdout = '';
  let rest = '';
  proc.stdout.on('data', (d) => { stdout += d; });
  proc.stderr.on('data', (d) => {
    rest += d;
    let nl;
    while ((nl = rest.indexOf('\n')) >= 0) {
      const line = rest.slice(0, nl);
      rest = rest.slice(nl + 1);
      if (!line.trim()) continue;
      let obj;
      try { obj = JSON.parse(line); } catch { obj = { raw: line }; }
      logs.push(obj);
      onLine?.(obj);
    }
  });
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  const base = `http://127.0.0.1:${port}`;
  const get = async (path) => {
    try {
      const r = await fetch(`${base}${path}`);
      return { status: r.status, text: await r.text() };
    } catch {
      return { status: 0, text: '' };
    }
  };
  return {
    proc,
    pid: proc.pid,
    port,
    startedAt,
    logs,
    exited,
    get stdout() { return stdout; },
    healthz: () => get('/healthz'),
    async metrics() {
      const r = await get('/metrics');
      if (r.status !== 200) throw new Error(`agent /metrics: ${r.status}`);
      return parseMetrics(r.text);
    },
    /** Resolves the performance.now() at which /healthz first answered 200. */
    async waitReady(timeoutMs = 60_000) {
      await waitFor('fs-sync-hydrate /healthz', async () => (await get('/healthz')).status === 200,
        timeoutMs, proc, 5).catch((e) => {
        throw new Error(`${e.message}\n${logs.slice(-20).map((l) => JSON.stringify(l)).join('\n')}`);
      });
      return performance.now();
    },
    /** Resolves the exit {code, signal}, or null when the agent is still running after `timeoutMs`. */
    waitExit(timeoutMs) {
      let timer;
      const timeout = new Promise((resolve) => { timer = setTimeout(() => resolve(null), timeoutMs); });
      return Promise.race([exited, timeout]).finally(() => clearTimeout(timer));
    },
    /** Log lines of applied events. */
    applied: () => logs.filter(isApplied),
    /** SIGTERM; resolves {code, signal}. */
    stop: () => stopProcess(proc, { graceMs: 10_000 }),
    /** SIGKILL; resolves {code, signal}. */
    kill: () => stopProcess(proc, { signal: 'SIGKILL' }),
  };
}

/**
 * Waits until the agent has applied everything the change log holds (its last_applied_seq metric
 * equals get_project_sync_state), then compares the folder with the database. Resolves
 * {seq, expected, tree, diff}.
 */
export async function waitInSync(sys, projectId, agent, target, { timeoutMs = 30_000 } = {}) {
  const seq = await currentSeq(sys, projectId);
  await waitFor(`agent at seq ${seq}`, async () => (await agent.metrics()).last_applied_seq >= seq,
    timeoutMs, agent.proc, 10).catch(async (e) => {
    const m = await agent.metrics().catch(() => ({}));
    throw new Error(`${e.message} (agent at ${m.last_applied_seq})\n` +
      agent.logs.slice(-15).map((l) => JSON.stringify(l)).join('\n'));
  });
  const expected = await databaseFiles(sys, projectId);
  const tree = readTree(target);
  return { seq, expected, tree, diff: compareFiles(expected, tree.files) };
}

/** A @velocity/fs-sync client for `user` on `projectId`. */
export function fsClient(pkg, sys, user, projectId, options = {}) {
  return new pkg.FsSyncClient({
    supabaseUrl: sys.info.api_url,
    anonKey: sys.info.anon_key,
    projectId,
    getAccessToken: () => user.access_token,
    ...options,
  });
}

/**
 * Polls `target/rel` every millisecond until `want` holds: a Buffer/string (the file has exactly
 * these bytes) or null (the file is gone). Resolves the performance.now() at which it held.
 */
export async function waitForFile(target, rel, want, timeoutMs = 10_000) {
  const abs = join(target, rel);
  const bytes = want === null ? null : Buffer.isBuffer(want) ? want : Buffer.from(want, 'utf8');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let ok;
    if (bytes === null) {
      ok = !existsSync(abs);
    } else {
      try {
        const st = lstatSync(abs);
        ok = st.isFile() && st.size === bytes.length && readFileSync(abs).equals(bytes);
      } catch {
        ok = false;
      }
    }
    if (ok) return performance.now();
    if (Date.now() > deadline) throw new Error(`${rel} did not reach the expected state in ${timeoutMs} ms`);
    await sleep(1);
  }
}

/** The p-th percentile (0–100) of numbers, nearest-rank. */
export function percentile(values, p) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/** A small seeded PRNG (mulberry32): the same seed gives the same burst. */
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `total` edits from `users.length` concurrent writers, each its own FsSyncClient (a distinct
 * user, loaded first). Each writer owns `burst/w<i>/…` (saves, deletes, renames, small bulks) and
 * all share `burst/shared/…`, where their saves conflict; a conflict is resolved the way an
 * editor does (catchUp, then save again), at most 20 times per edit. `onEdit(n)` sees the running
 * count of completed edits. Resolves {edits, conflicts, kinds}.
 */
export async function burst(pkg, sys, projectId, users, { total = 1000, seed = 7, onEdit } = {}) {
  let done = 0;
  let conflicts = 0;
  const kinds = { save: 0, shared: 0, delete: 0, rename: 0, bulk: 0 };
  const writer = async (user, w, count) => {
    const fs = fsClient(pkg, sys, user, projectId);
    await fs.load();
    const rand = prng(seed * 1000 + w);
    const own = (k) => `burst/w${w}/file-${k}.ts`;
    const live = (p) => { const h = fs.head(p); return h !== undefined && !h.deleted; };
    const body = (i) => `// writer ${w}, edit ${i}\nexport const value${w} = ${i};\n${'x'.repeat(Math.floor(rand() * 400))}\n`;
    const retrying = async (op) => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await op();
        } catch (e) {
          if (e?.kind !== 'conflict' || attempt >= 20) throw e;
          conflicts += 1;
          await fs.catchUp();
        }
      }
    };
    for (let i = 0; i < count; i++) {
      const r = rand();
      const k = Math.floor(rand() * 12);
      if (r < 0.15) {
        kinds.shared += 1;
        const p = `burst/shared/s${Math.floor(rand() * 6)}.ts`;
        await retrying(() => fs.save(p, `// shared, writer ${w}, edit ${i}\n`));
      } else if (r < 0.23 && live(own(k))) {
        kinds.delete += 1;
        await fs.remove(own(k));
      } else if (r < 0.30 && live(own(k)) && !live(own(k + 12))) {
        kinds.rename += 1;
        await fs.rename(own(k), own(k + 12));
      } else if (r < 0.40) {
        kinds.bulk += 1;
        const files = [0, 1, 2].map((j) => ({ path: own((k + j * 5) % 24), content: body(i * 10 + j) }));
        const gone = own((k + 7) % 24);
        if (live(gone) && !files.some((f) => f.path === gone)) files.push({ path: gone, delete: true });
        await fs.saveAll(files);
      } else {
        kinds.save += 1;
        await fs.save(own(k), body(i));
      }
      done += 1;
      onEdit?.(done);
    }
  };
  const per = Math.floor(total / users.length);
  await Promise.all(users.map((u, w) => writer(u, w, w === 0 ? total - per * (users.length - 1) : per)));
  return { edits: done, conflicts, kinds };
}

/**
 * Checks "nothing applied twice" from the agents' `event applied` log lines, one array per run of
 * an agent on the same folder (a restart makes a second run): within a run no seq repeats and seqs
 * only go up; together the runs cover every seq in (fromSeq, toSeq]; a seq a later run applies
 * again (the earlier run died before saving its state) wrote nothing the second time. Returns a
 * list of problems (empty when all hold).
 */
export function exactlyOnce(runs, fromSeq, toSeq) {
  const problems = [];
  const seen = new Map();
  runs.forEach((lines, run) => {
    let last = -Infinity;
    const mine = new Set();
    for (const l of lines) {
      if (mine.has(l.seq)) problems.push(`run ${run + 1} applied seq ${l.seq} twice`);
      if (l.seq <= last) problems.push(`run ${run + 1} applied seq ${l.seq} after ${last}`);
      mine.add(l.seq);
      last = Math.max(last, l.seq);
      if (seen.has(l.seq) && l.written > 0) {
        problems.push(`seq ${l.seq} was applied in run ${seen.get(l.seq) + 1} and wrote ${l.written} file(s) again in run ${run + 1}`);
      }
      if (!seen.has(l.seq)) seen.set(l.seq, run);
    }
  });
  for (let s = fromSeq + 1; s <= toSeq; s++) if (!seen.has(s)) problems.push(`seq ${s} was never applied`);
  for (const s of seen.keys()) if (s <= fromSeq || s > toSeq) problems.push(`seq ${s} is outside (${fromSeq}, ${toSeq}]`);
  return problems;
}
