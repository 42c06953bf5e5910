-- After every down script, on velocity's database (docs/adoption.md "Rolling
-- back"): the database is Phase 0's again (shape, functions, policies,
-- privileges: the privilege diff shows nothing wider, nothing lost), every
-- version written under fs-sync is there, and the legacy app reads the latest
-- content of every path the RPCs wrote (tests/fixtures/phase0/rpc-writes.sql)
-- and can write again. Runs only on that database at stage "down"
-- (scripts/phase0.sh); anywhere else it skips.
begin;
create extension if not exists pgtap;
select to_regclass('phase0_snapshot.state') is not null as has_snapshot \gset
\if :has_snapshot
select stage = 'down' as run from phase0_snapshot.state \gset
\else
\set run false
\endif
\if :run
select plan(25);

-- Phase 0's shape and privileges --------------------------------------------------------------
select hasnt_schema('fsync', 'fs-sync''s schema is gone');
select set_eq($$select c.relname::text from pg_class c where c.relnamespace = 'fsync_rollback'::regnamespace and c.relkind = 'r'$$,
              array['project_events', 'project_members', 'feature_flag_changes', 'state'],
              'what only fs-sync knows is kept aside in fsync_rollback for the next up: the log, memberships, the flag audit');
select is_empty($$select * from phase0_snapshot.privileges() except select * from phase0_snapshot.privileges$$,
                'privilege diff: no API role (anon, authenticated, service_role, PUBLIC) has anything Phase 0 did not give it');
select is_empty($$select * from phase0_snapshot.privileges except select * from phase0_snapshot.privileges()$$,
                '… and the app has every privilege it had');
select set_eq($$select schemaname::text, tablename::text, policyname::text, permissive, roles::text[], cmd, qual, with_check
                  from pg_policies$$,
              $$select * from phase0_snapshot.policies$$,
              'the policies are exactly Phase 0''s');
select set_eq($$select c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                       pg_get_expr(d.adbin, d.adrelid)
                  from pg_class c
                  join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
                  left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
                 where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'v')
                   and not exists (select 1 from pg_depend x where x.classid = 'pg_class'::regclass and x.objid = c.oid and x.deptype = 'e')$$,
              $$select * from phase0_snapshot.columns$$,
              'every table and view of public has exactly Phase 0''s columns, types, nullability and defaults');
select set_eq($$select c.relname::text, c.relkind::text, c.relrowsecurity,
                       case when c.relkind = 'v' then pg_get_viewdef(c.oid) end, c.reloptions
                  from pg_class c where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'v', 'i')
                   and not exists (select 1 from pg_depend x where x.classid = 'pg_class'::regclass and x.objid = c.oid and x.deptype = 'e')$$,
              $$select * from phase0_snapshot.relations$$,
              '… the same tables, views (project_files_current as Phase 0 defined it) and indexes, RLS as it was');
select set_eq($$select p.oid::regprocedure::text, pg_get_functiondef(p.oid) from pg_proc p
                 where p.pronamespace = 'public'::regnamespace
                   and not exists (select 1 from pg_depend x where x.classid = 'pg_proc'::regclass and x.objid = p.oid and x.deptype = 'e')$$,
              $$select * from phase0_snapshot.functions$$,
              '… and the same functions: Phase 0''s is_feature_enabled is back');
select is_empty($$select * from phase0_snapshot.buckets except select * from storage.buckets$$,
                'Phase 0''s buckets are there as they were');
select is_empty($$select b.id from storage.buckets b where b.id = 'project-assets'$$,
                'the bucket fs-sync created is gone (it was empty)');

-- Every version ------------------------------------------------------------------------------
select is_empty($$
  select s.id from phase0_snapshot.file_versions s
    left join public.project_files f on f.id = s.id
   where f.id is null or (f.project_id, f.file_path, md5(f.content)) is distinct from (s.project_id, s.file_path, s.content_md5)
$$, 'every Phase-0 version is there with its content (NULL where it was NULL)');
select is_empty($$
  select r.id from phase0_snapshot.rows_before_down r
    left join public.project_files f on f.id = r.id
   where f.id is null or (f.project_id, f.file_path, f.version) is distinct from (r.project_id, r.file_path, r.version)
      or (md5(f.content) is distinct from r.content_md5 and not (f.content is null and r.content_md5 = md5('')))
$$, 'every version written under fs-sync is there, with its version number and content');
select is_empty($$
  select project_id, file_path from public.project_files group by project_id, file_path
  having count(*) filter (where is_current_version) > 1
$$, 'no path has two current rows');
select is((select count(*)::int from public.project_files f where f.metadata ? 'fsync_tombstone' and f.is_current_version), 0,
          'a path fs-sync deleted has no current row (the app''s soft delete); its tombstone is marked for the next up');
