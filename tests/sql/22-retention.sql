-- Retention: per-project policies (set_retention_policy) and prune_project_history. A project
-- with old and recent history is pruned with a policy of 30 days and the last 2 versions per path:
-- heads, the newest versions, recent versions and every version a held point needs stay; old
-- events go as a prefix, never the newest; list_project_events, restore_project and diff_project
-- answer PT410 {oldest_seq} for what is gone and stay exact for what is held; a dry run changes
-- nothing and reports what the prune then does; bounded batches; only the service role may
-- prune; the snapshot archives listed for deletion exclude the newest K and live sessions' ones;
-- sessions that ended or expired longer ago than the log is kept go, a live one never.
-- Time windows are tested by backdating rows: the function's `now` is the transaction's.
begin;
create extension if not exists pgtap;
select plan(59);

select tests.create_supabase_user('alice');  -- owner
select tests.create_supabase_user('bob');    -- viewer of p1
select tests.authenticate_as('alice');
select tests.remember('p1', fsync.create_project('retention'));
select tests.remember('p2', fsync.create_project('history longer than versions'));
select tests.remember('p3', fsync.create_project('all old'));
select fsync.set_project_member(tests.recall('p1'), tests.get_supabase_uid('bob'), 'viewer');
select tests.reset_authentication();
update fsync.settings set value = 'false' where key = 'rate_limit.enabled';

-- p1: seq 1-6 old.ts v1-6, 7-10 hist.ts v1-4, 11 gone.ts v1, 12 its tombstone (all 60 days old);
-- then recent: 13-14 hist.ts v5-6, 15-20 recent.ts v1-6.
select tests.authenticate_as('alice');
select fsync.upsert_project_file(tests.recall('p1'), 'old.ts', 'old' || i) from generate_series(1, 6) i;
select fsync.upsert_project_file(tests.recall('p1'), 'hist.ts', 'hist' || i) from generate_series(1, 4) i;
select fsync.upsert_project_file(tests.recall('p1'), 'gone.ts', 'gone');
select fsync.delete_project_file(tests.recall('p1'), 'gone.ts');
select fsync.upsert_project_file(tests.recall('p1'), 'hist.ts', 'hist' || i) from generate_series(5, 6) i;
select fsync.upsert_project_file(tests.recall('p1'), 'recent.ts', 'recent' || i) from generate_series(1, 6) i;
-- p2: x.ts v1-4 20 days old, v5 now.
select fsync.upsert_project_file(tests.recall('p2'), 'x.ts', 'x' || i) from generate_series(1, 5) i;
-- p3: three events, all old.
select fsync.upsert_project_file(tests.recall('p3'), 'a.ts', 'a' || i) from generate_series(1, 3) i;
select tests.reset_authentication();

update public.project_events set created_at = now() - interval '60 days'
 where project_id = tests.recall('p1') and seq <= 12;
update public.project_files set created_at = now() - interval '60 days'
 where project_id = tests.recall('p1') and (file_path in ('old.ts', 'gone.ts') or (file_path = 'hist.ts' and version <= 4));
update public.project_events set created_at = now() - interval '20 days'
 where project_id = tests.recall('p2') and seq <= 4;
update public.project_files set created_at = now() - interval '20 days'
 where project_id = tests.recall('p2') and version <= 4;
update public.project_events set created_at = now() - interval '60 days' where project_id = tests.recall('p3');
update public.project_files set created_at = now() - interval '60 days' where project_id = tests.recall('p3');

create temp table files_before on commit drop as
  select project_id, file_path, version, is_current_version from public.project_files
   where project_id in (tests.recall('p1'), tests.recall('p2'), tests.recall('p3'));
create temp table events_before on commit drop as
  select project_id, seq from public.project_events
   where project_id in (tests.recall('p1'), tests.recall('p2'), tests.recall('p3'));
grant select on files_before, events_before to public;

