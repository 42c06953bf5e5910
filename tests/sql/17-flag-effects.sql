-- The flags do what they say: FSYNC_SERVER_BROADCASTS (per project owner) decides
-- whether writes realtime.send their event, FSYNC_BULK_GENERATION (per calling
-- user) whether bulk_upsert_project_files runs, FSYNC_KEEP_CLIENT_BROADCAST (per
-- sending user) whether writers may broadcast on project:<id>:edits — never on
-- project:<id>.
begin;
create extension if not exists pgtap;
select plan(39);

-- The fs-sync flags as a fresh install seeds them: on a database fs-sync was adopted onto, the
-- operator's rollout (velocity's Phase-0 rows) would decide instead.
update public.feature_flags f
   set enabled = d.enabled, rollout_percentage = case when d.enabled then 100 else 0 end,
       target_user_ids = '{}', environments = '{}'
  from (values ('FSYNC_USE_RPC', true), ('FSYNC_SERVER_BROADCASTS', true), ('FSYNC_BULK_GENERATION', true),
               ('FSYNC_SNAPSHOT_HYDRATION', false), ('FSYNC_KEEP_CLIENT_BROADCAST', false)) as d(flag_key, enabled)
 where f.flag_key = d.flag_key;

select tests.create_supabase_user('alice');    -- owner of p1
select tests.create_supabase_user('bob');      -- editor of p1
select tests.create_supabase_user('carol');    -- viewer of p1
select tests.create_supabase_user('mallory');  -- owner of p2

select tests.authenticate_as('mallory');
select tests.remember('p2', fsync.create_project('p2'));
select tests.authenticate_as('alice');
select tests.remember('p1', fsync.create_project('p1'));
select fsync.set_project_member(tests.recall('p1'), tests.get_supabase_uid('bob'), 'editor');
select fsync.set_project_member(tests.recall('p1'), tests.get_supabase_uid('carol'), 'viewer');
select tests.reset_authentication();

create function pg_temp.sent(p_project text) returns int language sql stable as $$
  select count(*)::int from realtime.messages m where m.topic = 'project:' || tests.recall(p_project)
$$;
create function pg_temp.logged(p_project text) returns int language sql stable as $$
  select count(*)::int from public.project_events e where e.project_id = tests.recall(p_project)
$$;

-- FSYNC_SERVER_BROADCASTS ---------------------------------------------------------------
select tests.authenticate_as('alice');
select fsync.upsert_project_file(tests.recall('p1'), 'a.ts', '1');
select tests.reset_authentication();
select is(pg_temp.sent('p1'), 1, 'FSYNC_SERVER_BROADCASTS on (the fresh default): the write is broadcast');

update public.feature_flags set enabled = false where flag_key = 'FSYNC_SERVER_BROADCASTS';
select tests.authenticate_as('alice');
select is(fsync.upsert_project_file(tests.recall('p1'), 'a.ts', '2') ->> 'seq', '2', 'off: the write still gets its seq');
select fsync.delete_project_file(tests.recall('p1'), 'a.ts');
select fsync.bulk_upsert_project_files(tests.recall('p1'), '[{"file_path": "b.ts", "content": "b"}]');
select tests.authenticate_as('bob');
insert into public.project_files (project_id, file_path, content) values (tests.recall('p1'), 'c.ts', 'c');
select tests.reset_authentication();
select is(pg_temp.logged('p1'), 5, '… every write (upsert, delete, bulk, a direct insert) is in the change log');
select is(pg_temp.sent('p1'), 1, '… and none is broadcast');
select tests.authenticate_as('carol');
select is(public.get_project_sync_state(json_build_object('project_uuid', tests.recall('p1'))) ->> 'seq', '5',
          '… a follower learns the position from get_project_sync_state');
select is((select count(*)::int from public.list_project_events(json_build_object('project_uuid', tests.recall('p1'), 'after_seq', 1))),
          4, '… and fetches the events from the log');

-- Evaluated for the project's owner, whoever writes.
select tests.reset_authentication();
update public.feature_flags set enabled = true, rollout_percentage = 0, target_user_ids = array[tests.get_supabase_uid('alice')]
 where flag_key = 'FSYNC_SERVER_BROADCASTS';
