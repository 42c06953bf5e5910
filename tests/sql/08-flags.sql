-- Feature flags: seeded defaults (fresh and pre-existing databases), targeting,
-- environment, stable percentage buckets.
begin;
create extension if not exists pgtap;
select plan(41);

select tests.create_supabase_user('alice');
select tests.create_supabase_user('bob');

-- Seed ------------------------------------------------------------------------------
-- A fresh database gets fs-sync fully on; a database that had flags (velocity's Phase 0,
-- recorded in fsync.adopted) keeps its rows as they were and gets the missing ones off, except
-- FSYNC_KEEP_CLIENT_BROADCAST, on where FSYNC_USE_RPC existed.
select results_eq($$select flag_key, enabled, rollout_percentage, target_user_ids, environments
                    from public.feature_flags where flag_key like 'FSYNC\_%' order by flag_key$$,
  case when fsync.was_adopted('relation', 'public.feature_flags') then $$
    with kept as (
      select r ->> 'flag_key' as flag_key, (r ->> 'enabled')::boolean as enabled, (r ->> 'rollout_percentage')::int as rollout,
             array(select jsonb_array_elements_text(r -> 'target_user_ids'))::uuid[] as targets,
             coalesce(array(select jsonb_array_elements_text(r -> 'environments')), '{}')::text[] as environments
        from fsync.adopted a, jsonb_array_elements(coalesce(a.state -> 'rows', '[]')) r
       where a.kind = 'relation' and a.name = 'public.feature_flags' and r ->> 'flag_key' like 'FSYNC\_%')
    select * from kept
    union all
    select d.flag_key, d.enabled, case when d.enabled then 100 else 0 end, '{}'::uuid[], '{}'::text[]
      from (values ('FSYNC_USE_RPC', false), ('FSYNC_SERVER_BROADCASTS', false), ('FSYNC_SNAPSHOT_HYDRATION', false),
                   ('FSYNC_BULK_GENERATION', false),
                   ('FSYNC_KEEP_CLIENT_BROADCAST', exists (select 1 from kept where flag_key = 'FSYNC_USE_RPC'))) as d(flag_key, enabled)
     where d.flag_key not in (select flag_key from kept)
    order by 1 $$
  else $$values ('FSYNC_BULK_GENERATION', true, 100, '{}'::uuid[], '{}'::text[]),
           ('FSYNC_KEEP_CLIENT_BROADCAST', false, 0, '{}'::uuid[], '{}'::text[]),
           ('FSYNC_SERVER_BROADCASTS', true, 100, '{}'::uuid[], '{}'::text[]),
           ('FSYNC_SNAPSHOT_HYDRATION', false, 0, '{}'::uuid[], '{}'::text[]),
           ('FSYNC_USE_RPC', true, 100, '{}'::uuid[], '{}'::text[])$$ end,
  'the fs-sync flags as the migration seeded them (fresh: fully on, snapshot hydration and client broadcast off; '
  'adopted: existing rows kept, the missing ones added off)');
-- What the migration seeds on a fresh database (on an adopted one, what it would seed there).
create temp table fresh_seed on commit drop as select * from public.feature_flags;
do $$
begin
  if fsync.was_adopted('relation', 'public.feature_flags') then
    delete from public.feature_flags;
    perform fsync.seed_feature_flags();
    delete from fresh_seed;
    insert into fresh_seed select * from public.feature_flags;
  end if;