-- Policies ----------------------------------------------------------------------------------------
select tests.authenticate_as_service_role();
select is(public.set_retention_policy(json_build_object('project_uuid', tests.recall('p3'))),
          jsonb_build_object('project_id', tests.recall('p3'), 'version_days', 30, 'keep_versions', 10,
                             'log_days', 30, 'keep_snapshots', 3),
          'the default policy: versions 30 days and the last 10 per path, the log 30 days, 3 snapshots');
select is(public.set_retention_policy(json_build_object('project_uuid', tests.recall('p1'), 'keep_versions', 2)),
          jsonb_build_object('project_id', tests.recall('p1'), 'version_days', 30, 'keep_versions', 2,
                             'log_days', 30, 'keep_snapshots', 3),
          'the service role changes one setting of a project''s policy; the others stay the defaults');
select is(public.set_retention_policy(json_build_object('project_uuid', tests.recall('p2'), 'version_days', 10,
                                                        'keep_versions', 1, 'keep_snapshots', 5)) ->> 'keep_snapshots',
          '5', 'several at once');
select is(public.set_retention_policy(json_build_object('project_uuid', tests.recall('p2'), 'keep_snapshots', null)),
          jsonb_build_object('project_id', tests.recall('p2'), 'version_days', 10, 'keep_versions', 1,
                             'log_days', 30, 'keep_snapshots', 3),
          'null puts one setting back to its default and keeps the others');
select throws_ok(format($$select public.set_retention_policy('{"project_uuid": "%s", "keep_versions": 0}')$$, tests.recall('p1')),
                 'PT422', 'invalid keep_versions: must be an integer from 1 to 1000000; got 0',
                 'a policy that would keep no version of a path is refused (the head is always kept)');
select throws_ok($$select public.set_retention_policy('{"project_uuid": "00000000-0000-0000-0000-000000000000"}')$$,
                 'PT404', 'project 00000000-0000-0000-0000-000000000000 not found', 'an unknown project is PT404');

-- Who may prune ------------------------------------------------------------------------------------
select tests.authenticate_as('alice');
select throws_ok(format($$select fsync.prune_project_history(%L)$$, tests.recall('p1')),
                 '42501', 'permission denied for function prune_project_history', 'the project''s owner may not prune (EXECUTE for the service role alone)');
select throws_ok(format($$select public.prune_project_history('{"project_uuid": "%s"}')$$, tests.recall('p1')),
                 '42501', null, '… nor call the RPC (no EXECUTE for authenticated)');
select throws_ok(format($$select public.set_retention_policy('{"project_uuid": "%s", "log_days": 1}')$$, tests.recall('p1')),
                 '42501', null, '… nor change the policy');
select throws_ok(format($$select fsync.set_retention_policy(%L, '{"log_days": 1}')$$, tests.recall('p1')),
                 '42501', 'permission denied for function set_retention_policy', '… not even through the implementation');
select tests.reset_authentication();
grant execute on function fsync.prune_project_history(uuid, boolean, timestamptz, bigint, uuid) to authenticated;
select tests.authenticate_as('alice');
select throws_ok(format($$select fsync.prune_project_history(%L)$$, tests.recall('p1')),
                 '42501', 'only the service role may prune project history',
                 'the implementation checks the caller itself (here with EXECUTE granted by mistake)');
select tests.clear_authentication();
select throws_ok($$select public.prune_project_history('{}')$$, '42501', null, 'anon may not prune');
select tests.authenticate_as_container(tests.recall('p1'));
select throws_ok(format($$select public.prune_project_history('{"project_uuid": "%s"}')$$, tests.recall('p1')),
                 '42501', null, 'a container token may not prune');
select tests.reset_authentication();

-- Dry run --------------------------------------------------------------------------------------------
select tests.authenticate_as_service_role();
create temp table dry on commit drop as
  select public.prune_project_history(json_build_object('project_uuid', tests.recall('p1'), 'dry_run', true)) as r;
grant select on dry to public;
select is((select (r -> 'projects' -> 0) - 'policy' - 'snapshots' - 'snapshot_bytes' - 'bytes_freed' from dry),
          jsonb_build_object('project_id', tests.recall('p1'), 'events_removed', 12, 'versions_removed', 7, 'sessions_removed', 0,
                             'oldest_seq', 12, 'last_seq', 20, 'complete', true),
          'a dry run reports the prune: events 1-12 (all older than 30 days), 7 versions, oldest point 12');