select tests.authenticate_as('bob');
select fsync.upsert_project_file(tests.recall('p1'), 'b.ts', 'by bob');
select tests.authenticate_as('mallory');
select fsync.upsert_project_file(tests.recall('p2'), 'm.ts', 'm');
select tests.reset_authentication();
select is(pg_temp.sent('p1'), 2, 'on for alice: an editor''s write in alice''s project is broadcast');
select is(pg_temp.sent('p2'), 0, '… a write in mallory''s project is not');
select is(pg_temp.logged('p2'), 1, '… but is logged');
select tests.authenticate_as_service_role();
select is(public.is_feature_enabled_for_project('FSYNC_SERVER_BROADCASTS', tests.recall('p1'))::text
          || public.is_feature_enabled_for_project('FSYNC_SERVER_BROADCASTS', tests.recall('p2'))::text,
          'truefalse', 'the same answer as is_feature_enabled_for_project');
select tests.reset_authentication();
update public.feature_flags set enabled = true, rollout_percentage = 100, target_user_ids = '{}'
 where flag_key = 'FSYNC_SERVER_BROADCASTS';

-- FSYNC_BULK_GENERATION --------------------------------------------------------------------
select tests.authenticate_as('bob');
select is(fsync.bulk_upsert_project_files(tests.recall('p1'), '[{"file_path": "gen/1.ts", "content": "1"}]') ->> 'applied', '1',
          'FSYNC_BULK_GENERATION on (the fresh default): an editor''s bulk runs');
select tests.reset_authentication();
update public.feature_flags set enabled = false where flag_key = 'FSYNC_BULK_GENERATION';
select set_config('tests.seq_before', pg_temp.logged('p1')::text, true);
select tests.authenticate_as('bob');
select throws_ok(format($$select fsync.bulk_upsert_project_files(%L, '[{"file_path": "gen/2.ts", "content": "2"}]')$$, tests.recall('p1')),
                 'PT403', 'bulk generation is off for this user (FSYNC_BULK_GENERATION)', 'off: the bulk is refused with PT403');
select is((tests.error_of(format($$select fsync.bulk_upsert_project_files(%L, '[]')$$, tests.recall('p1'))) ->> 'detail')::jsonb,
          '{"flag": "FSYNC_BULK_GENERATION"}', '… DETAIL names the flag');
select throws_ok(format($$select public.bulk_upsert_project_files(json_build_object('project_uuid', %L, 'files', json_build_array(json_build_object('file_path', 'gen/2.ts', 'content', '2'))))$$,
                        tests.recall('p1')),
                 'PT403', 'bulk generation is off for this user (FSYNC_BULK_GENERATION)', '… through the public RPC too');
select throws_ok(format($$select fsync.apply_bulk(%L, '[]')$$, tests.recall('p1')),
                 '42501', 'permission denied for function apply_bulk', '… and the gate cannot be skipped');
select lives_ok(format($$select fsync.upsert_project_file(%L, 'gen/2.ts', '2')$$, tests.recall('p1')),
                '… single-file writes are not gated');
select tests.authenticate_as('mallory');
select throws_ok(format($$select fsync.bulk_upsert_project_files(%L, '[]')$$, tests.recall('p1')),
                 '42501', format('access denied: you are not a member of project %s', tests.recall('p1')),
                 '… a non-member is refused for access first');
select tests.authenticate_as_service_role();
select is(fsync.bulk_upsert_project_files(tests.recall('p1'), '[{"file_path": "gen/3.ts", "content": "3"}]') ->> 'applied', '1',
          'the service role is not gated');
select tests.reset_authentication();
select is(pg_temp.logged('p1'), current_setting('tests.seq_before')::int + 2, 'the refused bulks wrote nothing');
update public.feature_flags set enabled = true, rollout_percentage = 0, target_user_ids = array[tests.get_supabase_uid('alice')]
 where flag_key = 'FSYNC_BULK_GENERATION';
select tests.authenticate_as('alice');
select lives_ok(format($$select fsync.bulk_upsert_project_files(%L, '[{"file_path": "gen/4.ts", "content": "4"}]')$$, tests.recall('p1')),
                'on for alice only: alice''s bulk runs');
select tests.authenticate_as('bob');
select is(tests.error_of(format($$select fsync.bulk_upsert_project_files(%L, '[]')$$, tests.recall('p1'))) ->> 'code', 'PT403',
          '… bob''s is refused (the caller''s flag, not the owner''s)');
select tests.reset_authentication();

