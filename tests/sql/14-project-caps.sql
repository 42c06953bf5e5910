-- Project caps: limits.max_project_files and limits.max_project_bytes (a
-- container must be able to hold every project). Every write path keeps the
-- running totals projects.live_files/live_bytes; a write that grows one past
-- its cap is PT413 and leaves nothing; bulks and renames count by their net
-- change; a write that does not grow a total is never refused by it.
begin;
create extension if not exists pgtap;
select plan(34);

-- The fs-sync flags as a fresh install seeds them: on a database fs-sync was adopted onto, the
-- operator's rollout (velocity's Phase-0 rows) would decide instead.
update public.feature_flags f
   set enabled = d.enabled, rollout_percentage = case when d.enabled then 100 else 0 end,
       target_user_ids = '{}', environments = '{}'
  from (values ('FSYNC_USE_RPC', true), ('FSYNC_SERVER_BROADCASTS', true), ('FSYNC_BULK_GENERATION', true),
               ('FSYNC_SNAPSHOT_HYDRATION', false), ('FSYNC_KEEP_CLIENT_BROADCAST', false)) as d(flag_key, enabled)
 where f.flag_key = d.flag_key;

select tests.create_supabase_user('alice');
select tests.authenticate_as('alice');
select tests.remember('p1', fsync.create_project('p1'));
select set_config('tests.asset', 'project-assets/' || tests.recall('p1') || '/', true);

-- The totals follow every write path ----------------------------------------------
select fsync.upsert_project_file(tests.recall('p1'), 'a.ts', 'aaa');
select tests.reset_authentication();
select results_eq($$select live_files, live_bytes from public.projects where id = tests.recall('p1')$$,
                  $$values (1::bigint, 3::bigint)$$, 'a new file adds one file and its bytes');
select tests.authenticate_as('alice');
select fsync.upsert_project_file(tests.recall('p1'), 'a.ts', 'aaaaa');
select fsync.upsert_project_file(tests.recall('p1'), 'a.ts', 'aaaaa');
select fsync.register_binary_file(tests.recall('p1'), 'img.png', current_setting('tests.asset') || 'img.png',
                                  repeat('ab', 32), 100);
select tests.reset_authentication();
select results_eq($$select live_files, live_bytes from public.projects where id = tests.recall('p1')$$,
                  $$values (2::bigint, 105::bigint)$$, 'a new version counts its size instead of the old one; a no-op nothing; a binary its size_bytes');
select tests.authenticate_as('alice');
select fsync.rename_project_file(tests.recall('p1'), 'a.ts', 'b.ts');
select tests.reset_authentication();
select results_eq($$select live_files, live_bytes from public.projects where id = tests.recall('p1')$$,
                  $$values (2::bigint, 105::bigint)$$, 'a rename changes nothing');
select tests.authenticate_as('alice');
select fsync.delete_project_file(tests.recall('p1'), 'b.ts');
select fsync.delete_project_file(tests.recall('p1'), 'b.ts');
select tests.reset_authentication();
select results_eq($$select live_files, live_bytes from public.projects where id = tests.recall('p1')$$,
                  $$values (1::bigint, 100::bigint)$$, 'a delete removes the file and its bytes; deleting a tombstone nothing');
select tests.authenticate_as('alice');
select fsync.bulk_upsert_project_files(tests.recall('p1'), '[
  {"file_path": "c.ts", "content": "cc"}, {"file_path": "d.ts", "content": "d"}, {"file_path": "img.png", "delete": true}]');
select fsync.upsert_project_file(tests.recall('p1'), 'b.ts', 'bb', null, 0);
select tests.reset_authentication();
select results_eq($$select live_files, live_bytes from public.projects where id = tests.recall('p1')$$,
                  $$values (3::bigint, 5::bigint)$$, 'a bulk counts each entry; re-creating a deleted path adds it again');
select results_eq($$select live_files, live_bytes from public.projects where id = tests.recall('p1')$$,
                  $$select count(*), coalesce(sum(size_bytes), 0)::bigint from public.project_files
                     where project_id = tests.recall('p1') and is_current_version and not is_deleted$$,
                  'the running totals equal a recount of the live heads');