select ok((select (r -> 'projects' -> 0 ->> 'bytes_freed')::bigint > 0 from dry), '… and the bytes it would free');
select tests.reset_authentication();
select set_eq($$select project_id, file_path, version, is_current_version from public.project_files
                 where project_id in (select project_id from files_before)$$,
              $$select * from files_before$$, '… and changes no version');
select set_eq($$select project_id, seq from public.project_events where project_id in (select project_id from events_before)$$,
              $$select * from events_before$$, '… and no event');

-- Bounded batches ------------------------------------------------------------------------------------
select tests.authenticate_as_service_role();
select is((select r - 'now' - 'projects' from (select public.prune_project_history(
             json_build_object('project_uuid', tests.recall('p1'), 'max_rows', 5)) as r) x),
          jsonb_build_object('dry_run', false, 'max_rows', 5, 'complete', false, 'resume_from', tests.recall('p1'),
                             'projects_checked', 1),
          'a prune deletes at most max_rows rows and says it is not complete, and where to resume');
select tests.reset_authentication();
select is((select min(seq) from public.project_events where project_id = tests.recall('p1')), 6::bigint,
          '… the log''s oldest events first, as a prefix (seq 1-5)');
select is((select count(*) from public.project_files where project_id = tests.recall('p1')),
          (select count(*) from files_before where project_id = tests.recall('p1')),
          '… and no version while the log is not cut (versions are chosen against the log as it is)');
select tests.authenticate_as('bob');
select throws_ok(format($$select * from fsync.list_project_events(%L, 4)$$, tests.recall('p1')),
                 'PT410', 'seq 4 is no longer in the project''s log: the oldest position available is seq 5; re-hydrate from a fresh snapshot',
                 'list_project_events from a position before the oldest event held is PT410');
select is((tests.error_of(format($$select * from fsync.list_project_events(%L, 4)$$, tests.recall('p1'))) ->> 'detail')::jsonb,
          '{"param": "after_seq", "oldest_seq": 5}'::jsonb, '… naming the oldest position (the follower re-hydrates)');
select is((select count(*) from fsync.list_project_events(tests.recall('p1'), 5)), 15::bigint,
          'from the oldest position itself the log is complete (seq 6-20)');
select tests.reset_authentication();

select tests.authenticate_as_service_role();
create temp table batches on commit drop as
  with recursive run(n, r) as (
    select 1, public.prune_project_history(json_build_object('project_uuid', tests.recall('p1'), 'max_rows', 5))
    union all
    select n + 1, public.prune_project_history(json_build_object('project_uuid', tests.recall('p1'), 'max_rows', 5))
      from run where not (r ->> 'complete')::boolean and n < 20)
  select n, r from run;
grant select on batches to public;
select tests.reset_authentication();
select is((select bool_and((r -> 'projects' -> 0 ->> 'events_removed')::int + (r -> 'projects' -> 0 ->> 'versions_removed')::int <= 5)
             from batches), true, 'repeated batches stay within max_rows …');
select is((select array[sum((r -> 'projects' -> 0 ->> 'events_removed')::int) + 5, sum((r -> 'projects' -> 0 ->> 'versions_removed')::int)]
             from batches), array[12::bigint, 7::bigint], '… and together remove what the dry run said');
select is((select (r ->> 'complete')::boolean from batches order by n desc limit 1), true, '… the last one complete');

-- What the prune kept and removed (p1: keep_versions 2, 30 days) --------------------------------
select set_eq($$select file_path, version from files_before where project_id = tests.recall('p1') and is_current_version$$,
              $$select file_path, version from public.project_files where project_id = tests.recall('p1') and is_current_version$$,
              'every head is kept, the tombstone of a deleted path included');
select results_eq($$select version from public.project_files where project_id = tests.recall('p1') and file_path = 'old.ts' order by version$$,
                  $$values (5), (6)$$, 'old versions beyond the last 2 go; the last 2 of a path stay');
