-- Read RPCs: snapshot (one consistent read), current files, files by path and
-- version (catch-up), the change log, the sync state.
begin;
create extension if not exists pgtap;
select plan(24);

-- The fs-sync flags as a fresh install seeds them: on a database fs-sync was adopted onto, the
-- operator's rollout (velocity's Phase-0 rows) would decide instead.
update public.feature_flags f
   set enabled = d.enabled, rollout_percentage = case when d.enabled then 100 else 0 end,
       target_user_ids = '{}', environments = '{}'
  from (values ('FSYNC_USE_RPC', true), ('FSYNC_SERVER_BROADCASTS', true), ('FSYNC_BULK_GENERATION', true),
               ('FSYNC_SNAPSHOT_HYDRATION', false), ('FSYNC_KEEP_CLIENT_BROADCAST', false)) as d(flag_key, enabled)
 where f.flag_key = d.flag_key;

select tests.create_supabase_user('alice');
select tests.authenticate_as('alice');
select tests.remember('p1', fsync.create_project('p1'));

-- Empty project ----------------------------------------------------------------------
select is(fsync.get_project_snapshot(tests.recall('p1')),
          jsonb_build_object('project_id', tests.recall('p1'), 'as_of_seq', 0, 'files', '[]'::jsonb),
          'snapshot of an empty project: as_of_seq 0, no files');
select is(fsync.get_project_sync_state(tests.recall('p1')),
          jsonb_build_object('project_id', tests.recall('p1'), 'seq', 0), 'sync state of an empty project');
select is_empty($$select * from fsync.list_project_events(tests.recall('p1'), 0)$$, 'no events yet');

-- Some history -------------------------------------------------------------------------
select fsync.upsert_project_file(tests.recall('p1'), 'src/b.ts', 'b1');                 -- seq 1
select fsync.upsert_project_file(tests.recall('p1'), 'src/b.ts', 'b2');                 -- seq 2
select fsync.upsert_project_file(tests.recall('p1'), 'a.md', '# a');                    -- seq 3
select fsync.upsert_project_file(tests.recall('p1'), 'big.txt', repeat('z', 70000));    -- seq 4
select fsync.upsert_project_file(tests.recall('p1'), 'tmp.txt', 'tmp');                 -- seq 5
select fsync.delete_project_file(tests.recall('p1'), 'tmp.txt');                        -- seq 6
select fsync.rename_project_file(tests.recall('p1'), 'a.md', 'docs/a.md');              -- seq 7

select results_eq($$select file_path, content, version, file_type, size_bytes from fsync.list_current_files(tests.recall('p1'))$$,
  $$values ('big.txt', repeat('z', 70000), 1, 'text', 70000::bigint), ('docs/a.md', '# a', 1, 'markdown', 3::bigint),
           ('src/b.ts', 'b2', 2, 'typescript', 2::bigint)$$,
  'list_current_files: live heads ordered by path, tombstones excluded');
select is((select jsonb_path_query_array(s, '$.files[*].file_path') from fsync.get_project_snapshot(tests.recall('p1')) s),
          '["big.txt", "docs/a.md", "src/b.ts"]'::jsonb, 'snapshot files are the live heads ordered by path');
select is((fsync.get_project_snapshot(tests.recall('p1')) ->> 'as_of_seq')::int, 7, 'snapshot as_of_seq is the last seq');
select is((fsync.get_project_snapshot(tests.recall('p1')) -> 'files' -> 2) - 'updated_at',
          jsonb_build_object('file_path', 'src/b.ts', 'content', 'b2', 'content_hash', encode(sha256('b2'::bytea), 'hex'),
                             'version', 2, 'file_type', 'typescript', 'size_bytes', 2, 'storage_path', null),
          'snapshot file entries carry content and metadata');
select ok(not (fsync.get_project_snapshot(tests.recall('p1'), false) -> 'files' -> 0 ? 'content'),
          'include_content => false leaves contents out');
