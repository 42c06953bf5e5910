-- delete_project_file (tombstones) and rename_project_file (one event).
begin;
create extension if not exists pgtap;
select plan(40);

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
select fsync.upsert_project_file(tests.recall('p1'), 'a.txt', 'A1');
select fsync.upsert_project_file(tests.recall('p1'), 'a.txt', 'A2');

-- Delete --------------------------------------------------------------------------
select is(fsync.delete_project_file(tests.recall('p1'), 'a.txt') - 'project_id',
          jsonb_build_object('file_path', 'a.txt', 'version', 3, 'content_hash', null, 'size_bytes', 0,
                             'file_type', 'text', 'storage_path', null, 'is_deleted', true, 'seq', 3, 'noop', false),
          'delete writes a tombstone as the next version');
select results_eq($$select version, is_deleted, is_current_version, content is null from public.project_files
                    where file_path = 'a.txt' order by version$$,
                  $$values (1, false, false, false), (2, false, false, false), (3, true, true, true)$$,
                  'history is kept; the tombstone is the head and has no content');
select is_empty($$select * from fsync.list_current_files(tests.recall('p1'))$$, 'list_current_files excludes tombstones');
select is_empty($$select * from public.project_files_current$$, 'project_files_current excludes tombstones');
select is((select payload - 'timestamp' - 'actor' from public.project_events where seq = 3),
          jsonb_build_object('v', 1, 'seq', 3, 'type', 'file:delete', 'project_id', tests.recall('p1'),
                             'file_path', 'a.txt', 'version', 3),
          'file:delete event names the path and the tombstone version');
select is(fsync.delete_project_file(tests.recall('p1'), 'a.txt') ->> 'noop', 'true', 'deleting a deleted file is a no-op');
select is((select count(*)::int from public.project_events), 3, 'the no-op delete wrote no event');
select throws_ok(format($$select fsync.delete_project_file(%L, 'nope.txt')$$, tests.recall('p1')),
                 'PT404', 'file "nope.txt" not found', 'deleting a file that never existed → PT404');
select fsync.upsert_project_file(tests.recall('p1'), 'b.txt', 'B1');
select throws_ok(format($$select fsync.delete_project_file(%L, 'b.txt', 2)$$, tests.recall('p1')),
                 'PT409', 'version conflict on "b.txt": expected version 2, but the current version is 1', 'stale delete → PT409');
select is(fsync.delete_project_file(tests.recall('p1'), 'b.txt', 1) ->> 'version', '2', 'delete with the right expected_version');

-- Re-creating a deleted path ----------------------------------------------------------
select throws_ok(format($$select fsync.upsert_project_file(%L, 'a.txt', 'again', null, 2)$$, tests.recall('p1')),
                 'PT409', 'version conflict on "a.txt": expected version 2, but it was deleted at version 3',
                 'expected_version compares with the tombstone version');
select is(fsync.upsert_project_file(tests.recall('p1'), 'a.txt', 'A4', null, 0) ->> 'version', '4',
          'expected_version 0 re-creates a deleted path; versions continue');
select is(fsync.upsert_project_file(tests.recall('p1'), 'b.txt', 'B3', null, 2) ->> 'version', '3',
          'the tombstone''s version also works as expected_version');
select is(fsync.upsert_project_file(tests.recall('p1'), 'a.txt', 'A2') ->> 'version', '5',
          'content equal to an old (non-head) version is a new version, not a no-op');

-- Rename -----------------------------------------------------------------------------
select tests.reset_authentication();
select set_config('tests.events_before', (select count(*)::text from public.project_events), true);
select tests.authenticate_as('alice');
select fsync.upsert_project_file(tests.recall('p1'), 'src/old.ts', 'export const x = 1');
select is(fsync.rename_project_file(tests.recall('p1'), 'src/old.ts', 'docs/new.md') - 'project_id' - 'seq',
          jsonb_build_object('file_path', 'docs/new.md', 'version', 1,
                             'content_hash', fsync_hash.h, 'size_bytes', 18,
                             'file_type', 'markdown', 'storage_path', null, 'is_deleted', false, 'noop', false,
                             'from_path', 'src/old.ts', 'from_version', 2),
          'rename returns the new head plus from_path and from_version')
  from (select encode(sha256('export const x = 1'::bytea), 'hex') as h) fsync_hash;