end
$$;
-- From here on the flags as a fresh install seeds them, and no others (the app's own).
delete from public.feature_flags f where f.flag_key not in (select flag_key from fresh_seed);
insert into public.feature_flags select * from fresh_seed on conflict (flag_key) do update
  set enabled = excluded.enabled, rollout_percentage = excluded.rollout_percentage,
      target_user_ids = excluded.target_user_ids, environments = excluded.environments;
select tests.authenticate_as('alice');
select is(public.get_enabled_features(), array['FSYNC_BULK_GENERATION', 'FSYNC_SERVER_BROADCASTS', 'FSYNC_USE_RPC'],
          'get_enabled_features lists the three that are on');
select is(public.is_feature_enabled('FSYNC_KEEP_CLIENT_BROADCAST'), false, 'FSYNC_KEEP_CLIENT_BROADCAST is off for a user');
select is(public.is_feature_enabled('NO_SUCH_FLAG'), false, 'an unknown flag is off');
select tests.reset_authentication();

-- The same seed on velocity's Phase-0 shape: flags exist, FSYNC_USE_RPC among them.
delete from public.feature_flags;
insert into public.feature_flags (flag_key, enabled, rollout_percentage, target_user_ids, description)
values ('FSYNC_USE_RPC', true, 10, array[tests.get_supabase_uid('bob')], 'operator''s'),
       ('VELOCITY_OTHER', true, 100, '{}', 'not ours');
select is(fsync.seed_feature_flags(), 4, 'flags exist: the four missing fs-sync flags are inserted');
select results_eq($$select flag_key, enabled, rollout_percentage, target_user_ids, description
                    from public.feature_flags where flag_key in ('FSYNC_USE_RPC', 'VELOCITY_OTHER') order by flag_key$$,
  format($$values ('FSYNC_USE_RPC', true, 10, array[%L]::uuid[], 'operator''s'), ('VELOCITY_OTHER', true, 100, '{}'::uuid[], 'not ours')$$,
         tests.get_supabase_uid('bob')),
  '… existing rows are left as they are');
select results_eq($$select flag_key, enabled, rollout_percentage from public.feature_flags
                    where flag_key not in ('FSYNC_USE_RPC', 'VELOCITY_OTHER') order by flag_key$$,
  $$values ('FSYNC_BULK_GENERATION', false, 0), ('FSYNC_KEEP_CLIENT_BROADCAST', true, 100),
           ('FSYNC_SERVER_BROADCASTS', false, 0), ('FSYNC_SNAPSHOT_HYDRATION', false, 0)$$,
  '… new ones off, except FSYNC_KEEP_CLIENT_BROADCAST (the legacy app broadcasts) at 100%');
select is(fsync.seed_feature_flags(), 0, '… and seeding again changes nothing');
delete from public.feature_flags;
insert into public.feature_flags (flag_key, enabled) values ('VELOCITY_OTHER', false);
select fsync.seed_feature_flags();
select is((select enabled from public.feature_flags where flag_key = 'FSYNC_KEEP_CLIENT_BROADCAST'), false,
          'flags exist but FSYNC_USE_RPC did not: FSYNC_KEEP_CLIENT_BROADCAST starts off too');
delete from public.feature_flags;
select is(fsync.seed_feature_flags(), 5, 'no flag rows: all five are inserted');
select set_eq($$select flag_key, enabled, rollout_percentage, description from public.feature_flags$$,
              $$select flag_key, enabled, rollout_percentage, description from fresh_seed$$,
              '… as the migration seeded this fresh database');

-- Bucketing ---------------------------------------------------------------------------
select is(fsync.flag_bucket('FSYNC_USE_RPC', '00000000-0000-0000-0000-000000000001'), 86,
          'bucket pinned: first 4 bytes of sha256 as unsigned big-endian (f40860da) mod 100');
select is(fsync.flag_bucket('FSYNC_BULK_GENERATION', '11111111-2222-3333-4444-555555555555'), 74, 'bucket pinned (b2006f6e)');
select is(fsync.flag_bucket('X', 'ffffffff-ffff-ffff-ffff-ffffffffffff'), 0, 'bucket pinned (f001291c)');

create temp table synthetic_users on commit drop as
select md5('user-' || i)::uuid as id from generate_series(1, 10000) i;
update public.feature_flags set enabled = true, rollout_percentage = 25 where flag_key = 'FSYNC_USE_RPC';
create temp table at25 on commit drop as
select u.id from synthetic_users u where fsync.is_feature_enabled('FSYNC_USE_RPC', u.id);
select ok((select count(*) from at25) between 2300 and 2700,
          format('10,000 users at 25%% rollout: %s enabled (25%% ± 2%%)', (select count(*) from at25)));
select is_empty($$select u.id from synthetic_users u
                   where fsync.is_feature_enabled('FSYNC_USE_RPC', u.id) <> exists (select 1 from at25 a where a.id = u.id)$$,
                'every user gets the same answer again');
update public.feature_flags set rollout_percentage = 50 where flag_key = 'FSYNC_USE_RPC';
select is_empty($$select a.id from at25 a where not fsync.is_feature_enabled('FSYNC_USE_RPC', a.id)$$,
                'raising the rollout keeps everyone who had the flag');
select ok((select count(*) from synthetic_users u where fsync.is_feature_enabled('FSYNC_USE_RPC', u.id)) between 4800 and 5200,
          '50% rollout lands near 50%');
update public.feature_flags set enabled = true, rollout_percentage = 25 where flag_key = 'FSYNC_BULK_GENERATION';
select ok((select count(*) from at25 a where fsync.is_feature_enabled('FSYNC_BULK_GENERATION', a.id)) between 450 and 800,
          'buckets are independent between flags');

-- Targeting, environment, order of the rules ----------------------------------------------
update public.feature_flags set enabled = false where flag_key in ('FSYNC_USE_RPC', 'FSYNC_BULK_GENERATION');
update public.feature_flags set enabled = true, rollout_percentage = 0, target_user_ids = array[tests.get_supabase_uid('alice')]
 where flag_key = 'FSYNC_SERVER_BROADCASTS';
select tests.authenticate_as('alice');
select is(public.is_feature_enabled('FSYNC_SERVER_BROADCASTS'), true, 'a targeted user gets the flag at 0% (user_id defaults to auth.uid())');
select is(public.get_enabled_features(), array['FSYNC_SERVER_BROADCASTS'], 'get_enabled_features lists it');
select tests.authenticate_as('bob');
select is(public.is_feature_enabled('FSYNC_SERVER_BROADCASTS'), false, 'an untargeted user does not');
select is(public.is_feature_enabled('FSYNC_SERVER_BROADCASTS', tests.get_supabase_uid('alice')), false,
          'a user cannot evaluate a flag for someone else: user_id is ignored, bob is evaluated');
select is(public.is_feature_enabled('FSYNC_SERVER_BROADCASTS', null), false, '… also when user_id is null');
select tests.authenticate_as('alice');
select is(public.is_feature_enabled('FSYNC_SERVER_BROADCASTS', tests.get_supabase_uid('bob')), true,
          '… and alice passing bob''s id is still evaluated as alice');
select tests.authenticate_as_service_role();
select is(public.is_feature_enabled('FSYNC_SERVER_BROADCASTS', tests.get_supabase_uid('alice')), true,
          'the service role evaluates a flag for a given user');
select is(public.is_feature_enabled('FSYNC_SERVER_BROADCASTS', tests.get_supabase_uid('bob')), false,
          '… for any user');
select tests.reset_authentication();
update public.feature_flags set environments = array['production'] where flag_key = 'FSYNC_SERVER_BROADCASTS';
update public.feature_flags set enabled = true, rollout_percentage = 100, environments = array['production', 'staging']
 where flag_key = 'FSYNC_SNAPSHOT_HYDRATION';
select is(fsync.is_feature_enabled('FSYNC_SNAPSHOT_HYDRATION', tests.get_supabase_uid('bob')), false,
          'environment development is not in [production, staging]: off even at 100%');
select is(fsync.is_feature_enabled('FSYNC_SERVER_BROADCASTS', tests.get_supabase_uid('alice')), true,
          'targeting wins over the environment');
update fsync.settings set value = '"staging"' where key = 'environment';
select is(fsync.is_feature_enabled('FSYNC_SNAPSHOT_HYDRATION', tests.get_supabase_uid('bob')), true,
          'in staging the flag is on');
select is(fsync.is_feature_enabled('FSYNC_SNAPSHOT_HYDRATION', null), true, '100% applies without a user too');
update public.feature_flags set enabled = true, rollout_percentage = 99 where flag_key = 'FSYNC_USE_RPC';
select is(fsync.is_feature_enabled('FSYNC_USE_RPC', null), false, 'a partial rollout is off without a user');
update public.feature_flags set enabled = false where flag_key = 'FSYNC_SERVER_BROADCASTS';
select is(fsync.is_feature_enabled('FSYNC_SERVER_BROADCASTS', tests.get_supabase_uid('alice')), false,
          'a disabled flag is off even for targeted users');

-- Who may read and write flags ---------------------------------------------------------------
-- target_user_ids names users: clients ask the RPCs, only the service role reads the table.
select tests.authenticate_as('bob');
select throws_ok($$select flag_key, target_user_ids from public.feature_flags$$, '42501',
                 'permission denied for table feature_flags', 'signed-in users cannot read the flags table');
select throws_ok($$update public.feature_flags set enabled = true$$, '42501', 'permission denied for table feature_flags',
                 'users cannot change flags');
select tests.authenticate_as_container(tests.get_supabase_uid('bob'));
select throws_ok($$select * from public.feature_flags$$, '42501', 'permission denied for table feature_flags',
                 'container tokens cannot read flags');
select tests.authenticate_as_service_role();
select is((select target_user_ids from public.feature_flags where flag_key = 'FSYNC_SERVER_BROADCASTS'),
          array[tests.get_supabase_uid('alice')], 'the service role reads flags, targeting included');
select tests.clear_authentication();
select throws_ok($$select * from public.feature_flags$$, '42501', 'permission denied for table feature_flags', 'anon cannot read flags');
select throws_ok($$select public.is_feature_enabled('FSYNC_USE_RPC', null)$$, '42501',
                 'permission denied for function is_feature_enabled', 'anon cannot evaluate flags');
select tests.authenticate_as_service_role();
select lives_ok($$update public.feature_flags set rollout_percentage = 10 where flag_key = 'FSYNC_USE_RPC'$$,
                'the service role changes flags');
select throws_ok($$update public.feature_flags set rollout_percentage = 101 where flag_key = 'FSYNC_USE_RPC'$$,
                 '23514', null, 'rollout_percentage is 0–100');

select tests.reset_authentication();
select * from finish();
rollback;
