// Feature-flag administration for operators, with the service role:
//
//   npm run flags -- list
//   npm run flags -- set FSYNC_USE_RPC --enabled --rollout 10
//   npm run flags -- set FSYNC_USE_RPC --users <uuid>,<uuid>          (replaces the targeted users)
//   npm run flags -- set FSYNC_USE_RPC --add-users <uuid> --remove-users <uuid>
//   npm run flags -- set FSYNC_USE_RPC --disabled
//   npm run flags -- history [FLAG] [--limit 20]
//
// Where: --supabase-url and --service-key, or SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY. Who:
// --operator, or FSYNC_OPERATOR, or the login name; every change is recorded by the database in
// public.feature_flag_changes (who, when, old, new), which `history` prints.
import { userInfo } from 'node:os';
import { UUID, operatorCommand } from './operator-cli.mjs';

const { opt, positionals: [command, flag, ...extra], db, die, check } = operatorCommand('flags', {
  operator: { type: 'string' },
  enabled: { type: 'boolean' },
  disabled: { type: 'boolean' },
  rollout: { type: 'string' },
  users: { type: 'string' },
  'add-users': { type: 'string' },
  'remove-users': { type: 'string' },
  environments: { type: 'string' },
  limit: { type: 'string' },
  json: { type: 'boolean' },
}, { headers: (o) => ({ 'x-fsync-operator': o.operator ?? process.env.FSYNC_OPERATOR ?? userInfo().username }) });
if (extra.length) die(`unexpected argument ${extra[0]}`);

function userList(name) {
  if (opt[name] === undefined) return undefined;
  const ids = opt[name].split(',').map((s) => s.trim()).filter(Boolean);
  const bad = ids.find((id) => !UUID.test(id));
  if (bad) die(`--${name}: ${JSON.stringify(bad)} is not a user uuid`);
  return ids;
}

function print(rows, columns) {
  if (opt.json) {
    console.log(JSON.stringify(rows, null, 2));
    return;
  }
  const cell = (v) => (Array.isArray(v) ? v.join(',') : v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v));
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals) => vals.map((v, i) => v.padEnd(widths[i])).join('  ').trimEnd();
  console.log(line(columns));
  for (const r of rows) console.log(line(columns.map((c) => cell(r[c]))));
}

const FLAG_COLUMNS = ['flag_key', 'enabled', 'rollout_percentage', 'target_user_ids', 'environments', 'updated_at'];

async function list() {
  const rows = check('reading feature_flags', await db.from('feature_flags').select(FLAG_COLUMNS.join(',')).order('flag_key'));
  print(rows, FLAG_COLUMNS);
}

async function set() {
  if (!flag) die('set needs a flag name, e.g. set FSYNC_USE_RPC --rollout 10');
  if (opt.enabled && opt.disabled) die('--enabled and --disabled contradict each other');
  const rows = check(`reading ${flag}`, await db.from('feature_flags').select('*').eq('flag_key', flag));
  if (rows.length === 0) die(`no flag ${flag} (npm run flags -- list shows them)`);
  const current = rows[0];
  const change = {};
  if (opt.enabled) change.enabled = true;
  if (opt.disabled) change.enabled = false;
  if (opt.rollout !== undefined) {
    const n = Number(opt.rollout);
    if (!Number.isInteger(n) || n < 0 || n > 100) die(`--rollout must be an integer from 0 to 100, not ${JSON.stringify(opt.rollout)}`);
    change.rollout_percentage = n;
  }
  const replace = userList('users');
  const add = userList('add-users') ?? [];
  const remove = new Set(userList('remove-users') ?? []);
  if (replace || add.length || remove.size) {
    const base = replace ?? current.target_user_ids;
    change.target_user_ids = [...new Set([...base, ...add])].filter((id) => !remove.has(id));
  }
  if (opt.environments !== undefined) change.environments = opt.environments.split(',').map((s) => s.trim()).filter(Boolean);
  if (Object.keys(change).length === 0) die('nothing to change: give --enabled/--disabled, --rollout, --users, --add-users, --remove-users or --environments');
  change.updated_at = new Date().toISOString();
  const updated = check(`updating ${flag}`, await db.from('feature_flags').update(change).eq('flag_key', flag).select(FLAG_COLUMNS.join(',')));
  if (updated.length !== 1) die(`updating ${flag}: the database changed ${updated.length} rows`);
  print(updated, FLAG_COLUMNS);
}

async function history() {
  const limit = opt.limit === undefined ? 20 : Number(opt.limit);
  if (!Number.isInteger(limit) || limit < 1) die(`--limit must be a positive integer, not ${JSON.stringify(opt.limit)}`);
  let q = db.from('feature_flag_changes').select('changed_at,flag_key,operation,changed_by,via,old_value,new_value');
  if (flag) q = q.eq('flag_key', flag);
  const rows = check('reading feature_flag_changes', await q.order('id', { ascending: false }).limit(limit));
  const changed = rows.map((r) => {
    const before = r.old_value ?? {};
    const after = r.new_value ?? {};
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])]
      .filter((k) => k !== 'updated_at' && JSON.stringify(before[k]) !== JSON.stringify(after[k]))
      .sort();
    return { ...r, change: keys.map((k) => `${k}: ${JSON.stringify(before[k] ?? null)} → ${JSON.stringify(after[k] ?? null)}`).join('; ') };
  });
  print(changed, ['changed_at', 'flag_key', 'operation', 'changed_by', 'via', 'change']);
}

const commands = { list, set, history };
if (!commands[command]) die(`unknown command ${JSON.stringify(command ?? '')}: use list, set or history`);
await commands[command]();
