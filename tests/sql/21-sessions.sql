-- Container sessions (migrations/*_fsync-sessions.sql): a container token is
-- accepted by the read RPCs, the project-assets read policy and the realtime
-- join policy only while its session is live; ended (revoked), expired (past
-- its maximum age) and deleted-project sessions are refused, each with an error
-- naming why. The session RPCs are the service role's alone.
begin;
create extension if not exists pgtap;
select plan(58);

-- The fs-sync flags as a fresh install seeds them (an adopted database has the operator's).
update public.feature_flags f
   set enabled = d.enabled, rollout_percentage = case when d.enabled then 100 else 0 end,
       target_user_ids = '{}', environments = '{}'
  from (values ('FSYNC_USE_RPC', true), ('FSYNC_SERVER_BROADCASTS', true), ('FSYNC_BULK_GENERATION', true),
               ('FSYNC_SNAPSHOT_HYDRATION', false), ('FSYNC_KEEP_CLIENT_BROADCAST', false)) as d(flag_key, enabled)
 where f.flag_key = d.flag_key;

select tests.create_supabase_user('alice');    -- owner of p1 and p2
select tests.authenticate_as('alice');
select tests.remember('p1', fsync.create_project('p1'));
select tests.remember('p2', fsync.create_project('p2'));
select fsync.upsert_project_file(tests.recall('p1'), 'src/App.tsx', 'export {}');
select fsync.upsert_project_file(tests.recall('p2'), 'src/App.tsx', 'export {}');
select tests.reset_authentication();
insert into storage.objects (bucket_id, name) values
  ('project-assets', tests.recall('p1') || '/blobs/logo.png'),
  ('project-assets', tests.recall('p2') || '/blobs/logo.png');
-- Realtime's join probes (tests/sql/07-realtime.sql): one broadcast, one presence per topic.
insert into realtime.messages (topic, extension, payload, event, private)
select 'project:' || tests.recall(p), x, '{}', 'probe', true
  from (values ('p1'), ('p2')) as t(p), (values ('broadcast'), ('presence')) as e(x);

-- Acting as a container token of session p_session for project p_project.
create function pg_temp.as_container(p_session text, p_project uuid) returns void language sql as $$
  select tests.authenticate_as_claims(jsonb_build_object(
    'role', 'fsync_container', 'sub', p_session, 'session_id', p_session, 'project_id', p_project,
    'scope', 'fsync:read', 'iat', extract(epoch from now())::bigint, 'exp', extract(epoch from now())::bigint + 900))
$$;
-- The errors of the five read RPCs (null entries: it answered), as "code: message", deduplicated.
create function pg_temp.read_refusals(p_project uuid) returns text[] language sql volatile as $$
  select array_agg(distinct coalesce(e ->> 'code' || ': ' || (e ->> 'message'), 'ok'))
    from unnest(array[
      format($f$select * from public.list_current_files(json_build_object('project_uuid', %L))$f$, p_project),
      format($f$select public.get_project_snapshot(json_build_object('project_uuid', %L))$f$, p_project),
      format($f$select * from public.get_project_files(json_build_object('project_uuid', %L))$f$, p_project),
      format($f$select * from public.list_project_events(json_build_object('project_uuid', %L, 'after_seq', 0))$f$, p_project),
      format($f$select public.get_project_sync_state(json_build_object('project_uuid', %L))$f$, p_project)]) as s,
    lateral tests.error_of(s) as e
$$;
-- What the container reads of storage.objects (this test's objects), and whether it may join its topic.
create function pg_temp.objects() returns int language sql volatile as $$
  select count(*)::int from storage.objects
   where name in (tests.recall('p1') || '/blobs/logo.png', tests.recall('p2') || '/blobs/logo.png')
$$;
create function pg_temp.visible(p_project uuid) returns int language sql volatile as $$
  select set_config('realtime.topic', 'project:' || p_project, true);
  select count(*)::int from realtime.messages where topic = 'project:' || p_project and event = 'probe';
$$;

-- Opening -----------------------------------------------------------------------------------
select tests.authenticate_as_service_role();
select is((s ->> 'expires_at')::timestamptz, now() + interval '600 seconds', 'a session expires max_age_seconds after it opens')
  from public.open_container_session(json_build_object('project_uuid', tests.recall('p1'), 'session_id', 's-live',
                                                       'max_age_seconds', 600)) as s;
select is((select s ->> 'live' from public.open_container_session(json_build_object('project_uuid', tests.recall('p1'),
                                                                 'session_id', 's-default')) as s),
          'true', 'max_age_seconds is optional');
select is((select (s ->> 'expires_at')::timestamptz from public.open_container_session(json_build_object(
             'project_uuid', tests.recall('p1'), 'session_id', 's-default')) as s),
          now() + interval '12 hours', '… 12 hours by default; opening a live id again returns it unchanged');
select public.open_container_session(json_build_object('project_uuid', tests.recall('p1'), 'session_id', s))
  from unnest(array['s-ended', 's-expired']) as s;
select public.open_container_session(json_build_object('project_uuid', tests.recall('p2'), 'session_id', 's-deleted'));
select throws_ok(format($$select public.open_container_session(json_build_object('project_uuid', %L, 'session_id', 'x'))$$,
                        '00000000-0000-4000-8000-000000000000'),
                 'PT404', 'project 00000000-0000-4000-8000-000000000000 not found', 'a session needs an existing project');
select throws_ok(format($$select public.open_container_session(json_build_object('project_uuid', %L, 'session_id', 'a b'))$$,
                        tests.recall('p1')),
                 'PT422', 'invalid session_id: use 1 to 128 characters of A-Z, a-z, 0-9, ''.'', ''_'', '':'' or ''-''',
                 'session ids are the edge''s');
select throws_ok(format($$select public.open_container_session(json_build_object('project_uuid', %L, 'session_id', 'y', 'max_age_seconds', 0))$$,
                        tests.recall('p1')),
                 'PT422', 'invalid max_age_seconds: must be an integer from 1 to 2592000; got 0', 'a maximum age is positive');
select throws_ok(format($$select public.open_container_session(json_build_object('project_uuid', %L, 'session_id', 's-live'))$$,
                        tests.recall('p2')),
                 'PT422', 'invalid session_id: session s-live was already used (for another project); open a new session id',
                 'a session id belongs to one project');

-- Ending, expiring, deleting the project -------------------------------------------------------
select is((select s ->> 'ended_reason' from public.end_container_session(json_build_object('session_id', 's-ended')) as s),
          'revoked', 'end_container_session ends a session (reason revoked by default)');
select is((select s ->> 'already_ended' from public.end_container_session(json_build_object('session_id', 's-ended',
                                                                                             'reason', 'again')) as s),
          'true', 'ending it again changes nothing (idempotent)');
select tests.reset_authentication();
select is((select s.ended_reason from fsync.sessions s where s.session_id = 's-ended'), 'revoked', '… the first reason stays');
select tests.authenticate_as_service_role();
select throws_ok($$select public.end_container_session(json_build_object('session_id', 'never-opened'))$$,
                 'PT404', 'container session never-opened not found', 'ending an unknown session is PT404');
select throws_ok(format($$select public.open_container_session(json_build_object('project_uuid', %L, 'session_id', 's-ended'))$$,
                        tests.recall('p1')),
                 'PT422', 'invalid session_id: session s-ended was already used (ended); open a new session id',
                 'an ended session is never reopened');
select tests.reset_authentication();
-- Its maximum age passed (now() is the transaction's start, so the clock moves by editing the row).
update fsync.sessions set created_at = now() - interval '2 hours', expires_at = now() - interval '1 second'
 where session_id = 's-expired';
delete from public.projects where id = tests.recall('p2');
select is((select count(*)::int from fsync.sessions where session_id = 's-deleted'), 0,
          'deleting a project deletes its sessions');

-- A live session reads ----------------------------------------------------------------------
select pg_temp.as_container('s-live', tests.recall('p1'));
select is(pg_temp.read_refusals(tests.recall('p1')), array['ok'], 'live: every read RPC answers');
select is(pg_temp.objects(), 1, 'live: the container reads its project''s assets');
select is(pg_temp.visible(tests.recall('p1')), 2, 'live: the container may join its project''s topic');
select ok(fsync.session_live('s-live', tests.recall('p1')), 'live: session_live');
select ok(not fsync.session_live('s-default', tests.recall('p1')),
          'session_live answers a container about its own session only');
select ok(not fsync.session_live('s-live', tests.recall('p2')), '… and for its own project only');

-- … a dead one does not -----------------------------------------------------------------------
select pg_temp.as_container('s-ended', tests.recall('p1'));
select matches(array_to_string(pg_temp.read_refusals(tests.recall('p1')), ' | '),
               '^42501: access denied: container session s-ended was ended at \S+ \(revoked\)$',
               'ended: every read RPC is refused, naming the session and why');
select is(pg_temp.objects(), 0, 'ended: no storage read');
select is(pg_temp.visible(tests.recall('p1')), 0, 'ended: no realtime join (nor a token refresh on a joined channel)');
select is((tests.error_of(format($$select public.get_project_sync_state(json_build_object('project_uuid', %L))$$,
                                 tests.recall('p1'))) ->> 'detail')::jsonb,
          '{"reason": "session_ended", "session_id": "s-ended"}'::jsonb, 'ended: DETAIL says session_ended');

select pg_temp.as_container('s-expired', tests.recall('p1'));
select matches(array_to_string(pg_temp.read_refusals(tests.recall('p1')), ' | '),
               '^42501: access denied: container session s-expired expired at \S+ \(its maximum age\)$',
               'expired: every read RPC is refused, naming the session and why');
select is(pg_temp.objects(), 0, 'expired: no storage read');
select is(pg_temp.visible(tests.recall('p1')), 0, 'expired: no realtime join');
select is((tests.error_of(format($$select public.list_current_files(json_build_object('project_uuid', %L))$$,
                                 tests.recall('p1'))) ->> 'detail')::jsonb,
          '{"reason": "session_expired", "session_id": "s-expired"}'::jsonb, 'expired: DETAIL says session_expired');

select pg_temp.as_container('s-deleted', tests.recall('p2'));
select is(pg_temp.read_refusals(tests.recall('p2')),
          array[format('PT404: project %s not found', tests.recall('p2'))],
          'deleted project: every read RPC answers project not found');
select is(pg_temp.objects(), 0, 'deleted project: no storage read (its leftover objects stay unreadable)');
select is(pg_temp.visible(tests.recall('p2')), 0, 'deleted project: no realtime join');

select pg_temp.as_container('never-opened', tests.recall('p1'));
select is(pg_temp.read_refusals(tests.recall('p1')),
          array[format('42501: access denied: container session never-opened is unknown for project %s (never opened through the edge, or the project was deleted)',
                       tests.recall('p1'))],
          'unknown: a token with the right claims but no session is refused');
select is(pg_temp.objects(), 0, 'unknown: no storage read');
select is(pg_temp.visible(tests.recall('p1')), 0, 'unknown: no realtime join');
select tests.authenticate_as_claims(jsonb_build_object('role', 'fsync_container', 'sub', 's-live',
                                                       'project_id', tests.recall('p1'), 'scope', 'fsync:read'));
select is(pg_temp.read_refusals(tests.recall('p1')),
          array['42501: access denied: the container token has no session_id claim'],
          'a container token without a session_id claim is refused');
select is(pg_temp.objects() + pg_temp.visible(tests.recall('p1')), 0, '… by the policies too');

-- What the edge asks --------------------------------------------------------------------------
select tests.authenticate_as_service_role();
create function pg_temp.check(p_session text, p_project uuid) returns jsonb language sql volatile as $$
  select public.check_container_session(json_build_object('session_id', p_session, 'project_uuid', p_project))::jsonb
$$;
select is(pg_temp.check('s-live', tests.recall('p1')) - array['created_at', 'expires_at', 'last_refresh_at'],
          jsonb_build_object('live', true, 'reason', null, 'session_id', 's-live', 'project_id', tests.recall('p1'),
                             'ended_at', null, 'ended_reason', null, 'snapshot_id', null, 'as_of_seq', null,
                             'hydration_enabled', false),
          'check: live, and whether snapshot hydration is on for the project''s owner');
select is(pg_temp.check('s-ended', tests.recall('p1')) ->> 'reason', 'session_ended', 'check: session_ended');
select is(pg_temp.check('s-expired', tests.recall('p1')) ->> 'reason', 'session_expired', 'check: session_expired');
select is(pg_temp.check('s-deleted', tests.recall('p2')) ->> 'reason', 'project_not_found', 'check: project_not_found');
select is(pg_temp.check('never-opened', tests.recall('p1')) ->> 'reason', 'session_unknown', 'check: session_unknown');
select is(pg_temp.check('s-live', tests.recall('p2')) ->> 'reason', 'project_not_found',
          'check: a token naming another (deleted) project than its session''s is not live');
select is((public.check_container_session(json_build_object('session_id', 's-live'))::jsonb) ->> 'live', 'true',
          'check: project_uuid is optional');
update public.feature_flags set enabled = true, target_user_ids = array[tests.get_supabase_uid('alice')]
 where flag_key = 'FSYNC_SNAPSHOT_HYDRATION';
select is(pg_temp.check('s-live', tests.recall('p1')) ->> 'hydration_enabled', 'true', 'check: hydration_enabled follows the flag');
select is((public.check_container_session(json_build_object('session_id', 's-live', 'refresh', true))::jsonb
           ->> 'last_refresh_at')::timestamptz, now(), 'check with refresh stamps last_refresh_at');
select ok(public.record_session_snapshot(json_build_object('session_id', 's-live', 'snapshot_id', 'abc', 'as_of_seq', 1)),
          'record_session_snapshot on a live session');
select tests.reset_authentication();
select is((select array[s.snapshot_id, s.as_of_seq::text] from fsync.sessions s where s.session_id = 's-live'),
          array['abc', '1'], '… stores its snapshot (retention keeps it)');
select tests.authenticate_as_service_role();
select ok(not public.record_session_snapshot(json_build_object('session_id', 's-ended', 'snapshot_id', 'abc', 'as_of_seq', 1)),
          '… and nothing on an ended one');
select ok(fsync.session_live('s-live', tests.recall('p1')) and not fsync.session_live('s-ended', tests.recall('p1')),
          'the service role may ask session_live about any session');

-- Nobody else manages sessions -----------------------------------------------------------------
create function pg_temp.session_rpcs_refused() returns text[] language sql volatile as $$
  select array_agg(distinct coalesce(tests.error_of(s) ->> 'code', 'ok'))
    from unnest(array[
      $f$select public.open_container_session(json_build_object('project_uuid', tests.recall('p1'), 'session_id', 'z'))$f$,
      $f$select public.end_container_session(json_build_object('session_id', 's-live'))$f$,
      $f$select public.check_container_session(json_build_object('session_id', 's-live'))$f$,
      $f$select public.record_session_snapshot(json_build_object('session_id', 's-live', 'snapshot_id', 'x', 'as_of_seq', 1))$f$,
      $f$select fsync.open_container_session(tests.recall('p1'), 'z')$f$,
      $f$select fsync.end_container_session('s-live')$f$,
      $f$select fsync.check_container_session('s-live')$f$,
      $f$select fsync.record_session_snapshot('s-live', 'x', 1)$f$,
      $f$select * from fsync.sessions$f$]) as s
$$;
select tests.authenticate_as('alice');
select is(pg_temp.session_rpcs_refused(), array['42501'], 'a project owner cannot open, end, check or read sessions');
select tests.clear_authentication();
select is(pg_temp.session_rpcs_refused(), array['42501'], 'nor can anon');
select pg_temp.as_container('s-live', tests.recall('p1'));
select is(pg_temp.session_rpcs_refused(), array['42501'], 'nor a container (it cannot extend or revive its session)');
select throws_ok($$select public.end_container_session(json_build_object('session_id', 's-live'))$$,
                 '42501', 'permission denied for function end_container_session', '… refused before any SQL of ours runs');
select tests.reset_authentication();
select is((select s.ended_at from fsync.sessions s where s.session_id = 's-live'), null, 's-live is still live after all that');
select is((select count(*)::int from fsync.sessions where session_id = 'z'), 0, 'and no session was opened');

-- Cheap: one index lookup per check ---------------------------------------------------------------
select ok((select c.relrowsecurity from pg_class c where c.oid = 'fsync.sessions'::regclass), 'RLS is on for fsync.sessions');
select is((select i.indisprimary from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
            where i.indrelid = 'fsync.sessions'::regclass and a.attname = 'session_id' and i.indnatts = 1), true,
          'the session lookup is a primary-key lookup');
select ok((select c.qual ~ 'SELECT fsync\.session_live' from pg_policies c
            where c.schemaname = 'storage' and c.policyname = 'fsync: containers read their project''s assets'),
          'the storage policy checks the session once per statement (an initplan)');
select ok((select c.qual ~ 'SELECT fsync\.session_live' from pg_policies c
            where c.schemaname = 'realtime' and c.policyname = 'fsync: containers receive their project''s events'),
          'the realtime policy too');

select * from finish();
rollback;
