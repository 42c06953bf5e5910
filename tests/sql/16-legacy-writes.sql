-- Direct writes on project_files (the legacy app's supabase-js insert, upsert,
-- update, delete) become RPC writes through trigger fsync_legacy_write: a new
-- version, one event with the next seq and a broadcast each; history is never
-- rewritten; the RPCs' access, path, rate and cap rules apply.
begin;
create extension if not exists pgtap;
select plan(86);

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
select tests.create_supabase_user('mallory');  -- owner of p2, nobody in p1

select tests.authenticate_as('mallory');
select tests.remember('p2', fsync.create_project('p2'));
select fsync.upsert_project_file(tests.recall('p2'), 'secret.txt', 'mallory only');
select tests.authenticate_as('alice');
select tests.remember('p1', fsync.create_project('p1'));
select fsync.set_project_member(tests.recall('p1'), tests.get_supabase_uid('bob'), 'editor');
select fsync.set_project_member(tests.recall('p1'), tests.get_supabase_uid('carol'), 'viewer');
select tests.reset_authentication();

-- The state of one path: [version, is_current_version, is_deleted, content] per row.
create function pg_temp.versions(p_path text) returns jsonb language sql stable as $$
  select coalesce(jsonb_agg(jsonb_build_array(f.version, f.is_current_version, f.is_deleted, f.content)
                            order by f.version), '[]')
    from public.project_files f where f.project_id = tests.recall('p1') and f.file_path = p_path
$$;
create function pg_temp.events() returns jsonb language sql stable as $$
  select coalesce(jsonb_agg(jsonb_build_array(e.seq, e.event_type, e.payload ->> 'file_path',
                                              (e.payload ->> 'version')::int) order by e.seq), '[]')
    from public.project_events e where e.project_id = tests.recall('p1')
$$;
-- How many rows a statement's RETURNING gives (what supabase-js .select() would get).
create function pg_temp.returned(p_statement text) returns int language plpgsql as $$
declare
  v_count int;
begin
  execute format('with r as (%s) select count(*) from r', p_statement) into v_count;
  return v_count;
end
$$;

-- INSERT ------------------------------------------------------------------------------
select tests.authenticate_as('bob');
select is(pg_temp.returned(format($$insert into public.project_files (project_id, file_path, content)
                                     values (%L, 'src/App.tsx', 'v1') returning id$$, tests.recall('p1'))), 0,
          'an editor''s insert is accepted, and returns no row (the RPC wrote its own)');
select tests.reset_authentication();
select is(pg_temp.versions('src/App.tsx'), '[[1, true, false, "v1"]]', 'it wrote version 1, the head');
select is((select row(f.content_hash, f.size_bytes, f.file_type, f.created_by)::text from public.project_files f
            where f.file_path = 'src/App.tsx'),
          row(encode(sha256('v1'::bytea), 'hex'), 2::bigint, 'typescript', tests.get_supabase_uid('bob'))::text,
          '… with the server''s hash, size, inferred type and the caller as author');
select is(pg_temp.events(), '[[1, "file:update", "src/App.tsx", 1]]', 'one file:update event, seq 1');
select is((select actor from public.project_events where project_id = tests.recall('p1') and seq = 1),
          tests.get_supabase_uid('bob'), 'the event''s actor is the caller');
select results_eq($$select topic, event, payload ->> 'content' from realtime.messages where split_part(topic, ':', 2) = tests.recall('p1')::text$$,
  format($$values ('project:%s', 'file:update', 'v1')$$, tests.recall('p1')),
  'and one broadcast on project:<id>, as an RPC write sends');
select tests.authenticate_as('bob');
select results_eq($$select file_path, version, content from public.project_files_current$$,
                  $$values ('src/App.tsx', 1, 'v1')$$, 'project_files_current reflects it');

select lives_ok(format($$insert into public.project_files (project_id, file_path, content, version, is_current_version, metadata, content_hash, created_by)
                          values (%L, 'src/App.tsx', 'v2', 42, false, '{"x": 1}', repeat('0', 64), %L)$$,
                       tests.recall('p1'), tests.get_supabase_uid('alice')),
                'an insert that names version, is_current_version and server columns is accepted');
select tests.reset_authentication();
select is(pg_temp.versions('src/App.tsx'), '[[1, false, false, "v1"], [2, true, false, "v2"]]',
          '… and they are ignored: the next version, the new head');
select is((select row(f.content_hash, f.metadata, f.created_by)::text from public.project_files f
            where f.file_path = 'src/App.tsx' and f.version = 2),
          row(encode(sha256('v2'::bytea), 'hex'), '{}'::jsonb, tests.get_supabase_uid('bob'))::text,
          '… hash, metadata and author are the server''s');

