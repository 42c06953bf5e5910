// fs-sync-dev as a real process, plus the admin calls and supabase-js clients the devstack tests
// use. `startDevStack()` builds the binary if it is missing, starts it on a free port and waits
// for its ready file; `stop()` sends SIGTERM and reports how it exited.
import { spawn, execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from '@supabase/supabase-js';
import WebSocket from 'ws';

export const root = join(dirname(fileURLToPath(import.meta.url)), '../../..');

/** The fs-sync-dev binary: $FS_SYNC_DEV_BIN, else target/debug/fs-sync-dev (built if missing). */
export function devstackBin() {
  if (process.env.FS_SYNC_DEV_BIN) return process.env.FS_SYNC_DEV_BIN;
  const bin = join(root, 'target/debug/fs-sync-dev');
  if (!existsSync(bin)) {
    execFileSync('cargo', ['build', '-q', '-p', 'fs-sync-dev'], { cwd: root, stdio: 'inherit' });
  }
  return bin;
}

export async function startDevStack() {
  const dir = mkdtempSync(join(tmpdir(), 'fs-sync-devstack-test-'));
  const readyFile = join(dir, 'ready.json');
  const env = { ...process.env };
  delete env.DATABASE_URL; // always an ephemeral cluster of its own
  const proc = spawn(devstackBin(), ['start', '--port', '0', '--ready-file', readyFile], {
    cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d) => { stdout += d; });
  proc.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  const deadline = Date.now() + 120_000;
  while (!existsSync(readyFile)) {
    if (proc.exitCode !== null) throw new Error(`fs-sync-dev exited (${proc.exitCode}):\n${stderr}`);
    if (Date.now() > deadline) { proc.kill('SIGKILL'); throw new Error(`fs-sync-dev not ready:\n${stderr}`); }
    await sleep(50);
  }
  const info = JSON.parse(readFileSync(readyFile, 'utf8'));
  return {
    info,
    pid: proc.pid,
    get stdout() { return stdout; },
    get stderr() { return stderr; },
    /** SIGTERM, then the exit {code, signal} (SIGKILL after 20 s). */
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 20_000);
      const result = await exited;
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
      return result;
    },
  };
}

/** POST to /admin/v1 with the service-role key. */
export async function admin(info, path, body = {}) {
  const r = await fetch(`${info.api_url}/admin/v1/${path}`, {
    method: 'POST',
    headers: { apikey: info.service_role_key, authorization: `Bearer ${info.service_role_key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = await r.json();
  if (!r.ok) throw new Error(`admin ${path}: ${r.status} ${JSON.stringify(json)}`);
  return json;
}

/** Runs SQL as the superuser through psql (test setup only). */
export function sql(info, statement) {
  const r = spawnSync('psql', [info.db_url, '-v', 'ON_ERROR_STOP=1', '-Atqc', statement], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`psql: ${r.stderr}`);
  return r.stdout.trim();
}

/**
 * A supabase-js client acting with `token` (a user's access token; omit for the anon key).
 * `tokenRef.current` may be swapped later; supabase-js asks for it on every request.
 * Node 20 has no global WebSocket, so realtime gets the `ws` package as its transport.
 */
export function client(info, tokenRef = null, realtime = {}) {
  return createClient(info.api_url, info.anon_key, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    ...(tokenRef ? { accessToken: async () => tokenRef.current } : {}),
    realtime: { transport: WebSocket, ...realtime },
  });
}

/** A user with an access token: {id, email, token: {current}}. */
export async function newUser(info, email) {
  const u = await admin(info, 'users', email ? { email } : {});
  return { id: u.id, email: u.email, token: { current: u.access_token } };
}

/** Waits until `predicate()` is truthy. */
export async function until(what, predicate, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await predicate();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Subscribes a channel and resolves with its status once it settles (SUBSCRIBED or an error). */
export function subscribe(channel) {
  return new Promise((resolve) => {
    channel.subscribe((status, err) => {
      if (status === 'SUBSCRIBED' || status === 'CHANNEL_ERROR' || status === 'TIMED_OUT') resolve({ status, err });
    });
  });
}
