-- Realtime authorization on realtime.messages, checked the way Realtime does at
-- channel join: probe rows are inserted by the privileged connection, then
-- selected as the joining role with realtime.topic() set.
begin;
create extension if not exists pgtap;
select plan(22);

-- The fs-sync flags as a fresh install seeds them: on a database fs-sync was adopted onto, the
-- operator's rollout (velocity's Phase-0 rows) would decide instead.
update public.feature_flags f
   set enabled = d.enabled, rollout_percentage = case when d.enabled then 100 else 0 end,
       target_user_ids = '{}', environments = '{}'
  from (values ('FSYNC_USE_RPC', true), ('FSYNC_SERVER_BROADCASTS', true), ('FSYNC_BULK_GENERATION', true),
               ('FSYNC_SNAPSHOT_HYDRATION', false), ('FSYNC_KEEP_CLIENT_BROADCAST', false)) as d(flag_key, enabled)
 where f.flag_key = d.flag_key;

select tests.create_supabase_user('alice');    -- owner of p1
select tests.create_supabase_user('carol');    -- viewer of p1
select tests.create_supabase_user('mallory');  -- owner of p2

select tests.authenticate_as('mallory');
select tests.remember('p2', fsync.create_project('p2'));
select tests.authenticate_as('alice');
select tests.remember('p1', fsync.create_project('p1'));
select fsync.set_project_member(tests.recall('p1'), tests.get_supabase_uid('carol'), 'viewer');

-- A write puts exactly one message on the project's private topic -----------------
select fsync.upsert_project_file(tests.recall('p1'), 'src/App.tsx', 'hello');
select tests.reset_authentication();
-- (the topics of this test's projects: a database in use has other projects' messages)
select results_eq($$select topic, event, private, extension, payload ->> 'file_path', payload ->> 'content' from realtime.messages
                     where split_part(topic, ':', 2) in (tests.recall('p1')::text, tests.recall('p2')::text)$$,
  format($$values ('project:%s', 'file:update', true, 'broadcast', 'src/App.tsx', 'hello')$$, tests.recall('p1')),
  'the write RPC inserted the broadcast row (realtime.send did not fail silently)');

-- Probe rows, as Realtime inserts them for a join check ------------------------------
insert into realtime.messages (topic, extension, payload, event, private)
select 'project:' || tests.recall(p), x, '{}', 'probe', true
  from (values ('p1'), ('p2')) as t(p), (values ('broadcast'), ('presence')) as e(x);

create function pg_temp.visible(p_topic text) returns int language sql volatile as $$
  select set_config('realtime.topic', p_topic, true);
  select count(*)::int from realtime.messages where topic = p_topic and event = 'probe';
$$;

select tests.authenticate_as('alice');
select is(pg_temp.visible('project:' || tests.recall('p1')), 2, 'owner may join project:<p1> (broadcast and presence)');
select is(pg_temp.visible('project:' || tests.recall('p2')), 0, 'owner of p1 may not join project:<p2>');
select tests.authenticate_as('carol');
select is(pg_temp.visible('project:' || tests.recall('p1')), 2, 'a viewer may join (read-only)');
select tests.authenticate_as('mallory');
select is(pg_temp.visible('project:' || tests.recall('p1')), 0, 'a non-member may not join');
select tests.clear_authentication();
select is(pg_temp.visible('project:' || tests.recall('p1')), 0, 'anon may not join');
select tests.authenticate_as_container(tests.recall('p1'));
select is(pg_temp.visible('project:' || tests.recall('p1')), 2, 'a container token may join its project''s topic');
select is(pg_temp.visible('project:' || tests.recall('p2')), 0, 'a container token may not join another project''s topic');
select tests.authenticate_as_container(tests.recall('p1'), 'fsync:write');
select is(pg_temp.visible('project:' || tests.recall('p1')), 0, 'a container token without fsync:read may not join');
select tests.authenticate_as_claims(tests.container_claims(tests.recall('p1')) || '{"sub": "not-a-uuid"}');
select is(pg_temp.visible('project:' || tests.recall('p1')), 2, 'a container sub need not be a uuid');
select tests.authenticate_as('alice');
select is(pg_temp.visible('room:' || tests.recall('p1')), 0, 'the policy grants nothing on other topics');

