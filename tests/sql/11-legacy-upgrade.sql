-- The legacy upgrade (migration fsync-legacy-upgrade) run on a fixture shaped
-- like the seed's project_files: nothing is lost, checksum → content_hash,
-- versions gapless in history order, the legacy current row stays what each
-- path holds (a copy appended when it is not the newest row, a tombstone when
-- the path was soft-deleted), one head per path, types defaulted.
begin;
create extension if not exists pgtap;
select plan(35);

select tests.create_supabase_user('alice');
select tests.create_supabase_user('bob');
select tests.authenticate_as('bob');
select tests.remember('l2', fsync.create_project('existing'));
select tests.reset_authentication();
select tests.remember('l1', '10000000-0000-0000-0000-000000000001');  -- has no projects row

-- The seed's table, exactly: 12 columns, checksum, nullable file_type and version.
create schema legacy_fixture;
create table legacy_fixture.project_files (
  id uuid primary key default gen_random_uuid(),
  project_id uuid not null,
  file_path text not null,
  content text,
  file_type text,
  version integer,
  checksum text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  created_by uuid,
  is_current_version boolean default true,
  metadata jsonb default '{}'::jsonb
);
insert into legacy_fixture.project_files
  (id, project_id, file_path, content, file_type, version, checksum, created_at, created_by, is_current_version, metadata)
values
  ('00000000-0000-0000-0000-000000000001', tests.recall('l1'), 'src/a.ts', 'a3', 'typescript', null, null,
   '2024-01-01 00:03+00', null, false, '{}'),
  ('00000000-0000-0000-0000-000000000002', tests.recall('l1'), 'src/a.ts', 'a2', null, null, encode(sha256('a2'::bytea), 'hex'),
   '2024-01-01 00:02+00', tests.get_supabase_uid('alice'), false, '{"author": "x"}'),
  ('00000000-0000-0000-0000-000000000003', tests.recall('l1'), 'src/a.ts', 'a1', null, null, null,
   '2024-01-01 00:01+00', tests.get_supabase_uid('alice'), true, null),
  ('00000000-0000-0000-0000-000000000004', tests.recall('l1'), 'README.md', '# hi', null, 1, encode(sha256('# hi'::bytea), 'hex'),
   '2024-01-01 00:01+00', null, false, '{}'),
  ('00000000-0000-0000-0000-000000000005', tests.recall('l1'), 'README.md', '# hi v2', null, 2, 'deadbeef',
   '2024-01-01 00:02+00', null, true, '{}'),
  ('00000000-0000-0000-0000-000000000006', tests.recall('l1'), 'data.json', null, 'json', 7, null,
   '2024-01-01 00:00+00', null, true, '{}'),
  ('00000000-0000-0000-0000-000000000007', tests.recall('l1'), 'docs/ünï.md', 'ünïcødé 🚀', 'markdown', 1,
   upper(encode(sha256(convert_to('ünïcødé 🚀', 'UTF8')), 'hex')), '2024-01-01 00:00+00', null, true, '{}'),
  ('00000000-0000-0000-0000-000000000008', tests.recall('l1'), 'x.ts', 'x1', 'typescript', 1, null,
   '2024-01-01 00:00+00', null, false, '{}'),
  ('00000000-0000-0000-0000-000000000009', tests.recall('l1'), 'x.ts', 'x2', 'typescript', 2, null,
   '2024-01-01 00:00+00', null, true, '{}'),
  ('00000000-0000-0000-0000-000000000010', tests.recall('l1'), '/abs/bad.ts', 'bad', null, 1, null,
   '2024-01-01 00:00+00', null, true, '{}'),
  ('00000000-0000-0000-0000-000000000011', tests.recall('l2'), 'other.ts', 'o', null, null, null,
   '2024-01-01 00:00+00', null, null, '{}'),
  -- the legacy app pointed the flag back at v1: 'good' is what the path holds, not the newer 'bad'
  ('00000000-0000-0000-0000-000000000012', tests.recall('l1'), 'good.ts', 'good', 'typescript', 1, null,
   '2024-01-01 00:01+00', tests.get_supabase_uid('bob'), true, '{"note": "kept"}'),
  ('00000000-0000-0000-0000-000000000013', tests.recall('l1'), 'good.ts', 'bad', 'typescript', 2, null,
   '2024-01-01 00:02+00', null, false, '{}'),
  -- soft-deleted: no row is current
  ('00000000-0000-0000-0000-000000000014', tests.recall('l1'), 'removed.ts', 'r1', null, 1, null,
   '2024-01-01 00:01+00', null, false, '{}'),
  ('00000000-0000-0000-0000-000000000015', tests.recall('l1'), 'removed.ts', 'r2', null, 2, null,
   '2024-01-01 00:02+00', null, false, '{}'),
  -- a row without a legacy version comes after the versioned rows, whatever its created_at
  ('00000000-0000-0000-0000-000000000016', tests.recall('l1'), 'mixed.ts', 'm-null', 'typescript', null, null,
   '2024-01-01 00:00+00', null, false, '{}'),
  ('00000000-0000-0000-0000-000000000017', tests.recall('l1'), 'mixed.ts', 'm1', 'typescript', 1, null,
   '2024-01-01 00:05+00', null, true, '{}');