select tests.authenticate_as('bob');
select lives_ok(format($$insert into public.project_files (project_id, file_path, content, version)
                          values (%L, 'src/App.tsx', 'v3', 1)
                          on conflict (project_id, file_path, version) do update set content = excluded.content$$,
                       tests.recall('p1')),
                'an upsert (on conflict (project_id, file_path, version)) naming an existing version is accepted');
select tests.reset_authentication();
select is(pg_temp.versions('src/App.tsx'),
          '[[1, false, false, "v1"], [2, false, false, "v2"], [3, true, false, "v3"]]',
          '… and writes a new version: version 1 is not overwritten');

select tests.authenticate_as('bob');
select lives_ok(format($$insert into public.project_files (project_id, file_path, content) values (%L, 'src/App.tsx', 'v3')$$,
                       tests.recall('p1')), 'inserting the head''s content again is accepted');
select tests.reset_authentication();
select is(jsonb_array_length(pg_temp.versions('src/App.tsx')), 3, '… and is a no-op: no version');
select is(jsonb_array_length(pg_temp.events()), 3, '… and no event');

-- The legacy app's save: un-current the head, insert the next version ---------------------
select tests.authenticate_as('bob');
select is(pg_temp.returned(format($$update public.project_files set is_current_version = false
                                     where project_id = %L and file_path = 'src/App.tsx' returning id$$, tests.recall('p1'))), 0,
          'update is_current_version = false returns no row');
select tests.reset_authentication();
select is(pg_temp.versions('src/App.tsx'),
          '[[1, false, false, "v1"], [2, false, false, "v2"], [3, true, false, "v3"]]',
          '… and changes nothing: the head stays the head');
select is(jsonb_array_length(pg_temp.events()), 3, '… no event');
select tests.authenticate_as('bob');
select lives_ok(format($$insert into public.project_files (project_id, file_path, content, version, is_current_version)
                          values (%L, 'src/App.tsx', 'v4', 4, true)$$, tests.recall('p1')),
                'then the insert of the next version');
select tests.reset_authentication();
select is(pg_temp.versions('src/App.tsx') -> 3, '[4, true, false, "v4"]', '… is version 4, the head');

-- UPDATE --------------------------------------------------------------------------------
select tests.authenticate_as('bob');
select lives_ok(format($$update public.project_files set content = 'v5' where project_id = %L and file_path = 'src/App.tsx'$$,
                       tests.recall('p1')),
                'update content of a path (every version of it matches)');
select tests.reset_authentication();
select is(pg_temp.versions('src/App.tsx'),
          '[[1, false, false, "v1"], [2, false, false, "v2"], [3, false, false, "v3"], [4, false, false, "v4"], [5, true, false, "v5"]]',
          '… writes one new version from the head; historical rows are untouched');
select is(pg_temp.events() -> -1, '[5, "file:update", "src/App.tsx", 5]', '… one event, seq 5');

select tests.authenticate_as('bob');
select lives_ok(format($$update public.project_files set content = 'rewritten' where project_id = %L and file_path = 'src/App.tsx' and version = 1$$,
                       tests.recall('p1')), 'update of a historical row');
select lives_ok(format($$update public.project_files set content = 'v6' where project_id = %L and file_path = 'src/App.tsx' and is_current_version$$,
                       tests.recall('p1')), 'update of the head (filtered on is_current_version)');
select tests.reset_authentication();
select is(pg_temp.versions('src/App.tsx') -> 0, '[1, false, false, "v1"]', 'the historical row is never rewritten');
select is(pg_temp.versions('src/App.tsx') -> -1, '[6, true, false, "v6"]', 'the head update is version 6');
select is(jsonb_array_length(pg_temp.events()), 6, 'the historical update made no event');

select tests.authenticate_as('bob');
select lives_ok(format($$update public.project_files set file_type = 'javascript' where project_id = %L and file_path = 'src/App.tsx' and is_current_version$$,
                       tests.recall('p1')), 'update of file_type alone');
select tests.reset_authentication();
select is((select row(f.version, f.content, f.file_type)::text from public.project_files f
            where f.file_path = 'src/App.tsx' and f.is_current_version),
          '(7,v6,javascript)', '… is a new version with the same content and the new type');

-- Rename ---------------------------------------------------------------------------------
select tests.authenticate_as('bob');
select lives_ok(format($$update public.project_files set file_path = 'src/Main.tsx' where project_id = %L and file_path = 'src/App.tsx'$$,
                       tests.recall('p1')), 'update file_path of a path renames it');