select results_eq($$select version from public.project_files where project_id = tests.recall('p1') and file_path = 'recent.ts' order by version$$,
                  $$values (1), (2), (3), (4), (5), (6)$$, 'versions within the window stay, however many');
select results_eq($$select version from public.project_files where project_id = tests.recall('p1') and file_path = 'hist.ts' order by version$$,
                  $$values (4), (5), (6)$$,
                  'a version the oldest held point needs stays although the policy would drop it (hist.ts v4: the state at seq 12)');
select results_eq($$select version from public.project_files where project_id = tests.recall('p1') and file_path = 'gone.ts' order by version$$,
                  $$values (1), (2)$$, 'a deleted path keeps its tombstone head and its last version');
select results_eq($$select min(seq), max(seq), count(*) from public.project_events where project_id = tests.recall('p1')$$,
                  $$values (13::bigint, 20::bigint, 8::bigint)$$, 'the log keeps the events within 30 days (13-20)');

-- History after the prune ----------------------------------------------------------------------
select tests.authenticate_as('alice');
select throws_ok(format($$select * from fsync.diff_project(%L, 11, 20)$$, tests.recall('p1')),
                 'PT410', 'seq 11 is no longer in the project''s history: the oldest point available is seq 12',
                 'diff to a point whose versions were pruned is PT410 …');
select is((tests.error_of(format($$select fsync.restore_project(%L, 3, 20)$$, tests.recall('p1'))) ->> 'detail')::jsonb,
          '{"param": "to_seq", "oldest_seq": 12}'::jsonb, '… restore too, naming the oldest reachable point');
select results_eq(format($$select file_path, change, from_version, to_version from fsync.diff_project(%L, 12, 20)$$, tests.recall('p1')),
                  $$values ('hist.ts', 'modified', 4, 6), ('recent.ts', 'added', null::integer, 6)$$,
                  'diff from the oldest point is exact');
select is((fsync.restore_project(tests.recall('p1'), 12, 20) - 'project_id' - 'files'),
          '{"seq": 21, "to_seq": 12, "restored": 1, "deleted": 1, "unchanged": 1}'::jsonb,
          'restore to the oldest point works …');
select results_eq(format($$select file_path, content from fsync.get_project_files(%L) order by file_path$$, tests.recall('p1')),
                  $$values ('hist.ts', 'hist4'), ('old.ts', 'old6')$$, '… and gives the files as they were at seq 12');
select tests.reset_authentication();

-- History longer than the version window (p2: versions 10 days, keep 1; log 30 days) -------------
select tests.authenticate_as_service_role();
select is((public.prune_project_history(json_build_object('project_uuid', tests.recall('p2'))) -> 'projects' -> 0) - 'policy' - 'snapshots' - 'snapshot_bytes' - 'bytes_freed',
          jsonb_build_object('project_id', tests.recall('p2'), 'events_removed', 0, 'versions_removed', 0, 'sessions_removed', 0,
                             'oldest_seq', 0, 'last_seq', 5, 'complete', true),
          'versions older than their window stay while the log still holds points that need them');
select tests.authenticate_as('alice');
select is(fsync.restore_project(tests.recall('p2'), 1, 5) ->> 'restored', '1', '… so every held point can still be restored');
select tests.reset_authentication();

-- The newest event is never pruned (p3: everything 60 days old) ----------------------------------
select tests.authenticate_as_service_role();
select is((public.prune_project_history(json_build_object('project_uuid', tests.recall('p3'))) -> 'projects' -> 0) - 'policy' - 'snapshots' - 'snapshot_bytes' - 'bytes_freed',
          jsonb_build_object('project_id', tests.recall('p3'), 'events_removed', 2, 'versions_removed', 0, 'sessions_removed', 0,
                             'oldest_seq', 2, 'last_seq', 3, 'complete', true),
          'an old log is pruned up to, not including, its newest event (the 3 versions are the last 10)');