create table legacy_fixture.before as select * from legacy_fixture.project_files;

set local client_min_messages = error;  -- the expected WARNING about '/abs/bad.ts'
create temp table upgrade_stats on commit drop as select fsync.upgrade_legacy_project_files('legacy_fixture') as s;
set local client_min_messages = notice;

select is((select s from upgrade_stats), '{"rows": 17, "paths": 10, "hashes_mismatched": 1, "contents_null": 1,
  "versions_renumbered": 1, "versions_filled": 5, "heads_changed": 3, "file_types_inferred": 8,
  "heads_appended": 3, "tombstones_appended": 1, "projects_created": 1, "invalid_paths": 1,
  "binaries_registered": 0, "binaries_unresolved": 0}'::jsonb,
  'the upgrade reports what it did');

-- Shape -------------------------------------------------------------------------------
select hasnt_column('legacy_fixture', 'project_files', 'checksum', 'checksum is gone');
-- (public.project_files of an adopted database also has the app's own columns: velocity's Phase-0 ones.)
select results_eq(
  $$select a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull from pg_attribute a
     where a.attrelid = 'legacy_fixture.project_files'::regclass and a.attnum > 0 and not a.attisdropped order by a.attname$$,
  $$select a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull from pg_attribute a
     where a.attrelid = 'public.project_files'::regclass and a.attnum > 0 and not a.attisdropped
       and a.attname not in ('last_modified_by', 'file_size', 'is_binary') order by a.attname$$,
  'an upgraded legacy table has exactly the shape of a fresh install');
select index_is_unique('legacy_fixture', 'project_files', 'project_files_one_head_idx', 'one-head index added');
select fk_ok('legacy_fixture', 'project_files', 'project_id', 'public', 'projects', 'id', 'project_id references projects');

-- Nothing lost ----------------------------------------------------------------------------
select bag_eq($$select id, project_id, file_path, coalesce(content, ''), created_at, updated_at, created_by from legacy_fixture.before$$,
              $$select id, project_id, file_path, content, created_at, updated_at, created_by from legacy_fixture.project_files
                 where id in (select id from legacy_fixture.before)$$,
              'every row survives with its id, path, content, times and author');
select results_eq($$select file_path, metadata -> 'fsync_upgrade' ->> 'appended' from legacy_fixture.project_files
                     where id not in (select id from legacy_fixture.before) order by file_path$$,
                  $$values ('good.ts', 'legacy_head'), ('mixed.ts', 'legacy_head'), ('removed.ts', 'soft_delete'),
                           ('src/a.ts', 'legacy_head')$$,
                  'the only new rows are the appended heads, each marked');
select is_empty($$select id from legacy_fixture.project_files where content_hash is distinct from encode(sha256(convert_to(content, 'UTF8')), 'hex')$$,
                'content_hash is recomputed as sha256 of the UTF-8 content');
select is_empty($$select id from legacy_fixture.project_files
                   where size_bytes <> coalesce(octet_length(content), 0) or storage_path is not null
                      or (is_deleted and file_path <> 'removed.ts')$$,
                'size_bytes filled; no binaries invented, and the only tombstone is the soft-deleted path''s');