select tests.reset_authentication();
select is((select count(*)::int from public.project_events), current_setting('tests.events_before')::int + 2,
          'a rename is one event (after the save before it)');
select is((select payload - 'timestamp' - 'actor' - 'seq' - 'project_id' from public.project_events
            where project_id = tests.recall('p1') order by seq desc limit 1),
          jsonb_build_object('v', 1, 'type', 'file:rename', 'file_path', 'docs/new.md', 'from_path', 'src/old.ts',
                             'from_version', 2, 'version', 1, 'content_hash', encode(sha256('export const x = 1'::bytea), 'hex'),
                             'size', 18, 'file_type', 'markdown'),
          'file:rename payload: new path and version, from_path and from_version (the tombstone)');
select is((select payload ->> 'content' from realtime.messages
            where topic = 'project:' || tests.recall('p1') and event = 'file:rename'), 'export const x = 1',
          'the rename broadcast carries the content');
select results_eq($$select file_path, version, is_deleted, is_current_version from public.project_files
                    where file_path in ('src/old.ts', 'docs/new.md') order by file_path, version$$,
                  $$values ('docs/new.md', 1, false, true), ('src/old.ts', 1, false, false), ('src/old.ts', 2, true, true)$$,
                  'rename = tombstone at the old path + new version at the new path');
select tests.authenticate_as('alice');
select throws_ok(format($$select fsync.rename_project_file(%L, 'docs/new.md', 'b.txt')$$, tests.recall('p1')),
                 'PT409', 'cannot rename "docs/new.md" to "b.txt": "b.txt" already exists at version 3',
                 'renaming onto a live file → PT409');
select is((tests.error_of(format($$select fsync.rename_project_file(%L, 'docs/new.md', 'b.txt')$$, tests.recall('p1'))) ->> 'detail')::jsonb,
          jsonb_build_object('path', 'b.txt', 'expected_version', 0, 'current_version', 3,
                             'current_hash', encode(sha256('B3'::bytea), 'hex')),
          'the rename conflict DETAIL describes the target');
select throws_ok(format($$select fsync.rename_project_file(%L, 'src/old.ts', 'x.ts')$$, tests.recall('p1')),
                 'PT404', 'file "src/old.ts" not found', 'renaming a deleted file → PT404');
select throws_ok(format($$select fsync.rename_project_file(%L, 'ghost.ts', 'x.ts')$$, tests.recall('p1')),
                 'PT404', 'file "ghost.ts" not found', 'renaming a missing file → PT404');
select throws_ok(format($$select fsync.rename_project_file(%L, 'b.txt', 'b.txt')$$, tests.recall('p1')),
                 'PT422', 'cannot rename "b.txt" to itself', 'renaming to the same path → PT422');
select throws_ok(format($$select fsync.rename_project_file(%L, 'b.txt', '/abs.txt')$$, tests.recall('p1')),
                 'PT422', 'invalid path "/abs.txt": absolute: the path must be relative (no leading "/")', 'invalid target → PT422');
select throws_ok(format($$select fsync.rename_project_file(%L, 'b.txt', 'c.txt', 2)$$, tests.recall('p1')),
                 'PT409', 'version conflict on "b.txt": expected version 2, but the current version is 3',
                 'expected_version applies to the source path');
select is(fsync.rename_project_file(tests.recall('p1'), 'b.txt', 'src/old.ts', 3) ->> 'version', '3',
          'renaming onto a tombstoned path continues its versions');
select is((select file_type from public.project_files where file_path = 'src/old.ts' and is_current_version), 'typescript',
          'file_type is re-inferred from the new path');
select tests.reset_authentication();
select is((select count(*)::int from public.project_files where file_path = 'b.txt' and is_current_version and is_deleted), 1,
          'the renamed-away source is a tombstone');