-- FSYNC_KEEP_CLIENT_BROADCAST --------------------------------------------------------------------
-- A client broadcast is an INSERT into realtime.messages with realtime.topic() set to
-- the channel (Realtime's join check inserts probe rows like it).
create function pg_temp.broadcast(p_topic text, p_extension text default 'broadcast', p_row_topic text default null)
returns text language plpgsql as $$
begin
  perform set_config('realtime.topic', p_topic, true);
  return tests.error_of(format($q$insert into realtime.messages (topic, extension, payload, event, private)
                                  values (%L, %L, '{"optimistic": true}', 'edit', true)$q$,
                               coalesce(p_row_topic, p_topic), p_extension)) ->> 'code';
end
$$;
select set_config('tests.edits', 'project:' || tests.recall('p1') || ':edits', true);
select set_config('tests.topic', 'project:' || tests.recall('p1'), true);

select tests.authenticate_as('bob');
select is(pg_temp.broadcast(current_setting('tests.edits')), '42501',
          'FSYNC_KEEP_CLIENT_BROADCAST off (the fresh default): an editor may not broadcast on project:<id>:edits');
select tests.reset_authentication();
update public.feature_flags set enabled = true, rollout_percentage = 100 where flag_key = 'FSYNC_KEEP_CLIENT_BROADCAST';
select tests.authenticate_as('bob');
select is(pg_temp.broadcast(current_setting('tests.edits')), null, 'on: an editor may broadcast on project:<id>:edits');
select tests.authenticate_as('alice');
select is(pg_temp.broadcast(current_setting('tests.edits')), null, '… the owner too');
select is(pg_temp.broadcast(current_setting('tests.topic')), '42501', '… never on project:<id>, the server''s topic');
select is(pg_temp.broadcast(current_setting('tests.edits'), 'broadcast', current_setting('tests.topic')), '42501',
          '… nor a row for project:<id> on the edits channel');
select is(pg_temp.broadcast(current_setting('tests.edits'), 'presence'), '42501', '… and no presence');
select is(pg_temp.broadcast('project:' || tests.recall('p2') || ':edits'), '42501', '… nor on another project''s edits');
select tests.authenticate_as('carol');
select is(pg_temp.broadcast(current_setting('tests.edits')), '42501', 'a viewer may not broadcast');
select tests.authenticate_as('mallory');
select is(pg_temp.broadcast(current_setting('tests.edits')), '42501', 'a non-member may not');
select tests.authenticate_as_container(tests.recall('p1'));
select is(pg_temp.broadcast(current_setting('tests.edits')), '42501', 'a container token may not');
select tests.reset_authentication();
update public.feature_flags set rollout_percentage = 0, target_user_ids = array[tests.get_supabase_uid('alice')]
 where flag_key = 'FSYNC_KEEP_CLIENT_BROADCAST';
select tests.authenticate_as('bob');
select is(pg_temp.broadcast(current_setting('tests.edits')), '42501', 'evaluated for the sender: on for alice only refuses bob');
select tests.authenticate_as('alice');
select is(pg_temp.broadcast(current_setting('tests.edits')), null, '… and lets alice');
select tests.reset_authentication();

-- Who receives project:<id>:edits (the two rows alice and bob sent, plus alice's last).
create function pg_temp.visible(p_topic text) returns int language sql volatile as $$
  select set_config('realtime.topic', p_topic, true);
  select count(*)::int from realtime.messages where topic = p_topic;
$$;
select set_config('tests.sent', pg_temp.sent('p1')::text, true);
select tests.authenticate_as('carol');
select is(pg_temp.visible(current_setting('tests.edits')), 3, 'any member (a viewer too) receives project:<id>:edits');
select is(pg_temp.visible(current_setting('tests.topic')), current_setting('tests.sent')::int, '… and project:<id> as before');
select tests.authenticate_as('mallory');
select is(pg_temp.visible(current_setting('tests.edits')), 0, 'a non-member receives neither');
select is(pg_temp.visible(current_setting('tests.topic')), 0, '…');
select tests.authenticate_as_container(tests.recall('p1'));
select is(pg_temp.visible(current_setting('tests.edits')), 0, 'a container token gets nothing on the edits topic');
select is(pg_temp.visible(current_setting('tests.topic')), current_setting('tests.sent')::int, '… and its project''s events as before');
select tests.reset_authentication();

select * from finish();
rollback;