-- A channel sees only its own topic's rows ------------------------------------------------
-- Realtime sets realtime.topic to the channel's topic; the policies must also compare the
-- row's topic with it, or a member of p1 on project:<p1> could read every topic's rows.
-- (pg_temp.visible above filters by topic itself, which would hide that.)
create function pg_temp.topics_seen(p_topic text) returns text[] language sql volatile as $$
  select set_config('realtime.topic', p_topic, true);
  select coalesce(array_agg(distinct m.topic order by m.topic), '{}') from realtime.messages m;
$$;
select tests.authenticate_as('alice');
select is(pg_temp.topics_seen('project:' || tests.recall('p1')), array['project:' || tests.recall('p1')],
          'a member on project:<p1> reads no other topic''s rows (p2''s rows stay invisible)');
select is((select count(*)::int from realtime.messages), 3, '… exactly p1''s rows: its broadcast and two probes');
select tests.authenticate_as('mallory');
select is(pg_temp.topics_seen('project:' || tests.recall('p2')), array['project:' || tests.recall('p2')],
          'the owner of p2 on project:<p2> cannot read p1''s broadcast');
select tests.authenticate_as_container(tests.recall('p1'));
select is(pg_temp.topics_seen('project:' || tests.recall('p1')), array['project:' || tests.recall('p1')],
          'a container token on its topic reads no other topic''s rows');
select tests.reset_authentication();
insert into realtime.messages (topic, extension, payload, event, private)
values ('room:lobby', 'broadcast', '{}', 'probe', true);
select tests.authenticate_as('alice');
select is(pg_temp.topics_seen('project:' || tests.recall('p1')), array['project:' || tests.recall('p1')],
          'nor rows of non-project topics');

-- Nobody but the write RPCs sends on project:<id> (client edits go to project:<id>:edits,
-- behind FSYNC_KEEP_CLIENT_BROADCAST: 17-flag-effects.sql) ---------------------------------
select tests.authenticate_as('alice');
select set_config('realtime.topic', 'project:' || tests.recall('p1'), true);
select throws_ok(format($$insert into realtime.messages (topic, extension, payload, event, private)
                          values ('project:%s', 'broadcast', '{}', 'file:update', true)$$, tests.recall('p1')),
                 '42501', 'new row violates row-level security policy for table "messages"',
                 'a member cannot broadcast on the project topic');
select throws_ok(format($$insert into realtime.messages (topic, extension, payload, event, private)
                          values ('project:%s', 'presence', '{}', 'track', true)$$, tests.recall('p1')),
                 '42501', 'new row violates row-level security policy for table "messages"',
                 'a member cannot track presence on the project topic');
select tests.authenticate_as_container(tests.recall('p1'));
select set_config('realtime.topic', 'project:' || tests.recall('p1'), true);
select throws_ok(format($$insert into realtime.messages (topic, extension, payload, event, private)
                          values ('project:%s', 'broadcast', '{}', 'file:update', true)$$, tests.recall('p1')),
                 '42501', 'new row violates row-level security policy for table "messages"',
                 'a container cannot broadcast');
select tests.authenticate_as('alice');
set local client_min_messages = error;  -- the expected WarnSendingBroadcastMessage
select realtime.send('{"forged": true}', 'file:update', 'project:' || tests.recall('p1'), true);
set local client_min_messages = notice;
select tests.reset_authentication();
select is((select count(*)::int from realtime.messages where payload ? 'forged'), 0,
          'realtime.send as a client is refused (silently, as upstream) — hence the definer write path');
select is((select count(*)::int from realtime.messages
            where event <> 'probe' and split_part(topic, ':', 2) in (tests.recall('p1')::text, tests.recall('p2')::text)), 1,
          'still exactly one real message');
select is((select string_agg(format('%s %s %s', policyname, cmd, roles), '; ') from pg_policies
            where schemaname = 'realtime' and tablename = 'messages' and cmd <> 'SELECT'),
          'fsync: writers broadcast edits INSERT {authenticated}',
          'the only write policy on realtime.messages is for project:<id>:edits (17-flag-effects.sql)');

select * from finish();
rollback;
