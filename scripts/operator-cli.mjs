// What the operator commands (scripts/flags.mjs, scripts/prune.mjs) share: their arguments, where
// the project is (--supabase-url and --service-key, or SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY),
// a supabase-js client with the service role, and one way to fail.
import { parseArgs } from 'node:util';
import { createClient } from '@supabase/supabase-js';
import WebSocket from 'ws';

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Parses the command line for command `name` with `options` (node:util parseArgs) plus the two
 * connection options, and connects. Resolves {opt, positionals, db, die, check}; `headers` go on
 * every request (e.g. who the operator is).
 */
export function operatorCommand(name, options, { headers } = {}) {
  const die = (message) => {
    console.error(`${name}: ${message}`);
    process.exit(2);
  };
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: { 'supabase-url': { type: 'string' }, 'service-key': { type: 'string' }, ...options },
    });
  } catch (e) {
    die(e.message);
  }
  const { values: opt, positionals } = parsed;
  const url = opt['supabase-url'] ?? process.env.SUPABASE_URL;
  const key = opt['service-key'] ?? process.env.SUPABASE_SERVICE_ROLE_KEY;
  if (!url || !key) die('give --supabase-url and --service-key (or SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY)');
  const db = createClient(url, key, {
    auth: { persistSession: false, autoRefreshToken: false },
    ...(headers ? { global: { headers: headers(opt) } } : {}),
    // Unused here, but supabase-js builds its realtime client eagerly and Node 20 has no WebSocket.
    realtime: { transport: WebSocket },
  });
  /** The data of a supabase-js answer, or exit naming `what` failed and how. */
  const check = (what, { data, error, status }) => {
    if (error) die(`${what}: ${error.message}${status ? ` (HTTP ${status}${error.code ? `, ${error.code}` : ''})` : ''}`);
    return data;
  };
  return { opt, positionals, db, die, check };
}