-- limits.max_project_files ----------------------------------------------------------
update fsync.settings set value = '3' where key = 'limits.max_project_files';
select set_config('tests.seq_before', (select last_seq::text from public.projects where id = tests.recall('p1')), true);
select tests.authenticate_as('alice');
select throws_ok(format($$select fsync.upsert_project_file(%L, 'e.ts', 'e')$$, tests.recall('p1')),
  'PT413', format('project %s is full: this write would take it from 3 to 4 files; the limit is 3 files', tests.recall('p1')),
  'a new file past the cap → PT413 naming the current and would-be count and the limit');
select is((tests.error_of(format($$select fsync.upsert_project_file(%L, 'e.ts', 'e')$$, tests.recall('p1'))) ->> 'detail')::jsonb,
          '{"limit": 3, "actual": 4, "current": 3, "what": "project_files"}'::jsonb,
          'PT413 DETAIL is {limit, actual, current, what: project_files}');
select is(tests.error_of(format($$select fsync.register_binary_file(%L, 'x.png', %L, repeat('ab', 32), 1)$$,
                                tests.recall('p1'), current_setting('tests.asset') || 'x.png')) ->> 'code',
          'PT413', 'a new binary past the cap → PT413');
select is((tests.error_of(format($$select fsync.bulk_upsert_project_files(%L, '[{"file_path": "g.ts", "content": "g"},
                                   {"file_path": "h.ts", "content": "h"}, {"file_path": "d.ts", "delete": true}]')$$,
                                 tests.recall('p1'))) ->> 'detail')::jsonb,
          '{"limit": 3, "actual": 4, "current": 3, "what": "project_files"}'::jsonb,
          'a bulk growing the count by its net change past the cap → PT413');
select tests.reset_authentication();
select is((select count(*)::int from public.project_files where file_path in ('e.ts', 'x.png', 'g.ts', 'h.ts')), 0,
          'refused writes leave no row');
select is((select last_seq from public.projects where id = tests.recall('p1')), current_setting('tests.seq_before')::bigint,
          'refused writes take no seq');
select results_eq($$select live_files, live_bytes from public.projects where id = tests.recall('p1')$$,
                  $$values (3::bigint, 5::bigint)$$, 'refused writes leave the totals');
select tests.authenticate_as('alice');
select lives_ok(format($$select fsync.upsert_project_file(%L, 'c.ts', 'changed')$$, tests.recall('p1')),
                'at the cap, an existing file may change');
select lives_ok(format($$select fsync.rename_project_file(%L, 'c.ts', 'e.ts')$$, tests.recall('p1')),
                'at the cap, a file may be renamed');