-- Legacy paths that break the path rules -------------------------------------------------
-- The legacy upgrade keeps such rows live as they were. Deleting and renaming need only a
-- live head with exactly that path (no path rules on that side), so they can be cleaned up;
-- every path written, the rename target included, is still validated.
insert into public.project_files (project_id, file_path, content, file_type, version, content_hash, size_bytes)
select tests.recall('p1'), p, 'legacy', 'text', 1, encode(sha256('legacy'::bytea), 'hex'), 6
  from unnest(array['legacy//double.ts', '/abs/old.ts', E'ctl\x01char.ts', 'trailing/']) p;
select tests.authenticate_as('alice');
select is(fsync.rename_project_file(tests.recall('p1'), 'legacy//double.ts', 'legacy/double.ts') - 'project_id' - 'seq' - 'content_hash',
          jsonb_build_object('file_path', 'legacy/double.ts', 'version', 1, 'size_bytes', 6, 'file_type', 'typescript',
                             'storage_path', null, 'is_deleted', false, 'noop', false,
                             'from_path', 'legacy//double.ts', 'from_version', 2),
          'a legacy path with an empty segment can be renamed to a valid path');
select is(fsync.delete_project_file(tests.recall('p1'), '/abs/old.ts') - 'project_id' - 'seq',
          jsonb_build_object('file_path', '/abs/old.ts', 'version', 2, 'content_hash', null, 'size_bytes', 0,
                             'file_type', 'text', 'storage_path', null, 'is_deleted', true, 'noop', false),
          'a legacy absolute path can be deleted');
select is(fsync.delete_project_file(tests.recall('p1'), E'ctl\x01char.ts', 1) ->> 'is_deleted', 'true',
          'a legacy path with a control character can be deleted (expected_version applies)');
select is(fsync.rename_project_file(tests.recall('p1'), 'trailing/', 'trailing.txt', 1) ->> 'from_version', '2',
          'a legacy path with a trailing slash can be renamed (expected_version applies to it)');
select throws_ok(format($$select fsync.delete_project_file(%L, E'no\x01such/../file')$$, tests.recall('p1')),
                 'PT404', 'file "no?such/../file" not found',
                 'an invalid path with no head is not found (PT404, not PT422); control characters are not echoed');
select throws_ok(format($$select fsync.rename_project_file(%L, '/abs/old.ts', 'x.ts')$$, tests.recall('p1')),
                 'PT404', 'file "/abs/old.ts" not found', 'a deleted legacy path is gone like any other');
select throws_ok(format($$select fsync.rename_project_file(%L, 'legacy/double.ts', 'back//again.ts')$$, tests.recall('p1')),
                 'PT422', 'invalid path "back//again.ts": empty_segment: the path contains an empty segment ("//")',
                 'the rename target is still validated');
select tests.reset_authentication();
select is((select array_agg(file_path order by file_path) from public.project_files_current
            where project_id = tests.recall('p1')
              and (file_path like 'legacy%' or file_path like 'trailing%' or file_path like '/abs%' or file_path like 'ctl%')),
          array['legacy/double.ts', 'trailing.txt'], 'only the valid paths remain live');
select is_empty($$
  select file_path from public.project_files group by project_id, file_path
  having not (min(version) = 1 and max(version) = count(*) and count(distinct version) = count(*))
      or count(*) filter (where is_current_version) <> 1
$$, 'after deletes and renames: versions gapless, tombstones included, one head per path');
select is((select array_agg(seq order by seq) from public.project_events where project_id = tests.recall('p1')),
          (select array_agg(s::bigint)
             from generate_series(1, (select last_seq from public.projects where id = tests.recall('p1'))::int) s),
          'event seqs gapless');
select is((select count(*)::int from realtime.messages where topic = 'project:' || tests.recall('p1')),
          (select count(*)::int from public.project_events where project_id = tests.recall('p1')),
          'one realtime message per event');

select * from finish();
rollback;