select is(fsync.get_project_sync_state(tests.recall('p1')) -> 'seq', '7'::jsonb, 'sync state is the last seq');

-- Files by path and version ---------------------------------------------------------------
select results_eq($$select file_path, version, content, is_deleted, is_current_version
                    from fsync.get_project_files(tests.recall('p1'), array['src/b.ts', 'tmp.txt', 'nope.txt'])$$,
  $$values ('src/b.ts', 2, 'b2', false, true), ('tmp.txt', 2, null::text, true, true)$$,
  'by path: heads in request order, tombstones flagged, missing paths omitted');
select results_eq($$select file_path, version, content from fsync.get_project_files(tests.recall('p1'), array['src/b.ts', 'src/b.ts', 'a.md'], array[1, null, 1])$$,
  $$values ('src/b.ts', 1, 'b1'), ('src/b.ts', 2, 'b2'), ('a.md', 1, '# a')$$,
  'by path and version: historical versions, null = head');
select is((select count(*)::int from fsync.get_project_files(tests.recall('p1'))), 3, 'no paths: all live heads');
select throws_ok(format($$select * from fsync.get_project_files(%L, array['a'], array[1, 2])$$, tests.recall('p1')),
                 'PT422', 'versions must have one entry per path', 'versions must match paths');

-- Change log ---------------------------------------------------------------------------------
select results_eq($$select (e ->> 'seq')::int, e ->> 'type' from fsync.list_project_events(tests.recall('p1'), 0) e$$,
  $$values (1, 'file:update'), (2, 'file:update'), (3, 'file:update'), (4, 'file:update'), (5, 'file:update'),
           (6, 'file:delete'), (7, 'file:rename')$$, 'all events in seq order');
select results_eq($$select (e ->> 'seq')::int from fsync.list_project_events(tests.recall('p1'), 3, 2) e$$,
                  $$values (4), (5)$$, 'after_seq and max_events select a window');
select is_empty($$select * from fsync.list_project_events(tests.recall('p1'), 7)$$, 'nothing after the last seq');
select is((select e ->> 'content' from fsync.list_project_events(tests.recall('p1'), 0) e where e ->> 'seq' = '1'), 'b1',
          'the log re-attaches historical content of small files');
select is((select e ->> 'content' from fsync.list_project_events(tests.recall('p1'), 6) e), '# a',
          'renames carry content too');
select ok((select e -> 'content_omitted' = 'true' and not (e ? 'content')
             from fsync.list_project_events(tests.recall('p1'), 3, 1) e), 'large files are content_omitted in the log');
select throws_ok(format($$select * from fsync.list_project_events(%L, 0, 0)$$, tests.recall('p1')),
                 'PT422', 'max_events must be between 1 and 1000', 'max_events must be positive');
select throws_ok(format($$select * from fsync.list_project_events(%L, -1)$$, tests.recall('p1')),
                 'PT422', 'after_seq must be >= 0', 'after_seq must not be negative');
select tests.reset_authentication();
select results_eq($$select m.payload - 'id' from realtime.messages m where m.topic = 'project:' || tests.recall('p1')
                     order by (m.payload ->> 'seq')::int$$,
                  $$select e from fsync.list_project_events(tests.recall('p1'), 0) e$$,
                  'the log returns exactly what was broadcast');
select tests.authenticate_as_service_role();
select count(fsync.upsert_project_file(tests.recall('p1'), 'n' || i, 'x')) from generate_series(1, 1100) i;
select is((select count(*)::int from fsync.list_project_events(tests.recall('p1'), 0, 5000)), 1000,
          'at most 1000 events per call');

-- Consistency: the snapshot agrees with the log ---------------------------------------------
select is((select count(*)::int from jsonb_array_elements(fsync.get_project_snapshot(tests.recall('p1')) -> 'files')),
          (select count(*)::int from fsync.list_current_files(tests.recall('p1'))),
          'snapshot and list_current_files agree');

select tests.reset_authentication();
select * from finish();
rollback;
