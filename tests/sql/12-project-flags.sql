-- is_feature_enabled_for_project: a flag evaluated for a project's owner, for the service role only.
begin;
create extension if not exists pgtap;
select plan(8);

-- The fs-sync flags as a fresh install seeds them: on a database fs-sync was adopted onto, the
-- operator's rollout (velocity's Phase-0 rows) would decide instead.
update public.feature_flags f
   set enabled = d.enabled, rollout_percentage = case when d.enabled then 100 else 0 end,
       target_user_ids = '{}', environments = '{}'
  from (values ('FSYNC_USE_RPC', true), ('FSYNC_SERVER_BROADCASTS', true), ('FSYNC_BULK_GENERATION', true),
               ('FSYNC_SNAPSHOT_HYDRATION', false), ('FSYNC_KEEP_CLIENT_BROADCAST', false)) as d(flag_key, enabled)
 where f.flag_key = d.flag_key;

select tests.create_supabase_user('owner');
select tests.create_supabase_user('other');
select tests.remember('p', fsync.create_project('flags', tests.get_supabase_uid('owner')));

select tests.authenticate_as_service_role();
select is(public.is_feature_enabled_for_project('FSYNC_SNAPSHOT_HYDRATION', tests.recall('p')), false,
          'a seeded-off flag is off for the project');
select tests.reset_authentication();
update public.feature_flags set enabled = true, target_user_ids = array[tests.get_supabase_uid('owner')]
 where flag_key = 'FSYNC_SNAPSHOT_HYDRATION';
select tests.authenticate_as_service_role();
select is(public.is_feature_enabled_for_project('FSYNC_SNAPSHOT_HYDRATION', tests.recall('p')), true,
          'on when the owner is targeted');
select is(tests.error_of(format('select public.is_feature_enabled_for_project(%L, %L)',
                                'FSYNC_SNAPSHOT_HYDRATION', gen_random_uuid())) ->> 'code',
          'PT404', 'a missing project is PT404');
select tests.reset_authentication();
update public.feature_flags set target_user_ids = array[tests.get_supabase_uid('other')]
 where flag_key = 'FSYNC_SNAPSHOT_HYDRATION';
select tests.authenticate_as_service_role();
select is(public.is_feature_enabled_for_project('FSYNC_SNAPSHOT_HYDRATION', tests.recall('p')), false,
          'another user being targeted does not turn it on for this owner');

select tests.authenticate_as('owner');
select is(tests.error_of(format('select public.is_feature_enabled_for_project(%L, %L)',
                                'FSYNC_SNAPSHOT_HYDRATION', tests.recall('p'))) ->> 'code',
          '42501', 'a user (even the owner) may not call it');
select tests.clear_authentication();
select is(tests.error_of(format('select public.is_feature_enabled_for_project(%L, %L)',
                                'FSYNC_SNAPSHOT_HYDRATION', tests.recall('p'))) ->> 'code',
          '42501', 'anon may not call it');
select tests.authenticate_as_container(tests.recall('p'));
select is(tests.error_of(format('select public.is_feature_enabled_for_project(%L, %L)',
                                'FSYNC_SNAPSHOT_HYDRATION', tests.recall('p'))) ->> 'code',
          '42501', 'a container token may not call it');
select tests.reset_authentication();
select ok(not has_function_privilege('authenticated', 'fsync.is_feature_enabled_for_project(text, uuid)', 'execute'),
          'the definer function is not executable by authenticated');

select * from finish();
rollback;
