// fs-sync-hydrate (the container agent) as a real process, started with exactly the env the edge
// hands out, and the checks that tie it to the database: the container folder against
// list_current_files, byte for byte.
import { spawn } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync, watch } from 'node:fs';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { freePort, until, stopProcess, track, hydrateBin } from './processes.mjs';
import { currentSeq, databaseFiles } from './system.mjs';

/** Prometheus text → {name: number} (histogram buckets keep their labels in the name). */
function parseMetrics(text) {
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
  const lastLogs = (n) => logs.slice(-n).map((l) => JSON.stringify(l)).join('\n');
  return {
    proc,
    pid: proc.pid,
    port,
    startedAt,
    logs,
    exited,
    lastLogs,
    get stdout() { return stdout; },
    healthz: () => get('/healthz'),
    /** GET /healthz parsed: {status, state, reasons} (state 'ready', 'degraded' or 'failing'; null when unreachable). */
    async health() {
      const r = await get('/healthz');
      let body = {};
      try { body = JSON.parse(r.text); } catch { /* unreachable or not JSON */ }
      return { status: r.status, state: body.state ?? null, reasons: body.reasons ?? [] };
    },
    async metrics() {
      const r = await get('/metrics');
      if (r.status !== 200) throw new Error(`agent /metrics: ${r.status}`);
      return parseMetrics(r.text);
    },
    /** Resolves the performance.now() at which /healthz first answered 200 (polled every `intervalMs`). */
    async waitReady(timeoutMs = 60_000, { intervalMs = 5 } = {}) {
      await until('fs-sync-hydrate /healthz', async () => (await get('/healthz')).status === 200,
        { timeoutMs, proc, intervalMs }).catch((e) => {
        throw new Error(`${e.message}\n${lastLogs(20)}`);
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
      // The agent's own reserved folder (temporary files, displaced entries): never a project path.
      if (!rel && name === '.fs-sync') continue;
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

/**
 * Waits until the agent has applied everything the change log holds (its last_applied_seq metric
 * equals get_project_sync_state), then compares the folder with the database. Resolves
 * {seq, expected, tree, diff}.
 */
export async function waitInSync(sys, projectId, agent, target, { timeoutMs = 30_000 } = {}) {
  const seq = await currentSeq(sys, projectId);
  await until(`the agent at seq ${seq}`, async () => (await agent.metrics()).last_applied_seq >= seq,
    { timeoutMs, proc: agent.proc, intervalMs: 10 }).catch(async (e) => {
    const m = await agent.metrics().catch(() => ({}));
    throw new Error(`${e.message} (agent at ${m.last_applied_seq})\n${agent.lastLogs(15)}`);
  });
  const expected = await databaseFiles(sys, projectId);
  const tree = readTree(target);
  return { seq, expected, tree, diff: compareFiles(expected, tree.files) };
}

/**
 * Polls `target/rel` every millisecond until `want` holds: a Buffer/string (the file has exactly
 * these bytes) or null (the file is gone). Resolves the performance.now() at which it held.
 */
/**
 * Like waitForFile, but driven by the folder's change notifications (inotify) instead of polling,
 * and armed at the call: call it before the write that should produce the bytes, await it after.
 * Resolves the performance.now() at which the bytes were first seen.
 */
export function fileSeen(target, rel, want, timeoutMs = 10_000) {
  const abs = join(target, rel);
  const bytes = Buffer.isBuffer(want) ? want : Buffer.from(want, 'utf8');
  const holds = () => {
    try {
      return readFileSync(abs).equals(bytes);
    } catch {
      return false;
    }
  };
  return new Promise((resolve, reject) => {
    let watcher = null;
    const timer = setTimeout(() => {
      watcher?.close();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${rel} to hold the expected bytes`));
    }, timeoutMs);
    const check = () => {
      if (!holds()) return;
      const at = performance.now();
      clearTimeout(timer);
      watcher?.close();
      resolve(at);
    };
    watcher = watch(dirname(abs), check);
    check();
  });
}

export function waitForFile(target, rel, want, timeoutMs = 10_000) {
  const abs = join(target, rel);
  const bytes = want === null ? null : Buffer.isBuffer(want) ? want : Buffer.from(want, 'utf8');
  const holds = () => {
    if (bytes === null) return !existsSync(abs);
    try {
      const st = lstatSync(abs);
      return st.isFile() && st.size === bytes.length && readFileSync(abs).equals(bytes);
    } catch {
      return false;
    }
  };
  return until(`${rel} to reach the expected state`, () => holds() && performance.now(), { timeoutMs, intervalMs: 1 });
}
