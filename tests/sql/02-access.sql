-- Access per role: anon, owner, editor, viewer, non-member, service_role, and
-- container tokens (right project, other project, missing scope). Expired
-- tokens are refused by PostgREST/Realtime before SQL runs, so not tested here.
begin;
create extension if not exists pgtap;
select plan(54);
-- (an adopted database has the app's projects too)
select set_config('tests.projects_before', (select count(*)::text from public.projects), true);

select tests.create_supabase_user('alice');    -- owner of p1
select tests.create_supabase_user('bob');      -- editor of p1
select tests.create_supabase_user('carol');    -- viewer of p1
select tests.create_supabase_user('mallory');  -- owner of p2, nobody in p1

select tests.authenticate_as('alice');
select tests.remember('p1', public.create_project(json_build_object('p_name', 'p1')));
select public.upsert_project_file(json_build_object('project_uuid', tests.recall('p1'), 'p_file_path', 'src/App.tsx', 'p_content', 'export {}'));
select tests.authenticate_as('mallory');
select tests.remember('p2', public.create_project(json_build_object('p_name', 'p2')));
select public.upsert_project_file(json_build_object('project_uuid', tests.recall('p2'), 'p_file_path', 'secret.txt', 'p_content', 'mallory only'));

-- Project management ---------------------------------------------------------
select tests.authenticate_as('alice');
select results_eq($$select role from public.project_members where project_id = tests.recall('p1')$$,
                  $$values ('owner')$$, 'create_project makes the caller the owner');
select lives_ok(format($$select public.add_project_member(json_build_object('project_uuid', %L, 'p_user_id', %L, 'p_role', 'editor'))$$,
                 tests.recall('p1'), tests.get_supabase_uid('bob')),
                'owner adds an editor');
select lives_ok(format($$select public.add_project_member(json_build_object('project_uuid', %L, 'p_user_id', %L, 'p_role', 'viewer'))$$,
                 tests.recall('p1'), tests.get_supabase_uid('carol')),
                'owner adds a viewer');
select throws_ok(format($$select public.add_project_member(json_build_object('project_uuid', %L, 'p_user_id', %L, 'p_role', 'admin'))$$,
                 tests.recall('p1'), tests.get_supabase_uid('carol')),
                 'PT422', 'invalid member role "admin": use owner, editor or viewer', 'unknown member role is refused');
select throws_ok(format($$select public.remove_project_member(json_build_object('project_uuid', %L, 'p_user_id', %L))$$,
                 tests.recall('p1'), tests.get_supabase_uid('alice')),
                 'PT422', 'the project owner cannot be removed', 'the owner cannot be removed');
select tests.authenticate_as('bob');
select throws_ok(format($$select public.add_project_member(json_build_object('project_uuid', %L, 'p_user_id', %L, 'p_role', 'owner'))$$,
                 tests.recall('p1'), tests.get_supabase_uid('mallory')),
                 '42501', format('access denied: only the owner manages members of project %s', tests.recall('p1')),
                 'an editor cannot manage members');
select tests.authenticate_as('mallory');
select throws_ok(format($$select public.add_project_member(json_build_object('project_uuid', %L, 'p_user_id', %L, 'p_role', 'owner'))$$,
                 tests.recall('p1'), tests.get_supabase_uid('mallory')),
                 '42501', format('access denied: you are not a member of project %s', tests.recall('p1')),
                 'a non-member cannot add themselves');
select throws_ok(format($$select public.create_project(json_build_object('p_name', 'x', 'p_owner_id', %L))$$,
                 tests.get_supabase_uid('alice')),
                 '42501', 'access denied: you can only create projects you own', 'users cannot create projects for others');

-- anon ------------------------------------------------------------------------
select tests.clear_authentication();
select throws_ok($$select * from public.projects$$, '42501', 'permission denied for table projects', 'anon: projects');
select throws_ok($$select * from public.project_files$$,
                 '42501', 'permission denied for table project_files', 'anon: project_files');
select throws_ok($$select * from public.project_files_current$$,
                 '42501', 'permission denied for view project_files_current', 'anon: view');
select throws_ok($$select * from public.project_events$$,
                 '42501', 'permission denied for table project_events', 'anon: project_events');
select throws_ok($$select * from public.project_members$$,
                 '42501', 'permission denied for table project_members', 'anon: project_members');
select throws_ok(format($$select * from public.list_current_files(json_build_object('project_uuid', %L))$$,
                 tests.recall('p1')),
                 '42501', 'permission denied for function list_current_files', 'anon cannot call read RPCs');
select throws_ok(format($$select public.upsert_project_file(json_build_object('project_uuid', %L, 'p_file_path', 'x.ts', 'p_content', 'x'))$$,
                 tests.recall('p1')),
                 '42501', 'permission denied for function upsert_project_file', 'anon cannot call write RPCs');
select throws_ok($$select public.create_project(json_build_object('p_name', 'anon project'))$$,
                 '42501', 'permission denied for function create_project', 'anon cannot create projects');
select throws_ok(format($$select fsync.upsert_project_file(%L, 'x.ts', 'x', null, null)$$, tests.recall('p1')),
                 '42501', 'permission denied for schema fsync', 'anon cannot reach the fsync schema');

-- members -----------------------------------------------------------------------
select tests.authenticate_as('alice');
select results_eq($$select name from public.projects$$, $$values ('p1')$$, 'owner sees only her project');
select is((select count(*)::int from public.project_members), 3, 'owner sees the members of her project');
select tests.authenticate_as('bob');
select results_eq($$select file_path from public.project_files$$, $$values ('src/App.tsx')$$, 'editor reads files');
select results_eq($$select file_path from public.project_files_current$$,
                 $$values ('src/App.tsx')$$, 'editor reads the current view');
select is((select count(*)::int from public.project_events), 1, 'editor reads the change log');
select lives_ok(format($$select public.upsert_project_file(json_build_object('project_uuid', %L, 'p_file_path', 'src/b.ts', 'p_content', 'b'))$$,
                 tests.recall('p1')), 'editor writes');
select tests.authenticate_as('carol');
select is((select count(*)::int from public.list_current_files(json_build_object('project_uuid', tests.recall('p1')))), 2, 'viewer reads through the RPC');
select throws_ok(format($$select public.upsert_project_file(json_build_object('project_uuid', %L, 'p_file_path', 'src/c.ts', 'p_content', 'c'))$$,
                 tests.recall('p1')),
                 '42501', format('access denied: viewers cannot change files of project %s', tests.recall('p1')),
                 'viewer cannot write');
select throws_ok(format($$select public.delete_project_file(json_build_object('project_uuid', %L, 'p_file_path', 'src/b.ts'))$$,
                 tests.recall('p1')),
                 '42501', format('access denied: viewers cannot change files of project %s', tests.recall('p1')),
                 'viewer cannot delete');

-- direct writes: only project_files, and only as RPC writes (16-legacy-writes.sql) -----
select tests.authenticate_as('alice');
select lives_ok(format($$insert into public.project_files (project_id, file_path, content, file_type, version, content_hash)
                          values (%L, 'x.ts', 'x', 'typescript', 1, repeat('0', 64))$$, tests.recall('p1')),
                'the owner may insert a file row');
select is((select row(f.version, f.content_hash)::text from public.project_files f where f.file_path = 'x.ts'),
          row(1, encode(sha256('x'::bytea), 'hex'))::text, '… which becomes an RPC write: the server''s version and hash');
select throws_ok($$update public.projects set last_seq = 0$$, '42501', 'permission denied for table projects',
                 'owner cannot touch last_seq');
select throws_ok($$delete from public.project_events$$, '42501', 'permission denied for table project_events',
                 'owner cannot delete events');
select throws_ok($$insert into public.project_members (project_id, user_id, role) select id, id, 'owner' from public.projects$$,
                 '42501', 'permission denied for table project_members', 'members cannot be inserted directly');

-- non-member ------------------------------------------------------------------------
select tests.authenticate_as('mallory');
select results_eq($$select name from public.projects$$, $$values ('p2')$$, 'non-member does not see p1');
select is_empty(format($$select * from public.project_files where project_id = %L$$,
                 tests.recall('p1')), 'non-member sees no p1 files');
select is_empty(format($$select * from public.project_files_current where project_id = %L$$,
                 tests.recall('p1')), 'non-member: view empty');
select is_empty(format($$select * from public.project_events where project_id = %L$$,
                 tests.recall('p1')), 'non-member sees no p1 events');
select is_empty(format($$select * from public.project_members where project_id = %L$$,
                 tests.recall('p1')), 'non-member sees no p1 members');
select throws_ok(format($$select * from public.list_current_files(json_build_object('project_uuid', %L))$$,
                 tests.recall('p1')),
                 '42501', format('access denied: you are not a member of project %s', tests.recall('p1')), 'non-member: list_current_files');
select throws_ok(format($$select public.get_project_snapshot(json_build_object('project_uuid', %L))$$, tests.recall('p1')),
                 '42501', format('access denied: you are not a member of project %s', tests.recall('p1')), 'non-member: snapshot');
select throws_ok(format($$select public.upsert_project_file(json_build_object('project_uuid', %L, 'p_file_path', 'x.ts', 'p_content', 'x'))$$,
                 tests.recall('p1')),
                 '42501', format('access denied: you are not a member of project %s', tests.recall('p1')), 'non-member: write');
select throws_ok($$select public.get_project_sync_state(json_build_object('project_uuid', '00000000-0000-0000-0000-000000000000'))$$,
                 '42501', 'access denied: you are not a member of project 00000000-0000-0000-0000-000000000000',
                 'a missing project looks the same as a foreign one (no existence probe)');

-- service role --------------------------------------------------------------------
select tests.authenticate_as_service_role();
select is((select count(*)::int from public.projects), 2 + current_setting('tests.projects_before')::int,
          'service role sees every project');
select is((select count(*)::int from public.list_current_files(json_build_object('project_uuid', tests.recall('p2')))), 1, 'service role reads any project');
select lives_ok(format($$select public.upsert_project_file(json_build_object('project_uuid', %L, 'p_file_path', 'from-service.ts', 'p_content', 'x'))$$,
                 tests.recall('p1')), 'service role writes');
select throws_ok($$select public.get_project_sync_state(json_build_object('project_uuid', '00000000-0000-0000-0000-000000000000'))$$,
                 'PT404', 'project 00000000-0000-0000-0000-000000000000 not found', 'service role gets PT404 for a missing project');

-- container tokens ---------------------------------------------------------------
select tests.authenticate_as_container(tests.recall('p1'));
select is((select count(*)::int from public.list_current_files(json_build_object('project_uuid', tests.recall('p1')))), 4, 'container reads its project');
select lives_ok(format($$select public.get_project_snapshot(json_build_object('project_uuid', %L))$$,
                 tests.recall('p1')), 'container: snapshot');
select lives_ok(format($$select * from public.list_project_events(json_build_object('project_uuid', %L, 'after_seq', 0))$$,
                 tests.recall('p1')), 'container: events');
select lives_ok(format($$select * from public.get_project_files(json_build_object('project_uuid', %L, 'paths', array['src/App.tsx']))$$,
                 tests.recall('p1')), 'container: files');
select lives_ok(format($$select public.get_project_sync_state(json_build_object('project_uuid', %L))$$,
                 tests.recall('p1')), 'container: sync state');
select throws_ok(format($$select * from public.list_current_files(json_build_object('project_uuid', %L))$$,
                 tests.recall('p2')),
                 '42501', format('access denied: this container token is not for project %s', tests.recall('p2')),
                 'container cannot read another project');
select throws_ok(format($$select public.upsert_project_file(json_build_object('project_uuid', %L, 'p_file_path', 'x.ts', 'p_content', 'x'))$$,
                 tests.recall('p1')),
                 '42501', 'permission denied for function upsert_project_file', 'container cannot call write RPCs');
select throws_ok(format($$select fsync.upsert_project_file(%L, 'x.ts', 'x', null, null)$$, tests.recall('p1')),
                 '42501', 'permission denied for function upsert_project_file', 'container cannot call write implementations');
select throws_ok($$select * from public.project_files$$, '42501', 'permission denied for table project_files',
                 'container has no table access');
select tests.authenticate_as_container(tests.recall('p1'), 'fsync:write other');
select throws_ok(format($$select * from public.list_current_files(json_build_object('project_uuid', %L))$$,
                 tests.recall('p1')),
                 '42501', 'access denied: the container token lacks the fsync:read scope', 'container needs scope fsync:read');

select tests.reset_authentication();
select * from finish();
rollback;
