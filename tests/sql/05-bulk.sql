-- bulk_upsert_project_files: all or nothing, one bulk:apply event, limits.
begin;
create extension if not exists pgtap;
select plan(37);

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
select fsync.upsert_project_file(tests.recall('p1'), 'keep.ts', 'same');
select fsync.upsert_project_file(tests.recall('p1'), 'gone.ts', 'bye');

-- Success ---------------------------------------------------------------------------
select is(fsync.bulk_upsert_project_files(tests.recall('p1'), replace($$[
  {"file_path": "src/a.ts", "content": "a"},
  {"file_path": "keep.ts", "content": "same"},
  {"file_path": "docs/b", "content": "b", "file_type": "markdown"},
  {"file_path": "gone.ts", "delete": true},
  {"file_path": "img/c.png", "storage_path": "project-assets/P1/img/c.png", "content_hash": "abababababababababababababababababababababababababababababababab", "size_bytes": 10}
]$$, 'P1', tests.recall('p1')::text)::jsonb) - 'project_id',
  jsonb_build_object('seq', 3, 'applied', 4, 'unchanged', 1, 'files', jsonb_build_array(
    jsonb_build_object('file_path', 'src/a.ts', 'version', 1, 'content_hash', encode(sha256('a'::bytea), 'hex'), 'deleted', false, 'noop', false),
    jsonb_build_object('file_path', 'keep.ts', 'version', 1, 'content_hash', encode(sha256('same'::bytea), 'hex'), 'deleted', false, 'noop', true),
    jsonb_build_object('file_path', 'docs/b', 'version', 1, 'content_hash', encode(sha256('b'::bytea), 'hex'), 'deleted', false, 'noop', false),
    jsonb_build_object('file_path', 'gone.ts', 'version', 2, 'content_hash', null, 'deleted', true, 'noop', false),
    jsonb_build_object('file_path', 'img/c.png', 'version', 1, 'content_hash', repeat('ab', 32), 'deleted', false, 'noop', false))),
  'bulk applies saves, deletes and binaries; unchanged entries are no-ops');
select tests.reset_authentication();
select is((select count(*)::int from public.project_events where project_id = tests.recall('p1') and event_type = 'bulk:apply'), 1,
          'one bulk:apply event');
select is((select payload - 'timestamp' - 'actor' - 'project_id' from public.project_events
            where project_id = tests.recall('p1') and seq = 3),
          jsonb_build_object('v', 1, 'seq', 3, 'type', 'bulk:apply', 'files', jsonb_build_array(
            jsonb_build_object('file_path', 'src/a.ts', 'version', 1, 'content_hash', encode(sha256('a'::bytea), 'hex'), 'deleted', false),
            jsonb_build_object('file_path', 'docs/b', 'version', 1, 'content_hash', encode(sha256('b'::bytea), 'hex'), 'deleted', false),
            jsonb_build_object('file_path', 'gone.ts', 'version', 2, 'content_hash', null, 'deleted', true),
            jsonb_build_object('file_path', 'img/c.png', 'version', 1, 'content_hash', repeat('ab', 32), 'deleted', false))),
          'bulk:apply lists the changed files without contents');
select is((select count(*)::int from realtime.messages
            where topic = 'project:' || tests.recall('p1') and event = 'bulk:apply' and not (payload ? 'content')), 1,
          'one bulk:apply broadcast, without content');
select is((select file_type from public.project_files where file_path = 'docs/b'), 'markdown', 'per-entry file_type');

select tests.authenticate_as('alice');
select is(fsync.bulk_upsert_project_files(tests.recall('p1'), '[{"file_path": "src/a.ts", "content": "a"}]') ->> 'seq', null,
          'an all-no-op bulk returns seq null');
select is(fsync.bulk_upsert_project_files(tests.recall('p1'), '[]') ->> 'applied', '0', 'an empty bulk is a no-op');
select tests.reset_authentication();
select is((select count(*)::int from public.project_events where project_id = tests.recall('p1')), 3,
          'no-op bulks write no event');

