// Runs the pieces the edge worker's tests and benchmark need, as real processes:
//   - fs-sync-dev (`start --port 0 --ready-file`), the local Supabase-compatible stack;
//   - the built worker (edge/build, from scripts/build-edge.sh) in workerd via `wrangler dev`,
//     configured from edge/wrangler.toml with its [vars] and secrets overridden by a .dev.vars
//     file written into a temporary folder (never into the repository).
import { spawn, execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  root, freePort, waitFor, stopProcess, track, devstackBin, comm, descendants,
  startDevstack as startDevstackProcess,
} from './procs.mjs';

// Process handling (ports, waits, stopping process groups, fs-sync-dev) lives in procs.mjs,
// shared with the devstack and end-to-end helpers.
export { root, freePort, devstackBin };
const wranglerBin = join(root, 'node_modules/.bin/wrangler');
// wrangler runs detached in its own process group: SIGTERM the group (wrangler and its workerd).
const WRANGLER_STOP = { group: true, graceMs: 5000 };

/** Starts fs-sync-dev (no request log) on a free port; resolves {info, stop()} once it is ready. */
export function startDevstack() {
  return startDevstackProcess({ quiet: true });
}

/** edge/wrangler.toml without its [build] step (the tests run the already built worker). */
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
    await waitFor('wrangler dev', async () => {
      try { return (await fetch(`${url}/health`)).status === 200; } catch { return false; }
    }, 90_000, proc);
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
  const { default: WebSocket } = await import('ws');
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

/** CPU seconds (user + system) a process has used so far. */
export function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(f[11]) + Number(f[12]);
  return ticks / 100; // USER_HZ is 100 on Linux
}

/** {rss, hwm} in bytes (current and peak resident set) of a process. */
export function memory(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number(status.match(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm'))[1]) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** Runs SQL as the database superuser (test fixtures only: flags, buckets). */
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