select is_empty($$
  select f.id from public.project_files f
   where f.metadata ->> 'storage_path' like 'project-assets/%' and f.content is null and not f.metadata ? 'fsync_tombstone'
     and not (f.is_binary and f.file_size is not null)
$$, 'binaries written through fs-sync are the app''s binaries: is_binary, file_size, metadata.storage_path');

-- The legacy app reads what the RPCs wrote -----------------------------------------------------
create temp table app_reads (project_id uuid, file_path text, content_md5 text, content_null boolean, is_binary boolean,
                             storage_path text, content_hash_ok boolean) on commit drop;
grant insert on app_reads to authenticated;
do $$
declare
  v_w record;
begin
  for v_w in select * from phase0_snapshot.written loop
    perform tests.authenticate_as_claims(jsonb_build_object('role', 'authenticated', 'sub', v_w.owner_id));
    insert into app_reads
    select c.project_id, c.file_path, md5(coalesce(c.content, '')), c.content is null, c.is_binary, c.metadata ->> 'storage_path',
           c.content_hash ~ '^[0-9a-f]{64}$'
      from public.project_files_current c where c.project_id = v_w.project_id;
    perform tests.reset_authentication();
  end loop;
end
$$;
-- fs-sync's binaries are the app's (content NULL, is_binary, metadata.storage_path); everything else is text
-- (what fs-sync read as '' from a NULL content is NULL again).
select set_eq($$select project_id, file_path,
                       case when content_null and is_binary and storage_path like 'project-assets/%'
                                 and content_hash_ok then storage_path
                            else content_md5 end
                  from app_reads$$,
              $$select project_id, file_path, coalesce(storage_path, content_md5, md5(''))
                  from phase0_snapshot.expected_heads where stage = 'rpc' and not deleted$$,
              'as each owner, the app reads project_files_current: the latest content of every path the RPCs wrote, '
              'binaries by their storage path; deleted and renamed-away paths are gone');
select ok((select count(*) from phase0_snapshot.expected_heads where stage = 'rpc' and deleted) >= 12
          and (select count(*) from phase0_snapshot.expected_heads where stage = 'rpc' and storage_path is not null) >= 6,
          '(the writes deleted, renamed and registered binaries)');
select tests.authenticate_as_claims(jsonb_build_object('role', 'authenticated', 'sub',
                                      (select w.owner_id from phase0_snapshot.written w order by w.project_id limit 1)));
select is((select content from public.project_files
            where project_id = (select w.project_id from phase0_snapshot.written w order by w.project_id limit 1)
              and file_path = 'src/features/by-editor.ts' and is_current_version),
          E'// an editor''s file\n', 'what an editor wrote is there for the owner');
select is((select count(*)::int from public.projects), (select count(*)::int from phase0_snapshot.projects p
                                                          where p.user_id = (select w.owner_id from phase0_snapshot.written w order by w.project_id limit 1)),
          'the app lists its user''s projects under its own policies');
select lives_ok($$insert into public.projects (user_id, name) values (auth.uid(), 'after the rollback')$$,
                'the app creates projects');
select lives_ok($$update public.projects set name = name || ' (edited)'
                   where id = (select w.project_id from phase0_snapshot.written w order by w.project_id limit 1)$$,
                '… edits them');
select lives_ok($$insert into public.project_files (project_id, file_path, content, version, is_current_version)
                  values ((select w.project_id from phase0_snapshot.written w order by w.project_id limit 1),
                          'src/after-rollback.ts', 'x', 1, true)$$,
                '… and writes files, its Phase-0 way');
select tests.authenticate_as_claims(jsonb_build_object('role', 'authenticated', 'sub', md5('velocity-user-9')::uuid));
select is_empty($$select id from public.project_files
                   where project_id = (select w.project_id from phase0_snapshot.written w order by w.project_id limit 1)$$,
                'another user sees none of them (Phase 0''s policies decide again)');
select tests.reset_authentication();

-- Flags ------------------------------------------------------------------------------------------
select is_empty($$
  select s.flag_key from phase0_snapshot.flags s
    left join public.feature_flags f on f.flag_key = s.flag_key
   where (f.enabled, f.target_user_ids, f.description, f.created_at) is distinct from (s.enabled, s.target_user_ids, s.description, s.created_at)
      or (f.rollout_percentage is distinct from s.rollout_percentage and s.flag_key <> 'FSYNC_USE_RPC')
$$, 'every Phase-0 flag row is there (FSYNC_USE_RPC as the operator last set it)');
select is_empty($$select a.flag_key, a.user_id from phase0_snapshot.flag_answers a
                   where a.flag_key <> 'FSYNC_USE_RPC' and public.is_feature_enabled(a.flag_key, a.user_id) <> a.enabled$$,
                'Phase 0''s is_feature_enabled answers as before');

select * from finish();
\else
select plan(1);
select skip('not velocity''s Phase-0 fixture after the down scripts (scripts/phase0.sh)', 1);
select * from finish();
\endif
rollback;
