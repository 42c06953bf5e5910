-- Every change to public.feature_flags leaves one audit row: who (the operator
-- header, else the JWT subject, else the database user), through which role,
-- the old and the new row. Only the service role reads the trail.
begin;
create extension if not exists pgtap;
select plan(11);

-- The fs-sync flags as a fresh install seeds them: on a database fs-sync was adopted onto, the
-- operator's rollout (velocity's Phase-0 rows) would decide instead.
update public.feature_flags f
   set enabled = d.enabled, rollout_percentage = case when d.enabled then 100 else 0 end,
       target_user_ids = '{}', environments = '{}'
  from (values ('FSYNC_USE_RPC', true), ('FSYNC_SERVER_BROADCASTS', true), ('FSYNC_BULK_GENERATION', true),
               ('FSYNC_SNAPSHOT_HYDRATION', false), ('FSYNC_KEEP_CLIENT_BROADCAST', false)) as d(flag_key, enabled)
 where f.flag_key = d.flag_key;
-- (which is itself recorded where it changed something: count only what follows)
select set_config('tests.changes_before', (select coalesce(max(id), 0)::text from public.feature_flag_changes), true);

select tests.create_supabase_user('alice');

-- As the operators' command does it: the service role, naming its operator.
select set_config('request.headers', '{"x-fsync-operator": "ops@velocity"}', true);
set local role service_role;
select set_config('request.jwt.claims', '{"role": "service_role"}', true);
update public.feature_flags set rollout_percentage = 10, target_user_ids = array[tests.get_supabase_uid('alice')]
 where flag_key = 'FSYNC_BULK_GENERATION';
select results_eq(
  $$select operation, changed_by, via, (old_value ->> 'rollout_percentage')::int, (new_value ->> 'rollout_percentage')::int
      from public.feature_flag_changes order by id desc limit 1$$,
  $$values ('UPDATE'::text, 'ops@velocity'::text, 'service_role'::text, 100, 10)$$,
  'an update is recorded with the operator, the role, old and new');
select is((select new_value -> 'target_user_ids' ->> 0 from public.feature_flag_changes order by id desc limit 1),
          tests.get_supabase_uid('alice')::text, 'the targeted users are in the new value');

update public.feature_flags set updated_at = now() + interval '1 minute' where flag_key = 'FSYNC_BULK_GENERATION';
select is((select count(*)::int from public.feature_flag_changes
            where flag_key = 'FSYNC_BULK_GENERATION' and id > current_setting('tests.changes_before')::bigint), 1,
          'updated_at alone moving is not recorded');

insert into public.feature_flags (flag_key, enabled, rollout_percentage) values ('APP_NEW_FLAG', true, 5);
delete from public.feature_flags where flag_key = 'APP_NEW_FLAG';
select results_eq(
  $$select operation, old_value is null, new_value is null from public.feature_flag_changes
     where flag_key = 'APP_NEW_FLAG' order by id$$,
  $$values ('INSERT'::text, true, false), ('DELETE'::text, false, true)$$,
  'inserts and deletes are recorded');
reset role;

-- Outside a request (the SQL editor, a migration): the database user.
select set_config('request.headers', '', true);
select set_config('request.jwt.claims', '', true);
update public.feature_flags set enabled = false where flag_key = 'FSYNC_BULK_GENERATION';
select results_eq(
  $$select changed_by, via from public.feature_flag_changes order by id desc limit 1$$,
  format($$values (%L::text, %L::text)$$, session_user, session_user),
  'outside a request the database user is recorded');

-- Clients neither read nor write the trail.
select tests.authenticate_as('alice');
select throws_ok($$select * from public.feature_flag_changes$$, '42501', null, 'authenticated cannot read the trail');
select throws_ok($$insert into public.feature_flag_changes (flag_key, operation, changed_by, via) values ('x', 'INSERT', 'me', 'me')$$,
                 '42501', null, 'authenticated cannot write the trail');
select tests.clear_authentication();
select throws_ok($$select * from public.feature_flag_changes$$, '42501', null, 'anon cannot read the trail');
set local role service_role;
select throws_ok($$delete from public.feature_flag_changes$$, '42501', null, 'the service role cannot erase the trail');
select lives_ok($$select * from public.feature_flag_changes$$, 'the service role reads the trail');
reset role;
select is((select relrowsecurity from pg_class where oid = 'public.feature_flag_changes'::regclass), true, 'RLS is on');

select * from finish();
rollback;