select is_empty($$
  select file_path from legacy_fixture.project_files group by project_id, file_path
  having not (min(version) = 1 and max(version) = count(*) and count(distinct version) = count(*))
$$, 'versions per path are 1, 2, 3 … without gaps');
select is_empty($$
  select file_path from legacy_fixture.project_files group by project_id, file_path
  having count(*) filter (where is_current_version) <> 1 or max(version) <> max(version) filter (where is_current_version)
$$, 'one head per path: the latest version');
select results_eq($$select content, version, is_current_version from legacy_fixture.project_files where file_path = 'src/a.ts' order by version$$,
                  $$values ('a1', 1, false), ('a2', 2, false), ('a3', 3, false), ('a1', 4, true)$$,
                  'null versions are filled in created_at order; the legacy current row (a1, the oldest) stays the content: a copy is appended as the head');
select results_eq($$select content, version, is_current_version, created_by from legacy_fixture.project_files where file_path = 'good.ts' order by version$$,
                  $$values ('good', 1, false, tests.get_supabase_uid('bob')), ('bad', 2, false, null::uuid),
                           ('good', 3, true, tests.get_supabase_uid('bob'))$$,
                  'legacy current v1 "good" with a newer non-current v2 "bad": the path is live as "good" (the copy keeps its author)');
select results_eq($$select content, version, is_current_version, is_deleted from legacy_fixture.project_files where file_path = 'removed.ts' order by version$$,
                  $$values ('r1', 1, false, false), ('r2', 2, false, false), (null, 3, true, true)$$,
                  'a path whose rows are all non-current was soft-deleted: a tombstone is appended, it is not resurrected');
select results_eq($$select content, version, is_current_version from legacy_fixture.project_files where file_path = 'mixed.ts' order by version$$,
                  $$values ('m1', 1, false), ('m-null', 2, false), ('m1', 3, true)$$,
                  'rows without a legacy version come after the versioned ones');
select bag_eq($$select file_path, content from legacy_fixture.project_files where is_current_version and not is_deleted$$,
              $$values ('src/a.ts', 'a1'), ('README.md', '# hi v2'), ('data.json', ''), ('docs/ünï.md', 'ünïcødé 🚀'),
                       ('x.ts', 'x2'), ('/abs/bad.ts', 'bad'), ('other.ts', 'o'), ('good.ts', 'good'), ('mixed.ts', 'm1')$$,
              'the live files are exactly the legacy current rows (a NULL flag counts as current when no row is flagged)');
select results_eq($$select file_path, version, is_current_version from legacy_fixture.project_files where file_path = 'x.ts' order by id$$,
                  $$values ('x.ts', 1, false), ('x.ts', 2, true)$$, 'created_at ties keep the legacy version order');
select results_eq($$select distinct file_path, file_type from legacy_fixture.project_files order by file_path$$,
  $$values ('/abs/bad.ts', 'typescript'), ('README.md', 'markdown'), ('data.json', 'json'), ('docs/ünï.md', 'markdown'),
           ('good.ts', 'typescript'), ('mixed.ts', 'typescript'), ('other.ts', 'typescript'), ('removed.ts', 'typescript'),
           ('src/a.ts', 'typescript'), ('x.ts', 'typescript')$$,
  'missing file types are inferred, given ones kept');

-- What changed is recorded ------------------------------------------------------------------
select is((select metadata from legacy_fixture.project_files where id = '00000000-0000-0000-0000-000000000005'),
          '{"fsync_upgrade": {"legacy_checksum": "deadbeef", "file_type_inferred": true}}'::jsonb,
          'a checksum that did not match is kept');
select is((select metadata from legacy_fixture.project_files where id = '00000000-0000-0000-0000-000000000006'),
          '{"fsync_upgrade": {"legacy_version": 7, "content_was_null": true}}'::jsonb,
          'a renumbered version and a NULL content are recorded');
select is((select metadata from legacy_fixture.project_files where id = '00000000-0000-0000-0000-000000000002'),
          '{"author": "x", "fsync_upgrade": {"version_filled": true, "file_type_inferred": true}}'::jsonb,
          'existing metadata is kept');
select is((select metadata from legacy_fixture.project_files where id = '00000000-0000-0000-0000-000000000003'),
          '{"fsync_upgrade": {"version_filled": true, "file_type_inferred": true, "legacy_is_current_version": true}}'::jsonb,
          'a legacy head that is no longer the head row is recorded (and NULL metadata becomes an object)');
