-- Schema: tables, columns, indexes, RLS everywhere, security_invoker views, who
-- may execute what. These tests are the security checklist of issue 3.
begin;
create extension if not exists pgtap;
select plan(50);

-- Tables and views --------------------------------------------------------
select has_schema('fsync', 'private schema fsync exists');
-- On a database fs-sync was adopted onto (velocity's Phase 0), fsync.adopted
-- records the app's own objects: they are expected besides fs-sync's.
create temp table fs_adopted_columns on commit drop as
select split_part(a.name, '.', 2) as relation, c ->> 'name' as column_name
  from fsync.adopted a, jsonb_array_elements(a.state -> 'columns') c
 where a.kind = 'relation';
select tables_are('public', array['projects', 'project_members', 'project_files', 'project_events', 'feature_flags', 'feature_flag_changes']
                            || array(select split_part(a.name, '.', 2)::name from fsync.adopted a
                                      where a.kind = 'relation' and a.state ->> 'kind' in ('r', 'p')),
                  'public holds exactly the fs-sync tables (and the app''s own, on an adopted database)');
select tables_are('fsync', array['settings', 'rate_limit_buckets', 'adopted', 'sessions', 'retention_policies', 'project_snapshots'], 'fsync holds the internal tables');
select has_view('public', 'project_files_current', 'view project_files_current exists');

select columns_are('public', 'project_files', array[
  'id', 'project_id', 'file_path', 'content', 'file_type', 'version', 'content_hash', 'created_at',
  'updated_at', 'created_by', 'is_current_version', 'metadata', 'is_deleted', 'size_bytes', 'storage_path']::name[]
  || array(select distinct column_name::name from fs_adopted_columns where relation = 'project_files'
            and column_name not in ('id', 'project_id', 'file_path', 'content', 'file_type', 'version', 'content_hash', 'checksum',
                                    'created_at', 'updated_at', 'created_by', 'is_current_version', 'metadata')),
  'project_files has the seed columns (checksum renamed) plus is_deleted, size_bytes, storage_path (and the app''s own)');
select col_type_is('public', 'project_files', 'size_bytes', 'bigint', 'size_bytes is bigint');
select col_not_null('public', 'project_files', 'version', 'version is not null');
select col_not_null('public', 'project_files', 'file_type', 'file_type is not null');
select col_is_null('public', 'project_files', 'content', 'content is nullable (tombstones, binaries)');
select columns_are('public', 'project_events', array['project_id', 'seq', 'event_type', 'payload', 'actor', 'created_at'],
  'project_events columns');
select col_is_pk('public', 'project_events', array['project_id', 'seq'], 'project_events primary key is (project_id, seq)');
select columns_are('public', 'projects', array['id', 'owner_id', 'name', 'last_seq', 'live_files', 'live_bytes',
  'created_at', 'updated_at']::name[]
  || array(select column_name::name from fs_adopted_columns where relation = 'projects'
            and column_name not in ('id', 'owner_id', 'name', 'last_seq', 'live_files', 'live_bytes', 'created_at', 'updated_at')),
  'projects columns (live_files, live_bytes: running totals for the project caps; and the app''s own)');
select col_is_pk('public', 'project_members', array['project_id', 'user_id'], 'project_members primary key');
select columns_are('public', 'feature_flags', array['flag_key', 'enabled', 'rollout_percentage', 'target_user_ids',
  'environments', 'description', 'created_at', 'updated_at'], 'feature_flags columns');

-- Indexes -----------------------------------------------------------------
select index_is_unique('public', 'project_files', 'project_files_one_head_idx', 'one-head index is unique');
select is(
  (select pg_get_expr(i.indpred, i.indrelid) from pg_index i
    where i.indexrelid = 'public.project_files_one_head_idx'::regclass),
  'is_current_version',
  'one-head index is partial on is_current_version');
select is(
  (select array_agg(a.attname::text order by k.ord)
     from pg_index i
     cross join lateral unnest(i.indkey) with ordinality as k(attnum, ord)
     join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
    where i.indexrelid = 'public.project_files_one_head_idx'::regclass),
  array['project_id', 'file_path'],
  'one-head index is on (project_id, file_path)');
select ok(exists (select 1 from pg_index i
                   where i.indrelid = 'public.project_files'::regclass and i.indisunique and i.indpred is null
                     and (select array_agg(a.attname::text order by k.ord)
                            from unnest(i.indkey) with ordinality as k(attnum, ord)
                            join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum)
                         = array['project_id', 'file_path', 'version']),
          'versions are unique per (project_id, file_path, version) (project_files_path_version_key, or the app''s own UNIQUE)');
select is(
  (select pg_get_indexdef(i.indexrelid) from pg_index i
    where i.indexrelid = 'public.project_files_live_path_idx'::regclass),
  'CREATE INDEX project_files_live_path_idx ON public.project_files USING btree (project_id, file_path COLLATE "C") WHERE (is_current_version AND (NOT is_deleted))',
  'live paths are indexed in byte order (collation "C"), for the file/folder conflict probe');
select has_index('public', 'project_members', 'project_members_user_id_idx', 'project_members.user_id is indexed');

-- RLS everywhere, invoker views ----------------------------------------------
select is_empty($$
  select c.relname from pg_class c
   where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p') and not c.relrowsecurity
$$, 'RLS is enabled on every table in public');
select ok((select 'security_invoker=true' = any (c.reloptions) from pg_class c
            where c.oid = 'public.project_files_current'::regclass),
          'project_files_current is security_invoker');
select is_empty($$
  select c.relname from pg_class c
   where c.relnamespace = 'public'::regnamespace and c.relkind = 'v'
     and not coalesce('security_invoker=true' = any (c.reloptions), false)
     and not exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')
$$, 'every view in public is security_invoker');
select bag_eq($$
  select t.table_name::text, t.grantee::text, t.privilege_type::text from information_schema.role_table_grants t
   where t.table_schema = 'public' and t.grantee in ('anon', 'authenticated', 'fsync_container')
     and t.privilege_type in ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')
     and t.table_name in ('projects', 'project_members', 'project_files', 'project_events', 'feature_flags', 'project_files_current')
     -- the app keeps its own writes on its projects table (tests/sql/phase0/ checks them against Phase 0)
     and not (t.table_name = 'projects' and fsync.was_adopted('relation', 'public.projects'))
$$, $$values ('project_files', 'authenticated', 'INSERT'), ('project_files', 'authenticated', 'UPDATE'),
             ('project_files', 'authenticated', 'DELETE')$$,
  'clients may write only project_files (the legacy app''s statements, which the trigger turns into RPC writes)');
select policies_are('public', 'project_files', array['members can read project files', 'writers insert project files',
                    'writers update project files', 'writers delete project files']
                    || array(select p ->> 'name' from fsync.adopted a, jsonb_array_elements(a.state -> 'policies') p
                              where a.kind = 'relation' and a.name = 'public.project_files'),
                    'project_files: members read, writers (owner, editor) write');
select is((select pg_get_triggerdef(t.oid) from pg_trigger t
            where t.tgrelid = 'public.project_files'::regclass and t.tgname = 'fsync_legacy_write'),
          format('CREATE TRIGGER fsync_legacy_write BEFORE INSERT OR DELETE OR UPDATE ON public.project_files FOR EACH ROW WHEN ((CURRENT_USER <> %L::name)) EXECUTE FUNCTION fsync.legacy_write()',
                 (select tableowner from pg_tables where schemaname = 'public' and tablename = 'project_files')),
          'every direct write by a role other than the table''s owner goes through fsync_legacy_write');
select is_empty($$
  select p.oid::regprocedure from pg_proc p
   where p.pronamespace = 'fsync'::regnamespace and p.prosecdef
     and p.proowner <> (select c.relowner from pg_class c where c.oid = 'public.project_files'::regclass)
$$, '… and the SECURITY DEFINER functions (the RPCs) are owned by the table''s owner, so their writes skip it');
select is((select pg_get_triggerdef(t.oid) from pg_trigger t
            where t.tgrelid = 'public.project_files'::regclass and t.tgname = 'fsync_legacy_lock'),
          format('CREATE TRIGGER fsync_legacy_lock BEFORE DELETE OR UPDATE ON public.project_files FOR EACH STATEMENT WHEN ((CURRENT_USER <> %L::name)) EXECUTE FUNCTION fsync.legacy_lock_projects()',
                 (select tableowner from pg_tables where schemaname = 'public' and tablename = 'project_files')),
          'a direct update or delete takes its project locks before any row lock, as the RPCs do (no deadlock with them)');
select is((select array_agg(t.tgname::text order by t.tgname) from pg_trigger t
            where t.tgrelid = 'public.project_files'::regclass and not t.tgisinternal),
          case when exists (select 1 from fs_adopted_columns
                             where relation = 'project_files' and column_name in ('last_modified_by', 'file_size', 'is_binary'))
               then array['fsync_legacy_lock', 'fsync_legacy_write', 'fsync_phase0_columns', 'fsync_refresh_statistics']
               else array['fsync_legacy_lock', 'fsync_legacy_write', 'fsync_refresh_statistics'] end,
          'they and the statistics trigger are the only triggers on project_files (and the one filling velocity''s Phase-0 columns)');
select is_empty($$
  select t.table_name, t.privilege_type from information_schema.role_table_grants t
   where t.table_schema = 'public' and t.grantee in ('anon', 'fsync_container')
     and t.table_name in ('projects', 'project_members', 'project_files', 'project_events', 'feature_flags', 'project_files_current')
$$, 'anon and container roles have no privilege on any fs-sync table');
select is_empty($$
  select t.table_name, t.grantee from information_schema.role_table_grants t
   where t.table_schema = 'fsync' and t.grantee in ('PUBLIC', 'anon', 'authenticated', 'service_role', 'fsync_container')
$$, 'no API role has any privilege on fsync tables');
select is_empty($$
  select t.grantee, t.privilege_type from information_schema.role_table_grants t
   where t.table_schema = 'public' and t.table_name = 'feature_flags' and t.grantee <> 'service_role'
     and t.grantee <> (select tableowner from pg_tables where schemaname = 'public' and tablename = 'feature_flags')
$$, 'only the service role may read feature_flags (target_user_ids names users)');
select is_empty($$
  select p.schemaname, p.tablename, p.policyname from pg_policies p
   where ((coalesce(p.qual, '') ~ 'auth\.(uid|jwt|role)\(\)' and coalesce(p.qual, '') !~ 'SELECT auth\.(uid|jwt|role)\(\)')
          or (coalesce(p.with_check, '') ~ 'auth\.(uid|jwt|role)\(\)' and coalesce(p.with_check, '') !~ 'SELECT auth\.(uid|jwt|role)\(\)'))
     -- the app's own policies, as it wrote them, are not fs-sync's to restyle
     and not exists (select 1 from fsync.adopted a
                      where (a.kind = 'policy' and a.name = format('%I.%I.%I', p.schemaname, p.tablename, p.policyname))
                         or (a.kind = 'relation' and a.name = format('%I.%I', p.schemaname, p.tablename)
                             and a.state -> 'policies' @> jsonb_build_array(jsonb_build_object('name', p.policyname))))
$$, 'policies wrap auth.*() calls in (select …)');

-- Functions ---------------------------------------------------------------
create temp table fs_public_functions on commit drop as
select p.oid, p.oid::regprocedure::text as signature, p.prosecdef, p.proconfig
  from pg_proc p
 where p.pronamespace = 'public'::regnamespace
   and not exists (select 1 from pg_depend d
                    where d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e');
grant select on fs_public_functions to public;

select bag_eq($$select signature from fs_public_functions$$, array[
  'create_project(json)', 'add_project_member(json)', 'remove_project_member(json)',
  'upsert_project_file(json)', 'register_binary_file(json)', 'delete_project_file(json)', 'rename_project_file(json)',
  'bulk_upsert_project_files(json)', 'list_current_files(json)', 'get_project_snapshot(json)',
  'get_project_files(json)', 'list_project_events(json)', 'get_project_sync_state(json)',
  'is_feature_enabled(text,uuid)', 'get_enabled_features()', 'is_feature_enabled_for_project(text,uuid)',
  'restore_project(json)', 'diff_project(json)',
  'open_container_session(json)', 'end_container_session(json)', 'check_container_session(json)',
  'record_session_snapshot(json)', 'find_project_snapshot(json)', 'record_project_snapshot(json)',
  'prune_project_history(json)', 'set_retention_policy(json)'],
  'public API is exactly the fs-sync RPCs; the project and file RPCs take the request body as one json argument');
select is_empty($$select signature from fs_public_functions where has_function_privilege('anon', oid, 'execute')$$,
                'anon can execute no public fs-sync function');
select is_empty($$select signature from fs_public_functions where prosecdef$$,
                'no SECURITY DEFINER function in the exposed schema (wrappers are invoker)');
select is_empty($$select signature from fs_public_functions
                   where signature not in ('is_feature_enabled_for_project(text,uuid)', 'open_container_session(json)',
                                           'end_container_session(json)', 'check_container_session(json)',
                                           'record_session_snapshot(json)', 'find_project_snapshot(json)',
                                           'record_project_snapshot(json)', 'prune_project_history(json)',
                                           'set_retention_policy(json)')
                     and (not has_function_privilege('authenticated', oid, 'execute')
                          or not has_function_privilege('service_role', oid, 'execute'))$$,
                'authenticated and service_role can execute every client-facing public fs-sync function');
select bag_eq($$select signature from fs_public_functions where not has_function_privilege('authenticated', oid, 'execute')$$,
  array['is_feature_enabled_for_project(text,uuid)', 'open_container_session(json)', 'end_container_session(json)',
        'check_container_session(json)', 'record_session_snapshot(json)', 'find_project_snapshot(json)',
        'record_project_snapshot(json)', 'prune_project_history(json)', 'set_retention_policy(json)'],
  'only the server-side flag lookup, the edge''s session and snapshot RPCs and retention administration are kept from authenticated');
select bag_eq($$select signature from fs_public_functions where has_function_privilege('fsync_container', oid, 'execute')$$,
  array['list_current_files(json)', 'get_project_snapshot(json)', 'get_project_files(json)',
        'list_project_events(json)', 'get_project_sync_state(json)'],
  'container tokens can execute exactly the read RPCs');
select is_empty($$
  select p.oid::regprocedure from pg_proc p
   where p.pronamespace in ('public'::regnamespace, 'fsync'::regnamespace)
     and not exists (select 1 from pg_depend d where d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e')
     and not coalesce('search_path=""' = any (p.proconfig), false)
$$, 'every fs-sync function sets search_path = ''''');
select is_empty($$
  select p.oid::regprocedure from pg_proc p
   where p.pronamespace = 'fsync'::regnamespace and has_function_privilege('public', p.oid, 'execute')
$$, 'EXECUTE is revoked from PUBLIC on every fsync function');
select bag_eq($$
  select p.oid::regprocedure::text from pg_proc p
   where p.pronamespace = 'fsync'::regnamespace and p.prosecdef
$$, array[
  'fsync.member_project_ids()', 'fsync.writable_project_ids()', 'fsync.create_project(text,uuid)', 'fsync.set_project_member(uuid,uuid,text)',
  'fsync.remove_project_member(uuid,uuid)', 'fsync.upsert_project_file(uuid,text,text,text,integer)',
  'fsync.register_binary_file(uuid,text,text,text,bigint,text,integer)', 'fsync.delete_project_file(uuid,text,integer)',
  'fsync.rename_project_file(uuid,text,text,integer)', 'fsync.bulk_upsert_project_files(uuid,jsonb)',
  'fsync.list_current_files(uuid)', 'fsync.get_project_snapshot(uuid,boolean)',
  'fsync.get_project_files(uuid,text[],integer[])', 'fsync.list_project_events(uuid,bigint,integer)',
  'fsync.get_project_sync_state(uuid)', 'fsync.is_feature_enabled(text,uuid)', 'fsync.get_enabled_features()',
  'fsync.is_feature_enabled_for_project(text,uuid)', 'fsync.legacy_write()', 'fsync.legacy_lock_projects()',
  'fsync.record_flag_change()',
  'fsync.apply_bulk(uuid,jsonb)',
  'fsync.restore_project(uuid,bigint,bigint,text[])', 'fsync.diff_project(uuid,bigint,bigint)',
  'fsync.session_live(text,uuid)', 'fsync.open_container_session(uuid,text,bigint,text,bigint)',
  'fsync.end_container_session(text,text)', 'fsync.check_container_session(text,uuid,boolean)',
  'fsync.record_session_snapshot(text,text,bigint)', 'fsync.find_project_snapshot(uuid,text,boolean,bigint)',
  'fsync.record_project_snapshot(uuid,text,bigint,text,bigint,integer)', 'fsync.refresh_file_statistics()',
  'fsync.prune_project_history(uuid,boolean,timestamp with time zone,bigint,uuid)', 'fsync.set_retention_policy(uuid,jsonb)']
  || case when to_regprocedure('fsync.sync_project_owner_member()') is not null  -- velocity's projects.user_id
          then array['fsync.sync_project_owner_member()'] else '{}' end,
  'SECURITY DEFINER is used exactly where documented');
select ok(not has_function_privilege('authenticated', 'fsync.apply_bulk(uuid,jsonb)', 'execute')
          and not has_function_privilege('service_role', 'fsync.apply_bulk(uuid,jsonb)', 'execute'),
          'the bulk behind the FSYNC_BULK_GENERATION gate is executable by no API role');

-- Roles -------------------------------------------------------------------
select ok(not has_schema_privilege('anon', 'fsync', 'usage'), 'anon has no usage on schema fsync');
select ok((select not r.rolcanlogin from pg_roles r where r.rolname = 'fsync_container'), 'fsync_container cannot log in');
select ok(pg_has_role('authenticator', 'fsync_container', 'member'), 'PostgREST (authenticator) may switch to fsync_container');
select ok(pg_has_role('fsync_container', 'anon', 'usage'), 'fsync_container inherits exactly what anon may do');
select ok(not pg_has_role('fsync_container', 'authenticated', 'member'), 'fsync_container is not an authenticated user');
select ok((select r.rolbypassrls from pg_roles r where r.rolname = 'service_role'), 'service_role bypasses RLS');

-- Settings defaults -------------------------------------------------------
select results_eq($$
  select key, value from fsync.settings
   where key in ('limits.max_file_bytes', 'limits.max_bulk_files', 'limits.max_bulk_bytes', 'limits.max_project_bytes',
                 'limits.max_project_files', 'environment')
   order by key
$$, $$values ('environment', '"development"'::jsonb), ('limits.max_bulk_bytes', '52428800'),
             ('limits.max_bulk_files', '5000'), ('limits.max_file_bytes', '5242880'),
             ('limits.max_project_bytes', '1073741824'), ('limits.max_project_files', '65534')$$,
  'default limits: 5 MiB per file, 5,000 files and 50 MiB per bulk, 1 GiB and 65,534 files per project; environment development');

select * from finish();
rollback;
