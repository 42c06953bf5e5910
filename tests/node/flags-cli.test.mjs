// The operators' flag command (npm run flags, scripts/flags.mjs) against fs-sync-dev addressed by
// URL and service key only: set, list, history, the audit row the database records for each
// change, the change taking effect for the targeted user, and clear refusals of bad input.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { startSystem, newUser, client, root } from '../harness/index.mjs';

let sys;
let user;

before(async () => {
  sys = await startSystem({ edge: false });
  user = await newUser(sys);
});

after(async () => {
  assert.deepEqual(await sys?.close(), { code: 0, signal: null });
});

function flags(args, { key = sys.info.service_role_key } = {}) {
  return spawnSync(process.execPath, [join(root, 'scripts/flags.mjs'), ...args,
    '--supabase-url', sys.info.api_url, '--service-key', key, '--operator', 'ops-test'], { encoding: 'utf8' });
}

test('set changes the flag, records who changed what, and takes effect for the targeted user', async () => {
  const db = client(sys, user);
  sys.sql("update public.feature_flags set enabled = true, rollout_percentage = 0, target_user_ids = '{}' where flag_key = 'FSYNC_KEEP_CLIENT_BROADCAST'");
  assert.equal((await db.rpc('is_feature_enabled', { flag_key: 'FSYNC_KEEP_CLIENT_BROADCAST' })).data, false);
  const r = flags(['set', 'FSYNC_KEEP_CLIENT_BROADCAST', '--rollout', '10', '--users', user.id]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /FSYNC_KEEP_CLIENT_BROADCAST\s+true\s+10\s+/);
  assert.equal((await db.rpc('is_feature_enabled', { flag_key: 'FSYNC_KEEP_CLIENT_BROADCAST' })).data, true);
  const audit = JSON.parse(sys.sql(`select row_to_json(c) from public.feature_flag_changes c
                                     where flag_key = 'FSYNC_KEEP_CLIENT_BROADCAST' order by id desc limit 1`));
  assert.equal(audit.changed_by, 'ops-test');
  assert.equal(audit.via, 'service_role');
  assert.equal(audit.old_value.rollout_percentage, 0);
  assert.equal(audit.new_value.rollout_percentage, 10);
  assert.deepEqual(audit.new_value.target_user_ids, [user.id]);

  const h = flags(['history', 'FSYNC_KEEP_CLIENT_BROADCAST', '--limit', '1']);
  assert.equal(h.status, 0, h.stderr);
  assert.match(h.stdout, /ops-test\s+service_role\s+rollout_percentage: 0 → 10; target_user_ids: \[\] → \["[0-9a-f-]{36}"\]/);

  const off = flags(['set', 'FSYNC_KEEP_CLIENT_BROADCAST', '--remove-users', user.id, '--disabled']);
  assert.equal(off.status, 0, off.stderr);
  assert.equal((await db.rpc('is_feature_enabled', { flag_key: 'FSYNC_KEEP_CLIENT_BROADCAST' })).data, false);
});

test('list shows every fs-sync flag', () => {
  const r = flags(['list', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const keys = JSON.parse(r.stdout).map((f) => f.flag_key);
  for (const k of ['FSYNC_USE_RPC', 'FSYNC_SERVER_BROADCASTS', 'FSYNC_SNAPSHOT_HYDRATION', 'FSYNC_BULK_GENERATION', 'FSYNC_KEEP_CLIENT_BROADCAST']) {
    assert.ok(keys.includes(k), k);
  }
});

test('bad input is refused with a message naming it, and changes nothing', () => {
  const before = sys.sql("select count(*) from public.feature_flag_changes");
  const cases = [
    [['set', 'FSYNC_NO_SUCH_FLAG', '--enabled'], /no flag FSYNC_NO_SUCH_FLAG/],
    [['set', 'FSYNC_USE_RPC', '--rollout', '101'], /--rollout must be an integer from 0 to 100/],
    [['set', 'FSYNC_USE_RPC', '--users', 'alice'], /--users: "alice" is not a user uuid/],
    [['set', 'FSYNC_USE_RPC'], /nothing to change/],
    [['set', 'FSYNC_USE_RPC', '--enabled', '--disabled'], /contradict/],
    [['frobnicate'], /unknown command "frobnicate"/],
  ];
  for (const [args, message] of cases) {
    const r = flags(args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stdout}`);
    assert.match(r.stderr, message);
  }
  const wrongKey = flags(['list'], { key: sys.info.anon_key });
  assert.equal(wrongKey.status, 2);
  assert.match(wrongKey.stderr, /reading feature_flags: .*\(HTTP 40[13]/);
  assert.equal(sys.sql("select count(*) from public.feature_flag_changes"), before);
});
