-- A file and a folder cannot share a name: a project with a live "src" and a live
-- "src/index.ts" cannot be written to disk. Every write that makes a path live
-- (upsert, register_binary_file, rename's destination, bulk entries) is refused
-- with PT409 rule path_conflict; tombstones do not conflict.
begin;
create extension if not exists pgtap;
select plan(35);

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
select tests.remember('p2', fsync.create_project('p2'));

-- A folder of the new path is a live file ------------------------------------------------
select fsync.upsert_project_file(tests.recall('p1'), 'src', 'x');
select throws_ok(format($$select fsync.upsert_project_file(%L, 'src/index.ts', 'y')$$, tests.recall('p1')),
  'PT409', 'path conflict: cannot create "src/index.ts" because "src" is a file; a file and a folder cannot have the same name',
  'upsert(src) then upsert(src/index.ts) → PT409');
select is((tests.error_of(format($$select fsync.upsert_project_file(%L, 'src/index.ts', 'y')$$, tests.recall('p1'))) ->> 'detail')::jsonb,
          '{"path": "src/index.ts", "conflicting_path": "src", "rule": "path_conflict"}'::jsonb,
          'DETAIL {path, conflicting_path, rule}');
select is((tests.error_of(format($$select fsync.upsert_project_file(%L, 'src/a/b/c.ts', 'y')$$, tests.recall('p1'))) ->> 'detail')::jsonb,
          '{"path": "src/a/b/c.ts", "conflicting_path": "src", "rule": "path_conflict"}'::jsonb,
          'any folder of the path counts, however deep');
select fsync.upsert_project_file(tests.recall('p1'), 'deep/er/file', 'f');
select is((tests.error_of(format($$select fsync.upsert_project_file(%L, 'deep/er/file/x/y.ts', 'y')$$, tests.recall('p1'))) ->> 'detail')::jsonb,
          '{"path": "deep/er/file/x/y.ts", "conflicting_path": "deep/er/file", "rule": "path_conflict"}'::jsonb,
          'an inner folder that is a file is found too');
select lives_ok(format($$select fsync.upsert_project_file(%L, 'src', 'x2')$$, tests.recall('p1')),
                'saving the existing file "src" is not affected');

-- Live files exist under the new path --------------------------------------------------------
select fsync.upsert_project_file(tests.recall('p1'), 'lib/z.ts', 'z');
select fsync.upsert_project_file(tests.recall('p1'), 'lib/sub/a.ts', 'a');
select throws_ok(format($$select fsync.upsert_project_file(%L, 'lib', 'y')$$, tests.recall('p1')),
  'PT409', 'path conflict: cannot create "lib" because it is a folder ("lib/sub/a.ts" exists); a file and a folder cannot have the same name',
  'upsert(lib/…) then upsert(lib) → PT409 naming the first file under it (byte order)');
select is((tests.error_of(format($$select fsync.upsert_project_file(%L, 'lib/sub', 'y')$$, tests.recall('p1'))) ->> 'detail')::jsonb,
          '{"path": "lib/sub", "conflicting_path": "lib/sub/a.ts", "rule": "path_conflict"}'::jsonb,
          'a nested folder is a folder too');
select throws_ok(format($$select fsync.register_binary_file(%1$L, 'lib', 'project-assets/%1$s/lib.bin', repeat('ab', 32), 3)$$, tests.recall('p1')),
  'PT409', 'path conflict: cannot create "lib" because it is a folder ("lib/sub/a.ts" exists); a file and a folder cannot have the same name',
  'register_binary_file is checked');
select throws_ok(format($$select fsync.register_binary_file(%1$L, 'src/logo.png', 'project-assets/%1$s/logo.png', repeat('ab', 32), 3)$$, tests.recall('p1')),
  'PT409', 'path conflict: cannot create "src/logo.png" because "src" is a file; a file and a folder cannot have the same name',
  '… both ways');

-- Names that only look related do not conflict; % and _ are plain characters ------------------
select fsync.upsert_project_file(tests.recall('p1'), 'aXb/f.ts', 'f');
select fsync.upsert_project_file(tests.recall('p1'), 'any/thing.ts', 't');
select lives_ok(format($$select fsync.upsert_project_file(%L, 'a_b', '_')$$, tests.recall('p1')),
                '"a_b" is not a folder of "aXb/f.ts" (no LIKE wildcards)');
select lives_ok(format($$select fsync.upsert_project_file(%L, '%%', '%%')$$, tests.recall('p1')),
                '"%" is not a folder of everything');
select lives_ok(format($$select fsync.upsert_project_file(%L, 'li', 'li')$$, tests.recall('p1')),
                '"li" is not a folder of "lib/…"');
select lives_ok(format($$select fsync.upsert_project_file(%L, 'lib.ts', 'l')$$, tests.recall('p1')),
                '"lib.ts" and "lib-x/…" sort next to "lib/…" but are other names');
select lives_ok(format($$select fsync.upsert_project_file(%L, 'lib-x/a.ts', 'l')$$, tests.recall('p1')), '… "lib-x/a.ts" too');
select lives_ok(format($$select fsync.upsert_project_file(%L, 'srcx/a.ts', 's')$$, tests.recall('p1')),
                '"srcx/a.ts" is not under the file "src"');
select lives_ok(format($$select fsync.upsert_project_file(%L, 'src/index.ts', 'other project')$$, tests.recall('p2')),
                'another project''s "src" does not matter');
select fsync.upsert_project_file(tests.recall('p1'), 'é/ü.md', 'u');
select throws_ok(format($$select fsync.upsert_project_file(%L, 'é', 'e')$$, tests.recall('p1')),
  'PT409', 'path conflict: cannot create "é" because it is a folder ("é/ü.md" exists); a file and a folder cannot have the same name',
  'non-ASCII names are compared byte-exactly');

-- Tombstones do not conflict ------------------------------------------------------------------
select fsync.delete_project_file(tests.recall('p1'), 'src');
select is(fsync.upsert_project_file(tests.recall('p1'), 'src/index.ts', 'y') ->> 'version', '1',
          'after deleting the file "src", "src/index.ts" can be created');
select fsync.delete_project_file(tests.recall('p1'), 'lib/z.ts');
select fsync.delete_project_file(tests.recall('p1'), 'lib/sub/a.ts');
select is(fsync.upsert_project_file(tests.recall('p1'), 'lib', 'now a file') ->> 'version', '1',
          'after deleting every file under "lib", "lib" can be a file');
select throws_ok(format($$select fsync.upsert_project_file(%L, 'src', 'x3', null, 3)$$, tests.recall('p1')),
  'PT409', 'path conflict: cannot create "src" because it is a folder ("src/index.ts" exists); a file and a folder cannot have the same name',
  're-creating a deleted path is checked too');

-- Rename's destination ---------------------------------------------------------------------------
select fsync.upsert_project_file(tests.recall('p1'), 'notes.md', 'n');
select throws_ok(format($$select fsync.rename_project_file(%L, 'notes.md', 'lib/notes.md')$$, tests.recall('p1')),
  'PT409', 'path conflict: cannot create "lib/notes.md" because "lib" is a file; a file and a folder cannot have the same name',
  'rename into a folder whose name is a file → PT409');
select throws_ok(format($$select fsync.rename_project_file(%L, 'notes.md', 'src')$$, tests.recall('p1')),
  'PT409', 'path conflict: cannot create "src" because it is a folder ("src/index.ts" exists); a file and a folder cannot have the same name',
  'rename onto a folder → PT409');
select is(fsync.rename_project_file(tests.recall('p1'), 'src/index.ts', 'src') ->> 'file_path', 'src',
          'a folder''s only file may take the folder''s name (its source is tombstoned first)');
select is(fsync.rename_project_file(tests.recall('p1'), 'src', 'src/index.ts') ->> 'file_path', 'src/index.ts',
          '… and move back under it');
select tests.reset_authentication();
select results_eq($$select file_path, version, is_deleted from public.project_files
                     where project_id = tests.recall('p1') and file_path = 'notes.md' order by version$$,
                  $$values ('notes.md', 1, false)$$, 'refused renames left no tombstone');

-- Bulk: entries apply in order; a conflict anywhere refuses the whole bulk -------------------------
select set_config('tests.events_before', (select count(*)::text from public.project_events), true);
select set_config('tests.seq_before', (select last_seq::text from public.projects where id = tests.recall('p1')), true);
select tests.authenticate_as('alice');
select throws_ok(format($$select fsync.bulk_upsert_project_files(%L, '[
    {"file_path": "new/one.ts", "content": "1"},
    {"file_path": "a", "content": "file"},
    {"file_path": "a/b", "content": "under the file"}]')$$, tests.recall('p1')),
  'PT409', 'path conflict: cannot create "a/b" because "a" is a file; a file and a folder cannot have the same name',
  'a bulk holding "a" and "a/b" fails');
select throws_ok(format($$select fsync.bulk_upsert_project_files(%L, '[
    {"file_path": "c/d", "content": "under"},
    {"file_path": "c", "content": "file"}]')$$, tests.recall('p1')),
  'PT409', 'path conflict: cannot create "c" because it is a folder ("c/d" exists); a file and a folder cannot have the same name',
  '… in either order');
select tests.reset_authentication();
select is_empty($$select file_path from public.project_files
                   where project_id = tests.recall('p1') and file_path in ('new/one.ts', 'a', 'a/b', 'c', 'c/d')$$,
                'the refused bulks left no row');
select is((select count(*)::text from public.project_events), current_setting('tests.events_before'), '… no event');
select is((select last_seq::text from public.projects where id = tests.recall('p1')), current_setting('tests.seq_before'), '… and no seq');
select tests.authenticate_as('alice');
select is(fsync.bulk_upsert_project_files(tests.recall('p1'), '[
    {"file_path": "lib", "delete": true},
    {"file_path": "lib/again.ts", "content": "folder again"}]') ->> 'applied', '2',
  'a bulk may delete a file and then create a folder of that name');

-- Conflicts left by legacy data ----------------------------------------------------------------------
-- Saving a live path adds no name, so it is never refused; the conflict is resolved by
-- deleting or renaming one side.
select tests.reset_authentication();
insert into public.project_files (project_id, file_path, content, file_type, version, content_hash, size_bytes)
select tests.recall('p1'), p, 'legacy', 'text', 1, encode(sha256('legacy'::bytea), 'hex'), 6
  from unnest(array['old', 'old/inner.ts']) p;
select tests.authenticate_as('alice');
select lives_ok(format($$select fsync.upsert_project_file(%L, 'old', 'edited')$$, tests.recall('p1')),
                'a legacy file that conflicts can still be saved');
select lives_ok(format($$select fsync.rename_project_file(%L, 'old', 'old.txt')$$, tests.recall('p1')),
                '… and renamed out of the way');
select throws_ok(format($$select fsync.rename_project_file(%L, 'old.txt', 'old')$$, tests.recall('p1')),
  'PT409', 'path conflict: cannot create "old" because it is a folder ("old/inner.ts" exists); a file and a folder cannot have the same name',
  '… but not back');

-- Invariant --------------------------------------------------------------------------------------
select tests.reset_authentication();
select is_empty($$
  select a.file_path, b.file_path from public.project_files_current a
    join public.project_files_current b on b.project_id = a.project_id and starts_with(b.file_path, a.file_path || '/')
   where a.project_id in (tests.recall('p1'), tests.recall('p2'))  -- (legacy data elsewhere may hold such pairs)
$$, 'no live file is a folder of another live file');

select * from finish();
rollback;