-- All or nothing ------------------------------------------------------------------------
select set_config('tests.files_before', (select count(*)::text from public.project_files), true);
select set_config('tests.messages_before', (select count(*)::text from realtime.messages), true);
select tests.authenticate_as('alice');
select throws_ok(format($$select fsync.bulk_upsert_project_files(%L, '[
    {"file_path": "ok1.ts", "content": "1"},
    {"file_path": "ok2.ts", "content": "2"},
    {"file_path": "bad//path.ts", "content": "3"},
    {"file_path": "ok4.ts", "content": "4"}]')$$, tests.recall('p1')),
  'PT422', 'files[2]: invalid path "bad//path.ts": empty_segment: the path contains an empty segment ("//")',
  'an invalid entry midway refuses the whole bulk');
select is((tests.error_of(format($$select fsync.bulk_upsert_project_files(%L, '[{"file_path": "ok1.ts", "content": "1"}, {"file_path": "/x", "content": "3"}]')$$,
                                 tests.recall('p1'))) ->> 'detail')::jsonb,
          '{"rule": "absolute", "path": "/x", "index": 1, "param": "files[1].file_path"}'::jsonb,
          'PT422 DETAIL names the rule, path, index and param');
select throws_ok(format($$select fsync.bulk_upsert_project_files(%L, '[
    {"file_path": "ok1.ts", "content": "1"},
    {"file_path": "src/a.ts", "content": "changed", "expected_version": 7},
    {"file_path": "ok3.ts", "content": "3"}]')$$, tests.recall('p1')),
  'PT409', 'version conflict on "src/a.ts": expected version 7, but the current version is 1',
  'a conflict midway (after earlier entries were written) refuses the whole bulk');
select throws_ok(format($$select fsync.bulk_upsert_project_files(%L, '[
    {"file_path": "ok1.ts", "content": "1"},
    {"file_path": "never.ts", "delete": true}]')$$, tests.recall('p1')),
  'PT404', 'file "never.ts" not found', 'deleting a missing file refuses the whole bulk');
select throws_ok(format($$select fsync.bulk_upsert_project_files(%L, '[
    {"file_path": "ok1.ts", "content": "1"},
    {"file_path": "img/d.png", "storage_path": "project-snapshots/elsewhere.png", "content_hash": "%s", "size_bytes": 1}]')$$,
    tests.recall('p1'), repeat('ab', 32)),
  'PT422', format('invalid storage_path: upload binaries to the project-assets bucket under the project''s folder: '
                  'the storage_path must start with "project-assets/%s/"', tests.recall('p1')),
  'a binary entry outside project-assets/<project>/ refuses the whole bulk');
select tests.reset_authentication();
select is((select count(*)::text from public.project_files), current_setting('tests.files_before'), 'refused bulks left no row');
select is((select last_seq from public.projects where id = tests.recall('p1')), 3::bigint, 'refused bulks took no seq');
select is((select count(*)::text from realtime.messages), current_setting('tests.messages_before'), 'refused bulks sent nothing');

-- A failure in pass 2 (writing), after entries 1 and 2 were written: entry 1 creates a
-- file, entry 2 flips the head of an existing one, entry 3 has a stale expected_version.
-- Both writes are rolled back with the call: no row, no head change, no event, no seq.
select set_config('tests.events_before', (select count(*)::text from public.project_events), true);
select tests.authenticate_as('alice');
select throws_ok(format($$select fsync.bulk_upsert_project_files(%L, '[
    {"file_path": "mid/new.ts", "content": "written first"},
    {"file_path": "keep.ts", "content": "written second", "expected_version": 1},
    {"file_path": "docs/b", "content": "stale", "expected_version": 5}]')$$, tests.recall('p1')),
  'PT409', 'version conflict on "docs/b": expected version 5, but the current version is 1',
  'a stale expected_version in the third entry refuses the bulk after two entries were written');
select tests.reset_authentication();
select is((select count(*)::int from public.project_files where file_path = 'mid/new.ts'), 0,
          'entry 1 (a new file) left no row');
select results_eq($$select version, content, is_current_version from public.project_files where file_path = 'keep.ts' order by version$$,
                  $$values (1, 'same', true)$$, 'entry 2 left no version and the head did not move');
select is((select count(*)::text from public.project_events), current_setting('tests.events_before'), 'no event');
select is((select last_seq from public.projects where id = tests.recall('p1')), 3::bigint, 'seq unchanged');
select is((select count(*)::text from realtime.messages), current_setting('tests.messages_before'), 'nothing broadcast');

-- Format errors --------------------------------------------------------------------------
select tests.authenticate_as('alice');
select throws_ok(format($$select fsync.bulk_upsert_project_files(%L, '{"file_path": "a"}')$$, tests.recall('p1')),
  'PT422', 'files must be a JSON array of {file_path, content, …} objects', 'files must be an array');
select throws_ok(format($$select fsync.bulk_upsert_project_files(%L, '[{"file_path": "a.ts"}]')$$, tests.recall('p1')),
  'PT422', 'files[0]: give content (a string), storage_path with content_hash and size_bytes, or delete: true',
  'an entry needs content, a binary, or delete');
select throws_ok(format($$select fsync.bulk_upsert_project_files(%L, '[{"content": "x"}]')$$, tests.recall('p1')),
  'PT422', 'files[0] must be an object with a string file_path', 'an entry needs a file_path');
select throws_ok(format($$select fsync.bulk_upsert_project_files(%L, '[{"file_path": "a.ts", "content": "x", "expected_version": 1.5}]')$$, tests.recall('p1')),
  'PT422', 'files[0]: expected_version must be an integer >= 0', 'expected_version must be an integer');
select throws_ok(format($$select fsync.bulk_upsert_project_files(%L, '[{"file_path": "a.ts", "content": "x", "delete": "yes"}]')$$, tests.recall('p1')),
  'PT422', 'files[0]: delete must be true or false', 'delete must be a boolean');
select throws_ok(format($$select fsync.bulk_upsert_project_files(%L, '[{"file_path": "d.ts", "content": "1"}, {"file_path": "d.ts", "content": "2"}]')$$, tests.recall('p1')),
  'PT422', 'file "d.ts" appears more than once in the bulk', 'duplicate paths are refused');

-- Limits ---------------------------------------------------------------------------------
select throws_ok(format($$select fsync.bulk_upsert_project_files(%L, (select jsonb_agg(jsonb_build_object('file_path', 'f' || i, 'content', 'x')) from generate_series(1, 5001) i))$$,
                        tests.recall('p1')),
  'PT413', 'too many files in one bulk: 5001; the limit is 5000', 'more than 5,000 files → PT413');
select is((tests.error_of(format($$select fsync.bulk_upsert_project_files(%L, (select jsonb_agg(jsonb_build_object('file_path', 'f' || i, 'content', 'x')) from generate_series(1, 5001) i))$$,
                                 tests.recall('p1'))) ->> 'detail')::jsonb,
          '{"limit": 5000, "actual": 5001, "what": "files"}'::jsonb, 'PT413 DETAIL for the file count');
select is((fsync.bulk_upsert_project_files(tests.recall('p1'), (select jsonb_agg(jsonb_build_object('file_path', 'gen/f' || i || '.ts', 'content', 'export const n = ' || i))
               from generate_series(1, 5000) i)) ->> 'applied')::int, 5000,
          'exactly 5,000 files are accepted');
select throws_ok(format($$select fsync.bulk_upsert_project_files(%L, (select jsonb_agg(jsonb_build_object('file_path', 'big' || i, 'content', repeat('x', 4194304))) from generate_series(1, 13) i))$$,
                        tests.recall('p1')),
  'PT413', 'bulk content is too large: more than 52428800 bytes; the limit is 52428800 bytes', 'more than 50 MiB in total → PT413');
select throws_ok(format($$select fsync.bulk_upsert_project_files(%L, jsonb_build_array(jsonb_build_object('file_path', 'huge.txt', 'content', repeat('x', 5242881))))$$,
                        tests.recall('p1')),
  'PT413', 'file "huge.txt" is too large: 5242881 bytes; the limit is 5242880 bytes', 'each file is limited too');
select tests.reset_authentication();
update fsync.settings set value = '2' where key = 'limits.max_bulk_files';
update fsync.settings set value = '5' where key = 'limits.max_bulk_bytes';
select tests.authenticate_as('alice');
select throws_ok(format($$select fsync.bulk_upsert_project_files(%L, '[{"file_path": "1", "content": "1"}, {"file_path": "2", "content": "2"}, {"file_path": "3", "content": "3"}]')$$, tests.recall('p1')),
  'PT413', 'too many files in one bulk: 3; the limit is 2', 'the file-count limit is configurable');
select throws_ok(format($$select fsync.bulk_upsert_project_files(%L, '[{"file_path": "1", "content": "123"}, {"file_path": "2", "content": "456"}]')$$, tests.recall('p1')),
  'PT413', 'bulk content is too large: more than 5 bytes; the limit is 5 bytes', 'the byte limit is configurable');

-- Invariants after everything --------------------------------------------------------------
select tests.reset_authentication();
select is((select array_agg(seq order by seq) from public.project_events where project_id = tests.recall('p1')),
          (select array_agg(s::bigint) from generate_series(1, (select last_seq from public.projects where id = tests.recall('p1'))::int) s),
          'event seqs gapless');
select is_empty($$
  select file_path from public.project_files group by project_id, file_path
  having not (min(version) = 1 and max(version) = count(*) and count(distinct version) = count(*))
      or count(*) filter (where is_current_version) <> 1
$$, 'versions gapless and one head per path');

select * from finish();
rollback;