select tests.reset_authentication();
select is(pg_temp.versions('src/App.tsx') -> -1, '[8, true, true, null]', '… a tombstone at the old path');
select is(jsonb_array_length(pg_temp.versions('src/App.tsx')), 8, '… whose history stays there');
select is(pg_temp.versions('src/Main.tsx'), '[[1, true, false, "v6"]]', '… the content at the new path');
select is((select payload ->> 'from_path' from public.project_events where project_id = tests.recall('p1') and seq = 8),
          'src/App.tsx', '… one file:rename event with from_path');
select is(pg_temp.events() -> -1, '[8, "file:rename", "src/Main.tsx", 1]', '… seq 8');

select tests.authenticate_as('bob');
select lives_ok(format($$update public.project_files set file_path = 'src/Index.tsx', content = 'moved and changed'
                          where project_id = %L and file_path = 'src/Main.tsx' and is_current_version$$,
                       tests.recall('p1')), 'update of file_path and content together');
select tests.reset_authentication();
select is(pg_temp.events() #> '{-2,1}', '"file:rename"', '… is a rename');
select is(pg_temp.events() -> -1, '[10, "file:update", "src/Index.tsx", 2]', '… then a new version at the new path');

-- DELETE ---------------------------------------------------------------------------------
select tests.authenticate_as('bob');
select is(pg_temp.returned(format($$delete from public.project_files where project_id = %L and file_path = 'src/Index.tsx'
                                     returning id$$, tests.recall('p1'))), 0,
          'delete of a path (every version matches) returns no row');
select tests.reset_authentication();
select is(pg_temp.versions('src/Index.tsx'), '[[1, false, false, "v6"], [2, false, false, "moved and changed"], [3, true, true, null]]',
          '… writes a tombstone; no row is removed');
select is(pg_temp.events() -> -1, '[11, "file:delete", "src/Index.tsx", 3]', '… one file:delete event');
select tests.authenticate_as('bob');
select lives_ok(format($$delete from public.project_files where project_id = %L and file_path in ('src/Index.tsx', 'src/App.tsx')$$,
                       tests.recall('p1')), 'deleting tombstones and history');
select tests.authenticate_as('bob');
select is((select count(*)::int from public.project_files_current), 0, 'project_files_current is empty');
select tests.reset_authentication();
select is(jsonb_array_length(pg_temp.events()), 11, '… is a no-op: no event');

-- Many rows in one statement --------------------------------------------------------------
select tests.authenticate_as('bob');
select lives_ok(format($$insert into public.project_files (project_id, file_path, content)
                          select %L, 'multi/' || i || '.ts', 'm' || i from generate_series(1, 4) i$$, tests.recall('p1')),
                'an insert of four rows');
select tests.reset_authentication();
select is((select jsonb_agg(e -> 0 order by e -> 0) from jsonb_array_elements(pg_temp.events()) e where e ->> 2 like 'multi/%'),
          '[12, 13, 14, 15]', '… writes four files, one event each');
select tests.authenticate_as('bob');
select lives_ok(format($$delete from public.project_files where project_id = %L and file_path in ('multi/1.ts', 'multi/2.ts', 'multi/3.ts')$$,
                       tests.recall('p1')), 'a delete of three paths');
select tests.reset_authentication();
select is((select jsonb_agg(e order by e -> 0) from jsonb_array_elements(pg_temp.events()) e where (e ->> 0)::int > 15),
          '[[16, "file:delete", "multi/1.ts", 2], [17, "file:delete", "multi/2.ts", 2], [18, "file:delete", "multi/3.ts", 2]]'::jsonb,
          '… writes three tombstones, one event each');
select tests.authenticate_as('bob');
select results_eq($$select file_path from public.project_files_current$$, $$values ('multi/4.ts')$$,
                  'project_files_current holds what is left');

-- Binaries --------------------------------------------------------------------------------
select lives_ok(format($$insert into public.project_files (project_id, file_path, storage_path, content_hash, size_bytes)
                          values (%L, 'img/logo.png', 'project-assets/%s/img/logo.png', repeat('ab', 32), 10)$$,
                       tests.recall('p1'), tests.recall('p1')),
                'an insert without content and with storage_path, content_hash, size_bytes');
select tests.reset_authentication();
select is((select row(f.version, f.content, f.storage_path, f.size_bytes, f.file_type)::text from public.project_files f
            where f.file_path = 'img/logo.png'),
          row(1, null::text, format('project-assets/%s/img/logo.png', tests.recall('p1')), 10::bigint, 'binary')::text,
          '… registers a binary, as register_binary_file does');
select tests.authenticate_as('bob');
select throws_ok(format($$insert into public.project_files (project_id, file_path, storage_path, content_hash, size_bytes)
                          values (%L, 'img/x.png', 'elsewhere/x.png', repeat('ab', 32), 10)$$, tests.recall('p1')),
                 'PT422', null, '… with register_binary_file''s rules (storage_path under project-assets/<project>/)');
select is((tests.error_of(format($$insert into public.project_files (project_id, file_path) values (%L, 'empty.ts')$$,
                                 tests.recall('p1'))) ->> 'detail')::jsonb,
          '{"rule": "content", "param": "content"}', 'an insert with neither content nor storage_path → PT422 rule content');

-- Refused statements ----------------------------------------------------------------------
select tests.reset_authentication();
select set_config('tests.files_before', (select count(*)::text from public.project_files), true);
select set_config('tests.seq_before', (select last_seq::text from public.projects where id = tests.recall('p1')), true);
select tests.authenticate_as('bob');
select throws_ok(format($$insert into public.project_files (project_id, file_path, content) values (%L, '../etc/passwd', 'x')$$,
                        tests.recall('p1')),
                 'PT422', 'invalid path "../etc/passwd": dot_segment: "." and ".." segments are not allowed',
                 'a path breaking the rules is refused with the path rule''s error');
select throws_ok(format($$update public.project_files set file_path = 'a//b.ts' where project_id = %L and file_path = 'multi/4.ts'$$,
                        tests.recall('p1')),
                 'PT422', 'invalid path "a//b.ts": empty_segment: the path contains an empty segment ("//")',
                 '… also as a rename target');
select throws_ok(format($$insert into public.project_files (project_id, file_path, content) values (%L, 'multi/4.ts/x', 'x')$$,
                        tests.recall('p1')),
                 'PT409', null, 'a file/folder conflict is PT409, as for the RPC');
select throws_ok(format($$update public.project_files set project_id = %L where project_id = %L and file_path = 'multi/4.ts'$$,
                        tests.recall('p2'), tests.recall('p1')),
                 'PT422', 'project_id cannot change: a file cannot move to another project', 'moving a file to another project → PT422');
select throws_ok(format($$insert into public.project_files (project_id, file_path, content, is_deleted) values (%L, 'd.ts', null, true)$$,
                        tests.recall('p1')),
                 'PT422', 'is_deleted is set by the server: delete the row to delete the file', 'inserting a tombstone → PT422');
select throws_ok(format($$insert into public.project_files (project_id, file_path, content) values (%L, 'p2.ts', 'x')$$,
                        tests.recall('p2')),
                 '42501', format('access denied: you are not a member of project %s', tests.recall('p2')),
                 'an editor of p1 cannot insert into p2');

select tests.authenticate_as('carol');
select throws_ok(format($$insert into public.project_files (project_id, file_path, content) values (%L, 'c.ts', 'c')$$,
                        tests.recall('p1')),
                 '42501', format('access denied: viewers cannot change files of project %s', tests.recall('p1')),
                 'a viewer''s insert → 42501');
select is(pg_temp.returned(format($$update public.project_files set content = 'viewer' where project_id = %L returning id$$,
                                 tests.recall('p1'))), 0, 'a viewer''s update matches no row (RLS)');
select is(pg_temp.returned(format($$delete from public.project_files where project_id = %L returning id$$, tests.recall('p1'))), 0,
          'a viewer''s delete matches no row (RLS)');
select tests.authenticate_as('mallory');
select throws_ok(format($$insert into public.project_files (project_id, file_path, content) values (%L, 'm.ts', 'm')$$,
                        tests.recall('p1')),
                 '42501', format('access denied: you are not a member of project %s', tests.recall('p1')),
                 'a non-member''s insert → 42501');
select lives_ok(format($$update public.project_files set content = 'x' where project_id = %L; delete from public.project_files where project_id = %L$$,
                       tests.recall('p1'), tests.recall('p1')), 'a non-member''s update and delete match no row');
select tests.clear_authentication();
select throws_ok(format($$insert into public.project_files (project_id, file_path, content) values (%L, 'a.ts', 'a')$$, tests.recall('p1')),
                 '42501', 'permission denied for table project_files', 'anon cannot insert');
select throws_ok(format($$delete from public.project_files where project_id = %L$$, tests.recall('p1')),
                 '42501', 'permission denied for table project_files', 'anon cannot delete');
select tests.authenticate_as_container(tests.recall('p1'));
select throws_ok(format($$update public.project_files set content = 'x' where project_id = %L$$, tests.recall('p1')),
                 '42501', 'permission denied for table project_files', 'a container token cannot update');
select tests.reset_authentication();
select is((select count(*)::text from public.project_files), current_setting('tests.files_before'),
          'the refused statements wrote no version');
select is((select last_seq::text from public.projects where id = tests.recall('p1')), current_setting('tests.seq_before'),
          '… and no event');

-- Rate limit and project caps apply per written row ---------------------------------------------
update fsync.settings set value = '3' where key = 'rate_limit.capacity';
update fsync.settings set value = '0.001' where key = 'rate_limit.refill_per_second';
delete from fsync.rate_limit_buckets;
select tests.authenticate_as('bob');
select throws_ok(format($$insert into public.project_files (project_id, file_path, content)
                          select %L, 'burst/' || i, 'b' from generate_series(1, 4) i$$, tests.recall('p1')),
                 'PT429', null, 'four rows against a bucket of three → PT429 for the statement');
select tests.reset_authentication();
select is((select count(*)::int from public.project_files where file_path like 'burst/%'), 0, '… which wrote nothing');
update fsync.settings set value = '200' where key = 'rate_limit.capacity';
update fsync.settings set value = '50' where key = 'rate_limit.refill_per_second';
update fsync.settings set value = (select live_files::text from public.projects where id = tests.recall('p1'))::jsonb
 where key = 'limits.max_project_files';
select tests.authenticate_as('bob');
select throws_ok(format($$insert into public.project_files (project_id, file_path, content) values (%L, 'one-more.ts', 'x')$$,
                        tests.recall('p1')),
                 'PT413', null, 'a full project refuses an insert of a new file (PT413)');
select tests.reset_authentication();
update fsync.settings set value = '65534' where key = 'limits.max_project_files';

-- The service role, the RPCs, cascades -------------------------------------------------------------
select tests.authenticate_as_service_role();
select lives_ok(format($$insert into public.project_files (project_id, file_path, content) values (%L, 'svc.ts', 's')$$,
                       tests.recall('p1')), 'the service role''s insert');
select lives_ok(format($$delete from public.project_files where project_id = %L and file_path = 'multi/4.ts'$$, tests.recall('p1')),
                '… and its delete');
select tests.reset_authentication();
select is(pg_temp.versions('svc.ts'), '[[1, true, false, "s"]]', '… are versioned writes too');
select is(pg_temp.versions('multi/4.ts') -> -1, '[2, true, true, null]', '… (a tombstone)');
select tests.authenticate_as('bob');
select is(fsync.upsert_project_file(tests.recall('p1'), 'svc.ts', 's2') ->> 'version', '2',
          'the upsert RPC still works (its own writes do not enter the trigger)');
select is(fsync.rename_project_file(tests.recall('p1'), 'svc.ts', 'svc2.ts') ->> 'version', '1', 'rename RPC');
select is(fsync.delete_project_file(tests.recall('p1'), 'svc2.ts') ->> 'version', '2', 'delete RPC');
select tests.reset_authentication();
select is(pg_temp.versions('svc.ts') || pg_temp.versions('svc2.ts'),
          '[[1, false, false, "s"], [2, false, false, "s2"], [3, true, true, null], [1, false, false, "s2"], [2, true, true, null]]',
          '… exactly their versions, nothing twice');
select is((select array_agg(seq order by seq) from public.project_events where project_id = tests.recall('p1')),
          (select array_agg(s::bigint) from generate_series(1, (select last_seq from public.projects where id = tests.recall('p1'))::int) s),
          'the change log is gapless: seq 1 … last_seq, one event per write');
select is((select count(*)::int from realtime.messages where topic = 'project:' || tests.recall('p1')),
          (select count(*)::int from public.project_events where project_id = tests.recall('p1')),
          'one broadcast per event');
select tests.authenticate_as('bob');
select is((select count(*)::int from public.list_project_events(json_build_object('project_uuid', tests.recall('p1'), 'after_seq', 0)) as e(value)
            where e.value ->> 'type' = 'file:update' and e.value ->> 'content' = 'v1'), 1,
          'list_project_events serves the legacy writes like any other');
select tests.authenticate_as_service_role();
select lives_ok(format($$delete from public.projects where id = %L$$, tests.recall('p2')),
                'deleting a project cascades to its files (the cascade runs as the owner, not through the trigger)');
select tests.reset_authentication();
select is((select count(*)::int from public.project_files where project_id = tests.recall('p2')), 0, '… all of them');

select * from finish();
rollback;