select lives_ok(format($$select fsync.bulk_upsert_project_files(%L, '[{"file_path": "f.ts", "content": "f"},
                           {"file_path": "e.ts", "delete": true}]')$$, tests.recall('p1')),
                'at the cap, a bulk that adds as many files as it deletes applies (net change, in any order)');
select lives_ok(format($$select fsync.delete_project_file(%L, 'f.ts')$$, tests.recall('p1')), 'at the cap, a file may be deleted');
select lives_ok(format($$select fsync.upsert_project_file(%L, 'g.ts', 'g')$$, tests.recall('p1')),
                'which makes room for a new one');
select tests.authenticate_as_service_role();
select is(tests.error_of(format($$select fsync.upsert_project_file(%L, 'svc.ts', 's')$$, tests.recall('p1'))) ->> 'code',
          'PT413', 'the service role is held to the caps too');

-- A cap lowered below what a project holds: it may shrink, not grow --------------------
select tests.reset_authentication();
update fsync.settings set value = '1' where key = 'limits.max_project_files';
select tests.authenticate_as('alice');
select lives_ok(format($$select fsync.upsert_project_file(%L, 'g.ts', 'gg')$$, tests.recall('p1')),
                'over a lowered cap, a file may still change');
select lives_ok(format($$select fsync.delete_project_file(%L, 'g.ts')$$, tests.recall('p1')),
                'over a lowered cap, a file may still be deleted');
select is((tests.error_of(format($$select fsync.upsert_project_file(%L, 'n.ts', 'n')$$, tests.recall('p1'))) ->> 'detail')::jsonb,
          '{"limit": 1, "actual": 3, "current": 2, "what": "project_files"}'::jsonb, 'but not grow');
select tests.reset_authentication();
update fsync.settings set value = '65534' where key = 'limits.max_project_files';

-- limits.max_project_bytes -------------------------------------------------------------
select results_eq($$select live_files, live_bytes from public.projects where id = tests.recall('p1')$$,
                  $$values (2::bigint, 3::bigint)$$, 'b.ts (2 bytes) and d.ts (1 byte) are live');
update fsync.settings set value = '6' where key = 'limits.max_project_bytes';
select tests.authenticate_as('alice');
select lives_ok(format($$select fsync.upsert_project_file(%L, 'b.ts', 'bbbbb')$$, tests.recall('p1')),
                'growing up to the byte cap is allowed (6 of 6)');
select throws_ok(format($$select fsync.upsert_project_file(%L, 'b.ts', 'bbbbbb')$$, tests.recall('p1')),
  'PT413', format('project %s is full: this write would take its files from 6 to 7 bytes; the limit is 6 bytes', tests.recall('p1')),
  'one byte more → PT413 naming the current and would-be bytes and the limit');
select is((tests.error_of(format($$select fsync.upsert_project_file(%L, 'z.ts', 'z')$$, tests.recall('p1'))) ->> 'detail')::jsonb,
          '{"limit": 6, "actual": 7, "current": 6, "what": "project_bytes"}'::jsonb,
          'a new file counts its bytes: DETAIL {limit, actual, current, what: project_bytes}');
select is((tests.error_of(format($$select fsync.register_binary_file(%L, 'big.png', %L, repeat('ab', 32), 1073741824)$$,
                                 tests.recall('p1'), current_setting('tests.asset') || 'big.png')) ->> 'detail')::jsonb
            ->> 'what',
          'project_bytes', 'binaries count by their size_bytes');
select is(tests.error_of(format($$select fsync.rename_project_file(%L, 'b.ts', 'bee.ts')$$, tests.recall('p1'))), null,
          'at the byte cap, a rename is allowed');
select is(tests.error_of(format($$select fsync.bulk_upsert_project_files(%L, '[{"file_path": "y.ts", "content": "yyy"},
                                  {"file_path": "bee.ts", "delete": true}]')$$, tests.recall('p1'))), null,
          'a bulk adding 3 bytes and deleting 5 applies at the byte cap');
select is((tests.error_of(format($$select fsync.bulk_upsert_project_files(%L, '[{"file_path": "y.ts", "delete": true},
                                   {"file_path": "w.ts", "content": "wwwwww"}]')$$, tests.recall('p1'))) ->> 'detail')::jsonb,
          '{"limit": 6, "actual": 7, "current": 4, "what": "project_bytes"}'::jsonb,
          'a bulk growing the bytes by its net change past the cap → PT413');
select lives_ok(format($$select fsync.upsert_project_file(%L, 'y.ts', 'y')$$, tests.recall('p1')),
                'a smaller version always fits');
select tests.reset_authentication();
select results_eq($$select live_files, live_bytes from public.projects where id = tests.recall('p1')$$,
                  $$select count(*), coalesce(sum(size_bytes), 0)::bigint from public.project_files
                     where project_id = tests.recall('p1') and is_current_version and not is_deleted$$,
                  'after all of it, the running totals still equal a recount');

-- Through the public RPC: the same refusal, as HTTP 413 ---------------------------------
select tests.authenticate_as('alice');
select is((tests.error_of(format($$select public.upsert_project_file(json_build_object(
             'project_uuid', %L, 'p_file_path', 'public.ts', 'p_content', repeat('p', 20)))$$, tests.recall('p1')))
           - 'message' - 'hint'),
          jsonb_build_object('code', 'PT413', 'detail', '{"what": "project_bytes", "limit": 6, "actual": 22, "current": 2}'),
          'the public RPC refuses with the same PT413');
select tests.reset_authentication();
select results_eq($$select * from fsync.project_caps()$$, $$values (6::bigint, 65534::bigint)$$,
                  'fsync.project_caps() reads the settings');

select * from finish();
rollback;
