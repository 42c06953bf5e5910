// fs-sync-dev as a real process, plus the admin calls and supabase-js clients the devstack tests
// use. `startDevStack()` builds the binary if it is missing, starts it on a free port and waits
// for its ready file; `stop()` sends SIGTERM and reports how it exited. The process handling
// itself lives in procs.mjs, shared with the edge and end-to-end helpers.
import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from '@supabase/supabase-js';
import WebSocket from 'ws';
import { root, devstackBin, startDevstack } from './procs.mjs';

export { root, devstackBin };

/** fs-sync-dev with per-request log lines: {info, pid, stdout, stderr, stop() → {code, signal}}. */
export function startDevStack() {
  return startDevstack();
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
