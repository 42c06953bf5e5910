-- Snapshot records (migrations/*_fsync-snapshot-records.sql): the edge records
-- each archive it stores; find_project_snapshot offers it for reuse only while
-- it is current (as_of_seq = the project's last_seq) and its object is in
-- Storage at the recorded size. Both RPCs are the service role's alone.
begin;
create extension if not exists pgtap;
select plan(33);

update public.feature_flags f
   set enabled = false, rollout_percentage = 0, target_user_ids = '{}', environments = '{}'
 where f.flag_key = 'FSYNC_SNAPSHOT_HYDRATION';

select tests.create_supabase_user('alice');
select tests.authenticate_as('alice');
select tests.remember('p1', fsync.create_project('p1'));
select fsync.upsert_project_file(tests.recall('p1'), 'src/App.tsx', 'export {}');
select tests.reset_authentication();

-- The record the edge would send for p1 at seq `seq` with snapshot id `id`.
create function pg_temp.record(p_id text, p_seq bigint, p_sha text default repeat('b', 64), p_size bigint default 100)
returns boolean language sql as $$
  select public.record_project_snapshot(json_build_object(
    'project_uuid', tests.recall('p1'), 'snapshot_id', p_id, 'as_of_seq', p_seq, 'sha256', p_sha,
    'size_bytes', p_size, 'file_count', 1))
$$;
create function pg_temp.found() returns jsonb language sql as $$
  select public.find_project_snapshot(json_build_object('project_uuid', tests.recall('p1'),
                                                        'flag_key', 'FSYNC_SNAPSHOT_HYDRATION'))
$$;
create function pg_temp.store(p_id text, p_size bigint) returns void language sql as $$
  insert into storage.objects (bucket_id, name, metadata)
  values ('project-snapshots', tests.recall('p1') || '/' || p_id || '.zip', jsonb_build_object('size', p_size))
$$;

-- Who may call ------------------------------------------------------------------------------
select ok(not has_function_privilege(r, f, 'execute'), format('%s may not call %s', r, f))
  from (values ('anon'), ('authenticated')) as x(r),
       (values ('public.find_project_snapshot(json)'), ('public.record_project_snapshot(json)')) as y(f);
select is(c.relrowsecurity, true, 'fsync.project_snapshots has row level security')
  from pg_catalog.pg_class c where c.oid = 'fsync.project_snapshots'::regclass;
select ok(not has_table_privilege(r, 'fsync.project_snapshots', 'select'), format('%s cannot read the records', r))
  from unnest(array['anon', 'authenticated', 'service_role']) as r;
select tests.authenticate_as('alice');
select throws_ok(format($$select fsync.find_project_snapshot(%L::uuid)$$, tests.recall('p1')),
                 '42501', 'permission denied for function find_project_snapshot',
                 'a member cannot call the definer function behind it either');
select throws_ok(format($$select fsync.record_project_snapshot(%L::uuid, %L, 1, %L, 1, 1)$$,
                        tests.recall('p1'), repeat('a', 64), repeat('b', 64)),
                 '42501', 'permission denied for function record_project_snapshot',
                 '… nor the one that records');

-- Finding ----------------------------------------------------------------------------------
select tests.authenticate_as_service_role();
select is(pg_temp.found(),
          jsonb_build_object('project_id', tests.recall('p1'), 'last_seq', 1, 'flag_enabled', false, 'snapshot', null,
                             'cut', null),
          'nothing recorded: the project''s last_seq and the flag, no snapshot');
select is(public.find_project_snapshot(json_build_object('project_uuid', tests.recall('p1'))) -> 'flag_enabled',
          'null'::jsonb, 'without flag_key no flag is evaluated');
select is(public.find_project_snapshot(json_build_object('project_uuid', '00000000-0000-4000-8000-000000000000')),
          null, 'an unknown project is null');
select is(public.find_project_snapshot(json_build_object('project_uuid', tests.recall('p1'), 'cut', true,
                                                        'flag_key', 'FSYNC_SNAPSHOT_HYDRATION')) -> 'cut',
          'null'::jsonb, 'no cut while the flag is off for the owner (nothing will be built)');
select is(public.find_project_snapshot(json_build_object('project_uuid', tests.recall('p1'), 'cut', true)) -> 'cut',
          (select public.get_project_snapshot(json_build_object('project_uuid', tests.recall('p1'), 'include_content', false))),
          'with cut and nothing to reuse: get_project_snapshot''s cut, without contents by default');
select is(public.find_project_snapshot(json_build_object('project_uuid', tests.recall('p1'), 'cut', true,
                                                        'content_max_bytes', 9)) #>> '{cut,files,0,content}',
          'export {}', '… with them when the project holds at most content_max_bytes');
select is(public.find_project_snapshot(json_build_object('project_uuid', tests.recall('p1'), 'cut', true,
                                                        'content_max_bytes', 8)) #> '{cut,files,0}' ? 'content',
          false, '… and without them above');
select is(pg_temp.record(repeat('a', 64), 1), true, 'recording the archive of the current cut');
select is(pg_temp.found() -> 'snapshot', 'null'::jsonb, 'a record whose object is not in Storage is not offered');
select pg_temp.store(repeat('a', 64), 100);
select is(pg_temp.found() -> 'snapshot',
          jsonb_build_object('snapshot_id', repeat('a', 64), 'object_name', tests.recall('p1') || '/' || repeat('a', 64) || '.zip',
                             'as_of_seq', 1, 'sha256', repeat('b', 64), 'size_bytes', 100, 'file_count', 1),
          'with its object stored, the record is offered for reuse: name, SHA-256, size');
update storage.objects set metadata = '{"size": 99}' where name = tests.recall('p1') || '/' || repeat('a', 64) || '.zip';
select is(pg_temp.found() -> 'snapshot', 'null'::jsonb, 'an object of another size than recorded is not offered');
update storage.objects set metadata = '{"size": 100}' where name = tests.recall('p1') || '/' || repeat('a', 64) || '.zip';
update public.feature_flags set enabled = true, rollout_percentage = 100 where flag_key = 'FSYNC_SNAPSHOT_HYDRATION';
select is(pg_temp.found() -> 'flag_enabled', 'true'::jsonb, 'flag_enabled is the flag for the project''s owner');
select is(public.find_project_snapshot(json_build_object('project_uuid', tests.recall('p1'), 'cut', true)) -> 'cut',
          'null'::jsonb, 'no cut when there is an archive to reuse');

-- A change makes the record stale ---------------------------------------------------------
select tests.authenticate_as('alice');
select fsync.upsert_project_file(tests.recall('p1'), 'src/App.tsx', 'export default 1');
select tests.authenticate_as_service_role();
select is(pg_temp.found() -> 'last_seq', '2'::jsonb, 'the project moved to seq 2');
select is(pg_temp.found() -> 'snapshot', 'null'::jsonb, '… and the archive cut at seq 1 is no longer offered');
select is(pg_temp.record(repeat('c', 64), 2, repeat('d', 64), 120), true, 'recording the new cut replaces the record');
select pg_temp.store(repeat('c', 64), 120);
select is(pg_temp.found() #>> '{snapshot,snapshot_id}', repeat('c', 64), '… which is offered');
select is(pg_temp.record(repeat('a', 64), 1), false, 'a late record of an older cut (a slow racing build) is ignored');
select is(pg_temp.found() #>> '{snapshot,sha256}', repeat('d', 64), '… the newer one stays');

-- Bad input --------------------------------------------------------------------------------
select throws_ok($$select pg_temp.record('not-hex', 2)$$, 'PT422', 'invalid snapshot_id: 64 lowercase hex digits expected',
                 'a snapshot id is 64 hex digits');
select throws_ok(format($$select pg_temp.record(%L, 2, 'x')$$, repeat('c', 64)), 'PT422',
                 'invalid sha256: 64 lowercase hex digits expected', 'a SHA-256 is 64 hex digits');
select throws_ok(format($$select public.record_project_snapshot(json_build_object('project_uuid', %L, 'snapshot_id', %L,
                          'as_of_seq', 1, 'sha256', %L, 'size_bytes', 1, 'file_count', 1))$$,
                        '00000000-0000-4000-8000-000000000000', repeat('a', 64), repeat('b', 64)),
                 'PT404', 'project 00000000-0000-4000-8000-000000000000 not found', 'recording for an unknown project is PT404');

-- Deleting the project deletes its record -------------------------------------------------
select tests.reset_authentication();
delete from public.projects where id = tests.recall('p1')::uuid;
select is((select count(*)::int from fsync.project_snapshots where project_id = tests.recall('p1')::uuid), 0,
          'deleting the project deletes its record (cascade)');

select * from finish();
rollback;