select is((select metadata from legacy_fixture.project_files where id = '00000000-0000-0000-0000-000000000001'),
          '{"fsync_upgrade": {"version_filled": true}}'::jsonb,
          'the newest legacy row, not current before, is not current after');
select is((select metadata from legacy_fixture.project_files where file_path = 'src/a.ts' and version = 4),
          '{"fsync_upgrade": {"appended": "legacy_head", "copy_of": "00000000-0000-0000-0000-000000000003"}}'::jsonb,
          'an appended head names the row it copies');
select is((select metadata from legacy_fixture.project_files where file_path = 'good.ts' and version = 3),
          '{"note": "kept", "fsync_upgrade": {"appended": "legacy_head", "copy_of": "00000000-0000-0000-0000-000000000012"}}'::jsonb,
          '… and keeps the source''s own metadata');
select is((select metadata from legacy_fixture.project_files where file_path = 'removed.ts' and version = 3),
          '{"fsync_upgrade": {"appended": "soft_delete"}}'::jsonb, 'an appended tombstone is marked');
select is_empty($$select id from legacy_fixture.project_files where file_path in ('x.ts', 'docs/ünï.md') and metadata <> '{}'$$,
                'rows already consistent (incl. an upper-case checksum) are left as they were');
select is((select path_error is not null from (select fsync.path_error(file_path) from legacy_fixture.project_files
            where id = '00000000-0000-0000-0000-000000000010') e(path_error)), true,
          'a path that breaks the rules is kept as it was, not rewritten');

-- Projects ------------------------------------------------------------------------------------
select results_eq($$select name, owner_id, last_seq from public.projects where id = tests.recall('l1')$$,
                  $$select 'Imported project', tests.get_supabase_uid('alice'), 0::bigint$$,
                  'a project id without a projects row gets one, owned by its first author');
select is((select count(*)::int from public.projects where id = tests.recall('l2')), 1, 'existing projects are reused');
select results_eq($$select live_files, live_bytes from public.projects where id in (tests.recall('l1'), tests.recall('l2'))
                     order by id = tests.recall('l2')$$,
                  $$values (8::bigint, 36::bigint), (1::bigint, 1::bigint)$$,
                  'the project caps'' running totals start from the upgraded live heads (removed.ts is a tombstone)');
select results_eq($$select p.live_files, p.live_bytes from public.projects p where p.id = tests.recall('l1')$$,
                  $$select count(*), sum(f.size_bytes)::bigint from legacy_fixture.project_files f
                     where f.project_id = tests.recall('l1') and f.is_current_version and not f.is_deleted$$,
                  '… which is a recount of the upgraded table');

-- Idempotent, and the real table is upgraded already -------------------------------------------
create temp table after_first on commit drop as select * from legacy_fixture.project_files;
select is(fsync.upgrade_legacy_project_files('legacy_fixture') - 'rows' - 'paths' - 'invalid_paths',
          '{"hashes_mismatched": 0, "contents_null": 0, "versions_renumbered": 0, "versions_filled": 0,
            "heads_changed": 0, "file_types_inferred": 0, "heads_appended": 0, "tombstones_appended": 0,
            "projects_created": 0, "binaries_registered": 0, "binaries_unresolved": 0}'::jsonb,
          'running the upgrade again finds nothing to do')
  from (select set_config('client_min_messages', 'error', true)) q;
select bag_eq($$select * from after_first$$, $$select * from legacy_fixture.project_files$$, '… and changes nothing');
-- rows: the rows rewritten; paths and invalid_paths count what the table holds (velocity's: many).
select is(fsync.upgrade_legacy_project_files('public') - 'paths' - 'invalid_paths',
          '{"rows": 0, "hashes_mismatched": 0, "contents_null": 0, "versions_renumbered": 0,
            "versions_filled": 0, "heads_changed": 0, "file_types_inferred": 0, "heads_appended": 0,
            "tombstones_appended": 0, "projects_created": 0, "binaries_registered": 0, "binaries_unresolved": 0}'::jsonb,
          'public.project_files went through the same upgrade (a re-run is a no-op)')
  from (select set_config('client_min_messages', 'error', true)) q;

select * from finish();
rollback;
