-- Rate limit: a token bucket per (user, project) on write RPCs; PT429 with
-- retry_after_ms; the service role is exempt.
begin;
create extension if not exists pgtap;
select plan(13);

-- The fs-sync flags as a fresh install seeds them: on a database fs-sync was adopted onto, the
-- operator's rollout (velocity's Phase-0 rows) would decide instead.
update public.feature_flags f
   set enabled = d.enabled, rollout_percentage = case when d.enabled then 100 else 0 end,
       target_user_ids = '{}', environments = '{}'
  from (values ('FSYNC_USE_RPC', true), ('FSYNC_SERVER_BROADCASTS', true), ('FSYNC_BULK_GENERATION', true),
               ('FSYNC_SNAPSHOT_HYDRATION', false), ('FSYNC_KEEP_CLIENT_BROADCAST', false)) as d(flag_key, enabled)
 where f.flag_key = d.flag_key;

select tests.create_supabase_user('alice');
select tests.create_supabase_user('bob');
select tests.authenticate_as('alice');
select tests.remember('p1', fsync.create_project('p1'));
select tests.remember('p2', fsync.create_project('p2'));
select fsync.set_project_member(tests.recall('p1'), tests.get_supabase_uid('bob'), 'editor');

select tests.reset_authentication();
select is((select value from fsync.settings where key = 'rate_limit.capacity'), '200'::jsonb, 'default capacity 200');
select is((select value from fsync.settings where key = 'rate_limit.refill_per_second'), '50'::jsonb, 'default refill 50/s');
-- A bucket of 3 that practically never refills.
update fsync.settings set value = '3' where key = 'rate_limit.capacity';
update fsync.settings set value = '0.001' where key = 'rate_limit.refill_per_second';

select tests.authenticate_as('alice');
select lives_ok(format($$select fsync.upsert_project_file(%L, 'a.ts', 'v' || i) from generate_series(1, 3) i$$, tests.recall('p1')),
                'three writes fit in the bucket');
select throws_ok(format($$select fsync.upsert_project_file(%L, 'a.ts', 'v4')$$, tests.recall('p1')),
                 'PT429', 'too many writes to this project: wait a moment and retry', 'the fourth write → PT429');
select ok((select (e ->> 'detail')::jsonb ->> 'retry_after_ms' ~ '^[1-9][0-9]*$'
             from tests.error_of(format($$select fsync.upsert_project_file(%L, 'a.ts', 'v4')$$, tests.recall('p1'))) e),
          'PT429 DETAIL carries a positive integer retry_after_ms');
select cmp_ok((select ((e ->> 'detail')::jsonb ->> 'retry_after_ms')::bigint
                 from tests.error_of(format($$select fsync.upsert_project_file(%L, 'a.ts', 'v4')$$, tests.recall('p1'))) e),
              '>', 900000::bigint, 'retry_after_ms reflects the refill rate (1 token at 0.001/s ≈ 1000 s)');
select throws_ok(format($$select fsync.delete_project_file(%L, 'a.ts')$$, tests.recall('p1')), 'PT429', null,
                 'deletes are limited too');
select throws_ok(format($$select fsync.bulk_upsert_project_files(%L, '[{"file_path": "b.ts", "content": "b"}]')$$, tests.recall('p1')),
                 'PT429', null, 'bulks are limited too');
select tests.reset_authentication();
select cmp_ok((select tokens from fsync.rate_limit_buckets where subject = tests.get_supabase_uid('alice')::text
                 and project_id = tests.recall('p1')), '>=', 0::float8, 'refused calls consumed nothing');
select is((select version from public.project_files where file_path = 'a.ts' and is_current_version), 3,
          'refused calls wrote nothing');

select tests.authenticate_as('alice');
select lives_ok(format($$select fsync.upsert_project_file(%L, 'a.ts', 'other project')$$, tests.recall('p2')),
                'buckets are per project');
select tests.authenticate_as('bob');
select lives_ok(format($$select fsync.upsert_project_file(%L, 'bob.ts', 'bob')$$, tests.recall('p1')),
                'buckets are per user');
select tests.authenticate_as_service_role();
select lives_ok(format($$select fsync.upsert_project_file(%L, 'svc.ts', 'v' || i) from generate_series(1, 20) i$$, tests.recall('p1')),
                'the service role is exempt');

select tests.reset_authentication();
select * from finish();
rollback;