select tests.authenticate_as('alice');
select results_eq(format($$select (e ->> 'seq')::bigint from fsync.list_project_events(%L, 2) e$$, tests.recall('p3')),
                  $$values (3::bigint)$$, 'a follower at the project''s seq … (a snapshot cut now) still follows');
select is((fsync.upsert_project_file(tests.recall('p3'), 'a.ts', 'a4') ->> 'seq')::bigint, 4::bigint, '… and seq keeps counting');
select tests.reset_authentication();

-- Every project ----------------------------------------------------------------------------------
select tests.authenticate_as_service_role();
select is((select (r ->> 'complete')::boolean from (select public.prune_project_history('{"dry_run": true}') as r) x), true,
          'without project_uuid every project is checked');
select throws_ok($$select public.prune_project_history('{"now": "yesterday-ish"}')$$, 'PT422',
                 'invalid now: must be an RFC 3339 timestamp; got "yesterday-ish"', 'a bad now is refused, naming it');
select tests.reset_authentication();

-- Snapshots in Storage ---------------------------------------------------------------------------
-- p1: s1 (oldest) … s5 (newest); s1 is a live session's, s2 an ended session's. Plus objects that
-- are not snapshot archives of p1: another project's, a nested name, another bucket.
insert into storage.objects (bucket_id, name, created_at, metadata)
select 'project-snapshots', tests.recall('p1') || '/' || repeat(i::text, 64) || '.zip',
       now() - make_interval(days => 10 - i), jsonb_build_object('size', 1000 * i)
  from generate_series(1, 5) i;
insert into storage.objects (bucket_id, name, created_at, metadata) values
  ('project-snapshots', tests.recall('p2') || '/' || repeat('a', 64) || '.zip', now() - interval '30 days', '{"size": 1}'),
  ('project-snapshots', tests.recall('p2') || '/' || repeat('b', 64) || '.zip', now() - interval '29 days', '{"size": 1}'),
  ('project-snapshots', tests.recall('p2') || '/' || repeat('c', 64) || '.zip', now() - interval '28 days', '{"size": 1}'),
  ('project-snapshots', tests.recall('p2') || '/' || repeat('d', 64) || '.zip', now() - interval '27 days', '{"size": 1}'),
  ('project-snapshots', tests.recall('p1') || '/old/' || repeat('e', 64) || '.zip', now() - interval '90 days', '{"size": 1}'),
  ('project-assets', tests.recall('p1') || '/' || repeat('f', 64) || '.zip', now() - interval '90 days', '{"size": 1}');
insert into fsync.sessions (session_id, project_id, created_at, expires_at, ended_at, ended_reason, snapshot_id) values
  ('live-1', tests.recall('p1'), now() - interval '1 hour', now() + interval '1 hour', null, null, repeat('1', 64)),
  ('ended-2', tests.recall('p1'), now() - interval '1 hour', now() + interval '1 hour', now(), 'revoked', repeat('2', 64)),
  ('expired-3', tests.recall('p2'), now() - interval '2 days', now() - interval '1 day', null, null, repeat('a', 64));

select tests.authenticate_as_service_role();
select is(public.prune_project_history(json_build_object('project_uuid', tests.recall('p1'), 'dry_run', true)) -> 'projects' -> 0 -> 'snapshots',
          jsonb_build_array(tests.recall('p1') || '/' || repeat('2', 64) || '.zip'),
          'snapshots listed for deletion: beyond the newest 3, not a live session''s (an ended session''s is)');
select is((public.prune_project_history(json_build_object('project_uuid', tests.recall('p1'), 'dry_run', true)) -> 'projects' -> 0 ->> 'snapshot_bytes')::bigint,
          2000::bigint, '… with their size');
select is(public.prune_project_history(json_build_object('project_uuid', tests.recall('p2'))) -> 'projects' -> 0 -> 'snapshots',
          jsonb_build_array(tests.recall('p2') || '/' || repeat('a', 64) || '.zip'),
          'an expired session protects nothing; only the project''s own archives are listed');
select is(public.set_retention_policy(json_build_object('project_uuid', tests.recall('p1'), 'keep_snapshots', 1)) ->> 'keep_snapshots', '1',
          'with the newest 1 kept …');
