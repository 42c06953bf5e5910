-- fs-sync adopted onto velocity's Phase-0 database (docs/adoption.md): every
-- file version, project, flag row, app policy and bucket that was there is
-- accounted for against the snapshot taken before the migrations
-- (tests/fixtures/phase0/snapshot.sql), and the legacy app still reads and
-- writes as it did. Runs only on that database at stage "up" (scripts/phase0.sh);
-- anywhere else it skips.
begin;
create extension if not exists pgtap;
select to_regclass('phase0_snapshot.state') is not null as has_snapshot \gset
\if :has_snapshot
select stage = 'up' as run from phase0_snapshot.state \gset
\else
\set run false
\endif
\if :run
select plan(42);

-- Every file version ------------------------------------------------------------------------
select is_empty($$
  select s.id from phase0_snapshot.file_versions s
    left join public.project_files f on f.id = s.id
   where f.id is null or f.project_id <> s.project_id or f.file_path <> s.file_path
$$, 'every pre-existing file version is still there, with its id, project and path');
select is_empty($$
  select s.id from phase0_snapshot.file_versions s join public.project_files f on f.id = s.id
   where md5(f.content) is distinct from s.content_md5
     and not (s.content_md5 is null and (f.content = '' or f.storage_path is not null))
$$, '… and its content (NULL content is '''' for fs-sync, or a binary''s storage_path)');
select is_empty($$
  select s.id from phase0_snapshot.file_versions s join public.project_files f on f.id = s.id
   where (f.created_at, f.created_by, f.last_modified_by, f.file_size, f.is_binary)
         is distinct from (s.created_at, s.created_by, s.last_modified_by, s.file_size, s.is_binary)
      or (f.metadata - 'fsync_upgrade') <> coalesce(s.metadata, '{}'::jsonb)
$$, '… its author, time, Phase-0 columns (last_modified_by, file_size, is_binary) and metadata');
select is_empty($$
  select c.project_id from phase0_snapshot.counts c
    full join (select f.project_id, count(*) filter (where not coalesce(f.metadata -> 'fsync_upgrade' ? 'appended', false)) as n
                 from public.project_files f where f.file_path <> 'src/concurrent.ts' group by f.project_id) a
      on a.project_id = c.project_id
   where a.n is distinct from c.versions
$$, 'versions per project: exactly those of Phase 0, besides the heads the upgrade appended (and the saves made meanwhile)');
select ok((select count(*) from phase0_snapshot.concurrent_writes) > 0, '(the app saved while the migrations ran)');
select is_empty($$
  select c.content from phase0_snapshot.concurrent_writes c
   where not exists (select 1 from public.project_files f
                      where f.project_id = (select p.id from phase0_snapshot.projects p order by p.id offset 1 limit 1)
                        and f.file_path = 'src/concurrent.ts' and f.content = c.content)
$$, 'every save the app committed while the migrations ran is a version of its file');
select is((select f.content from public.project_files f
            where f.project_id = (select p.id from phase0_snapshot.projects p order by p.id offset 1 limit 1)
              and f.file_path = 'src/concurrent.ts' and f.is_current_version),
          (select c.content from phase0_snapshot.concurrent_writes c order by c.n desc limit 1),
          '… and the file holds the last one');
select is_empty($$
  select f.project_id, f.file_path from public.project_files f
   where f.metadata -> 'fsync_upgrade' ? 'appended'
     and not exists (select 1 from phase0_snapshot.file_versions s where s.project_id = f.project_id and s.file_path = f.file_path)
$$, 'appended heads belong to paths Phase 0 had');
select is_empty($$
  select s.id from phase0_snapshot.file_versions s join public.project_files f on f.id = s.id
   where s.content_hash is not null and lower(s.content_hash) <> coalesce(f.content_hash, '')
     and f.metadata -> 'fsync_upgrade' ->> 'legacy_checksum' is distinct from s.content_hash
$$, 'a Phase-0 content_hash that was not the content''s SHA-256 is kept in metadata.fsync_upgrade.legacy_checksum');
select is_empty($$
  select f.id from public.project_files f
   where f.content is not null and f.content_hash <> encode(sha256(convert_to(f.content, 'UTF8')), 'hex')
$$, 'every text version''s content_hash is the SHA-256 of its content');
select is_empty($$
  select file_path from public.project_files group by project_id, file_path
  having not (min(version) = 1 and max(version) = count(*) and count(distinct version) = count(*))
      or count(*) filter (where is_current_version) <> 1
      or max(version) <> max(version) filter (where is_current_version)
$$, 'every path: versions 1, 2, 3 … and one head, the latest');

-- What each path holds ---------------------------------------------------------------------
select is_empty($$
  select h.project_id, h.file_path from phase0_snapshot.heads h
    join phase0_snapshot.file_versions s on s.id = h.id
    join public.project_files f on f.project_id = h.project_id and f.file_path = h.file_path and f.is_current_version
   where case when not h.live then not f.is_deleted
              when f.is_deleted then true
              when f.storage_path is not null then s.content_md5 is not null
              else md5(f.content) <> coalesce(s.content_md5, md5('')) end
$$, 'each path holds what the app''s current row held (two current rows: the later; none: a tombstone)');
select ok((select count(*) from phase0_snapshot.heads h where not h.live) > 0
          and (select count(*) from phase0_snapshot.file_versions s group by s.project_id, s.file_path
                having count(*) filter (where s.is_current_version) > 1 limit 1) > 0,
          '(the fixture has soft-deleted paths and paths with two current rows)');
select is_empty($$
  select s.id from phase0_snapshot.file_versions s join public.project_files f on f.id = s.id
   where s.is_binary and s.content_md5 is null
     and (f.storage_path is not null) <> (s.metadata ->> 'storage_path' like 'project-assets/' || s.project_id || '/%'
                                          and s.content_hash ~* '^[0-9a-f]{64}$')
$$, 'a Phase-0 binary in project-assets/<project>/ with a SHA-256 is an fs-sync binary; any other stays legacy-only');
select ok((select count(*) from public.project_files f where f.storage_path is not null) > 0
          and (select count(*) from public.project_files f where f.metadata -> 'fsync_upgrade' ? 'binary_unresolved') > 0,
          '(the fixture has both)');
select is_empty($$
  select s.id from phase0_snapshot.file_versions s join public.project_files f on f.id = s.id
   where fsync.path_error(s.file_path) is not null and f.file_path <> s.file_path
$$, 'paths that break the rules are kept as they were');

-- Projects ------------------------------------------------------------------------------------
select is_empty($$
  select p.id from phase0_snapshot.projects s join public.projects p on p.id = s.id
   where (p.user_id, p.name, p.description, p.created_at) is distinct from (s.user_id, s.name, s.description, s.created_at)
      or p.owner_id is distinct from p.user_id
      or not exists (select 1 from public.project_members m where m.project_id = p.id and m.user_id = p.user_id and m.role = 'owner')
$$, 'every project keeps its row; its owner (user_id) is the fs-sync owner with an owner membership');
select is((select count(*) from public.projects p where p.id not in (select s.id from phase0_snapshot.projects s)),
          (select count(distinct s.project_id) from phase0_snapshot.file_versions s
            where s.project_id not in (select p.id from phase0_snapshot.projects p)),
          'files without a project got one ("Imported project") …');
select is_empty($$
  select p.id from public.projects p
   where p.id not in (select s.id from phase0_snapshot.projects s)
     and (p.user_id is null or p.owner_id <> p.user_id or p.name <> 'Imported project')
$$, '… owned by their first known author');

-- Flags ----------------------------------------------------------------------------------------
select is_empty($$
  select s.flag_key from phase0_snapshot.flags s
    left join public.feature_flags f on f.flag_key = s.flag_key
   where (f.enabled, f.rollout_percentage, f.target_user_ids, f.description, f.created_at, f.updated_at)
         is distinct from (s.enabled, s.rollout_percentage, s.target_user_ids, s.description, s.created_at, s.updated_at)
$$, 'every flag row is kept as it was');
select is_empty($$
  select a.flag_key, a.user_id from phase0_snapshot.flag_answers a
   where fsync.is_feature_enabled(a.flag_key, a.user_id) <> a.enabled
$$, 'every flag answers as Phase 0''s is_feature_enabled did, for every user (same buckets, same targeting)');
select tests.authenticate_as_claims(jsonb_build_object('role', 'authenticated', 'sub', md5('velocity-user-7')::uuid));
select is(public.is_feature_enabled(flag_key => 'AI_ASSIST_V2', user_id => md5('velocity-user-7')::uuid), true,
          'is_feature_enabled(flag_key, user_id) is callable as before by a signed-in user (named arguments)');
select is(public.is_feature_enabled('NEW_EDITOR', null), true, '… also with user_id null (100% rollout)');
select tests.reset_authentication();

-- The app's policies, grants, buckets ------------------------------------------------------
select is_empty($$
  select schemaname, tablename, policyname, permissive, roles, cmd, qual, with_check from phase0_snapshot.policies
  except
  select schemaname::text, tablename::text, policyname::text, permissive, roles::text[], cmd, qual, with_check from pg_policies
$$, 'every policy the app had is there, unchanged (none is replaced)');
select is_empty($$
  select * from phase0_snapshot.privileges() p
   where p.kind = 'relation' and p.object like 'public.%'
     and p.object not in ('public.project_members', 'public.project_events', 'public.feature_flag_changes')
  except
  select * from phase0_snapshot.privileges
$$, 'on the app''s tables and view no API role has a privilege it did not have');
select is_empty($$
  select p.* from phase0_snapshot.privileges() p
   where p.kind = 'column' and p.object like 'public.projects.%'
     and not exists (select 1 from phase0_snapshot.privileges s
                      where s.kind = 'relation' and s.object = 'public.projects' and s.grantee = p.grantee
                        and s.privilege = p.privilege)
      or (p.kind = 'column' and split_part(p.object, '.', 3) in ('owner_id', 'last_seq', 'live_files', 'live_bytes'))
$$, 'projects: the app''s INSERT and UPDATE now cover its own columns, never fs-sync''s (owner_id, last_seq, live_*)');
select is_empty($$
  select * from phase0_snapshot.privileges where kind = 'relation' and object in ('public.projects', 'public.user_profiles')
  except
  select * from phase0_snapshot.privileges() where kind = 'relation'
  except
  select 'relation', 'public.projects', grantee, privilege from phase0_snapshot.privileges()
   where kind = 'column' and object like 'public.projects.%'
$$, '… and the app keeps every privilege it had on its projects and profiles');
select is_empty($$select * from phase0_snapshot.buckets except select * from storage.buckets$$,
                'Phase 0''s buckets are there, as they were');
select is_empty($$select bucket_id, name from phase0_snapshot.objects except select bucket_id, name from storage.objects$$,
                '… with their objects');

-- The legacy app, as a project owner ----------------------------------------------------------
select tests.remember('owner', (select p.user_id from phase0_snapshot.projects p order by p.id limit 1));
select tests.remember('p', (select p.id from phase0_snapshot.projects p order by p.id limit 1));
select tests.authenticate_as_claims(jsonb_build_object('role', 'authenticated', 'sub', tests.recall('owner')));
select set_eq($$select id from public.projects$$,
              $$select s.id from phase0_snapshot.projects s where s.user_id = tests.recall('owner')$$,
              'the app lists its user''s projects');
select lives_ok($$insert into public.projects (user_id, name, description)
                  values (tests.recall('owner'), 'Made by the app', 'via .from(''projects'').insert')$$,
                'the app creates a project as before');
select lives_ok($$update public.projects set name = 'Renamed by the app', updated_at = now() where id = tests.recall('p')$$,
                'the app renames one');
select throws_ok($$update public.projects set last_seq = 0 where id = tests.recall('p')$$, '42501',
                 'permission denied for table projects', 'but it cannot touch fs-sync''s columns');
select is((select public.upsert_project_file(json_build_object(
             'project_uuid', (select id from public.projects where name = 'Made by the app'),
             'p_file_path', 'src/index.ts', 'p_content', 'export {};')) ->> 'seq'), '1',
          'a project the app created is an fs-sync project of its owner');
select set_eq($$select file_path, md5(content) from public.project_files_current where project_id = tests.recall('p')$$,
              $$select s.file_path,
                       case when s.content_md5 is null and s.is_binary
                                 and s.metadata ->> 'storage_path' like 'project-assets/' || s.project_id || '/%'
                                 and s.content_hash ~* '^[0-9a-f]{64}$' then null
                            else coalesce(s.content_md5, md5('')) end
                  from phase0_snapshot.heads h join phase0_snapshot.file_versions s on s.id = h.id
                 where h.project_id = tests.recall('p') and h.live$$,
              'the app reads project_files_current: each live path''s content');
select ok((select array_agg(a.attname::text) from pg_attribute a
            where a.attrelid = 'public.project_files_current'::regclass and a.attnum > 0)
          @> array['is_current_version', 'last_modified_by', 'file_size', 'is_binary', 'content_hash', 'metadata'],
          '… with every column the Phase-0 view had');
-- A save the Phase-0 way (FSYNC_USE_RPC off): insert the next version as current, clear the old head.
select lives_ok($$
  insert into public.project_files (project_id, file_path, content, content_hash, version, is_current_version, created_by,
                                    last_modified_by, file_size, is_binary)
  select tests.recall('p'), 'src/main.tsx', 'saved the Phase-0 way', 'not-a-hash', max(version) + 1, true,
         tests.recall('owner'), tests.recall('owner'), 21, false
    from public.project_files where project_id = tests.recall('p') and file_path = 'src/main.tsx'$$,
  'the app saves a file its Phase-0 way');
select lives_ok($$update public.project_files set is_current_version = false
                   where project_id = tests.recall('p') and file_path = 'src/main.tsx' and content <> 'saved the Phase-0 way'$$,
                '… and clears the old head (a no-op now)');
select results_eq($$select content, content_hash, file_size, is_binary, last_modified_by from public.project_files_current
                     where project_id = tests.recall('p') and file_path = 'src/main.tsx'$$,
                  $$select 'saved the Phase-0 way', encode(sha256('saved the Phase-0 way'::bytea), 'hex'), 21, false,
                           tests.recall('owner')$$,
                  '… which is a versioned write: the server''s hash; the Phase-0 columns filled as the app fills them');
select is((select count(*)::int from public.list_project_events(json_build_object('project_uuid', tests.recall('p')))), 1,
          '… with its change-log event');
select lives_ok(format($$
  insert into public.project_files (project_id, file_path, content, content_hash, is_binary, file_size, metadata)
  values (tests.recall('p'), 'public/assets/upload.png', null, %L, true, 2048,
          jsonb_build_object('storage_path', 'project-assets/' || tests.recall('p') || '/public/assets/upload.png'))$$,
  repeat('cd', 32)), 'the app uploads a binary its Phase-0 way (is_binary, metadata.storage_path)');
select results_eq($$select storage_path, size_bytes, is_binary, file_size from public.project_files_current
                     where project_id = tests.recall('p') and file_path = 'public/assets/upload.png'$$,
                  $$select 'project-assets/' || tests.recall('p') || '/public/assets/upload.png', 2048::bigint, true, 2048$$,
                  '… which is an fs-sync binary');
select tests.reset_authentication();

select * from finish();
\else
select plan(1);
select skip('not velocity''s Phase-0 fixture after the migrations (scripts/phase0.sh)', 1);
select * from finish();
\endif
rollback;