select is(public.prune_project_history(json_build_object('project_uuid', tests.recall('p1'))) -> 'projects' -> 0 -> 'snapshots',
          jsonb_build_array(tests.recall('p1') || '/' || repeat('2', 64) || '.zip',
                            tests.recall('p1') || '/' || repeat('3', 64) || '.zip',
                            tests.recall('p1') || '/' || repeat('4', 64) || '.zip'),
          '… s2-s4 are listed, never the newest nor the live session''s, nor objects elsewhere');
select tests.reset_authentication();
select is((select count(*) from storage.objects where name like tests.recall('p1') || '/%' or name like tests.recall('p2') || '/%'),
          11::bigint, 'the function deletes no Storage object itself (the Storage API does)');

-- Sessions --------------------------------------------------------------------------------------
-- p2 (log 30 days): sessions that stopped being live 40 days ago (one ended then, though its
-- expires_at is recent; one expired then), 10 days ago (ended; expired), and one opened 40 days
-- ago that is still live; plus expired-3 (above, expired a day ago).
insert into fsync.sessions (session_id, project_id, created_at, expires_at, ended_at, ended_reason) values
  ('old-ended', tests.recall('p2'), now() - interval '41 days', now() - interval '29 days', now() - interval '40 days', 'revoked'),
  ('old-expired', tests.recall('p2'), now() - interval '41 days', now() - interval '40 days', null, null),
  ('recent-ended', tests.recall('p2'), now() - interval '11 days', now() + interval '1 day', now() - interval '10 days', 'revoked'),
  ('recent-expired', tests.recall('p2'), now() - interval '11 days', now() - interval '10 days', null, null),
  ('live-old', tests.recall('p2'), now() - interval '40 days', now() + interval '1 hour', null, null);

select tests.authenticate_as_service_role();
select is((public.prune_project_history(json_build_object('project_uuid', tests.recall('p2'), 'dry_run', true)) -> 'projects' -> 0 ->> 'sessions_removed')::int,
          2, 'a dry run counts the sessions that stopped being live longer ago than the log is kept');
select is((select (x ->> 'sessions_removed')::int from jsonb_array_elements(public.prune_project_history('{"dry_run": true}') -> 'projects') x
            where x ->> 'project_id' = tests.recall('p2')::text),
          2, '… and lists the project among every project''s for them alone');
select is((select r -> 'projects' -> 0 ->> 'sessions_removed' || ' ' || (r ->> 'complete')
             from (select public.prune_project_history(json_build_object('project_uuid', tests.recall('p2'), 'max_rows', 1)) as r) x),
          '1 false', 'sessions count against max_rows: one removed, not complete');
select is((select r -> 'projects' -> 0 ->> 'sessions_removed' || ' ' || (r ->> 'complete')
             from (select public.prune_project_history(json_build_object('project_uuid', tests.recall('p2'))) as r) x),
          '1 true', '… the next call removes the other and completes');
select tests.reset_authentication();
select results_eq($$select session_id from fsync.sessions where project_id = tests.recall('p2') order by session_id$$,
                  $$values ('expired-3'), ('live-old'), ('recent-ended'), ('recent-expired')$$,
                  'gone: the sessions that ended or expired 40 days ago; kept: within 30 days, and the live one');
select tests.authenticate_as_service_role();
select is((public.prune_project_history(json_build_object('project_uuid', tests.recall('p2'), 'now', now() + interval '100 days'))
            -> 'projects' -> 0 ->> 'sessions_removed')::int, 3, 'with now 100 days ahead the rest go …');
select tests.reset_authentication();
select results_eq($$select session_id from fsync.sessions where project_id = tests.recall('p2')$$,
                  $$values ('live-old')$$, '… but never a session that is live now');
select tests.authenticate_as_service_role();
select ok(fsync.session_live('live-old', tests.recall('p2')), '… which stays usable');
select tests.reset_authentication();
select is((select ended_reason from fsync.sessions where session_id = 'ended-2'), 'revoked',
          'another project''s ended session stays (a prune of one project)');

select * from finish();
rollback;
