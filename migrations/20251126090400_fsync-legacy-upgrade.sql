-- =====================================================================
-- fsync-legacy-upgrade: turns the seed's project_files (12 columns,
-- `checksum`, nullable file_type and version, heads maybe inconsistent), or
-- velocity's Phase-0 table (15 columns, content_hash, docs/adoption.md), into
-- the canonical table, losing nothing:
--
--   * checksum is renamed to content_hash (Phase 0 did it already) and
--     recomputed as sha256(UTF-8 content); a legacy value that differs is
--     kept in metadata.fsync_upgrade.legacy_checksum.
--   * versions are renumbered 1, 2, 3 … per (project_id, file_path) in history
--     order: the legacy version (rows without one after the versioned rows),
--     then created_at, then id. So they are gapless and, on an upgraded table,
--     unchanged. A changed legacy version is kept in
--     metadata.fsync_upgrade.legacy_version, a missing one is flagged
--     version_filled.
--   * the path's state is the legacy one: its legacy current row (the last
--     of them in history order if several are flagged; a NULL flag counts only
--     when no row is flagged true) stays what the path holds. No row is
--     reordered or rewritten; instead:
--       - the current row is the last in history order: it is the head;
--       - it is an older row (the legacy app pointed the flag back at it): a
--         copy of it is appended as the next version and becomes the head
--         (metadata.fsync_upgrade {appended: "legacy_head", copy_of: <row id>});
--       - every row is is_current_version = false (soft-deleted): a tombstone
--         is appended as the next version, so the path stays deleted
--         (metadata.fsync_upgrade {appended: "soft_delete"}), unless the last
--         row is a tombstone a down script kept (metadata.fsync_tombstone,
--         see migrations/down/): it is the tombstone again.
--     Appended rows get a new id and created_at = now(); a copy keeps the
--     content, type, storage_path, author, metadata and the table's other
--     columns (Phase 0's last_modified_by, file_size, is_binary) of its source
--     row. Exactly one head per path, always the latest version. A legacy flag
--     that differs from the result is kept in
--     metadata.fsync_upgrade.legacy_is_current_version.
--   * file_type NULL is inferred from the path (fsync.infer_file_type) and
--     flagged file_type_inferred; content NULL becomes '' (flag
--     content_was_null), except a binary whose Storage object fs-sync can
--     serve (below).
--   * new columns: is_deleted (tombstones), size_bytes, storage_path (binaries
--     in Storage, content NULL). A Phase-0 binary (content NULL,
--     metadata.storage_path) becomes an fs-sync binary when its object is
--     where fs-sync's binaries live (project-assets/<project_id>/<valid path>)
--     and its content_hash is a SHA-256: storage_path from metadata, size_bytes
--     from file_size. Any other is kept as a legacy-only row: content '' for
--     fs-sync, flagged binary_unresolved; its own columns and metadata are
--     unchanged, so the app still finds it (the down scripts put content back
--     to NULL).
--   * project ids without a projects row get one ("Imported project", owner =
--     the earliest non-null created_by, else last_modified_by, that is an
--     auth.users id), so the FK holds. Each project's live_files/live_bytes
--     are set from its live heads (the write RPCs keep them from then on; a
--     project already over limits.max_project_* can shrink but not grow).
--   * legacy paths that break the path rules are kept as they are and reported
--     with a WARNING (the rules refuse, they never rewrite); the RPCs will refuse
--     to write them until they are renamed by hand.
--   * the table's other columns, constraints, indexes, policies, triggers,
--     grants and views are kept (velocity's idx_project_files_* and UNIQUE
--     (project_id, file_path, version), which then stands for fs-sync's
--     project_files_path_version_key). Policies are kept too: the app's
--     owner-based ones grant nothing fs-sync's member policies do not, and
--     direct writes are versioned writes (fsync-legacy-writes) whichever
--     policy let them through. Members get a read policy.
--
-- Locks. The table is rebuilt, not updated in place, in three steps:
--   1. a plan of every row (versions, heads, hashes: no contents) is computed;
--   2. the rows are copied into a new table with it, and its indexes,
--      constraints, policies, grants and triggers are built. Reads and writes
--      of the old table go on during 1 and 2;
--   3. the old table is locked EXCLUSIVE (reads go on, writes wait), the rows
--      written since step 1 (newer than its snapshot and not the version the
--      plan read; deleted ones by count) are planned and copied again, path
--      by path, and the new table replaces the old one under ACCESS EXCLUSIVE,
--      which moves names and no rows.
-- So writers wait for step 3 only (one scan of the table) and readers for the
-- swap only (bench/migrate-phase0.sh measures both; docs/rollout.md
-- "Applying the migrations"). The foreign key to projects is added
-- unvalidated and validated by fsync-flag-audit, which blocks nobody. A
-- table that is already canonical (a re-run) is updated in place, under
-- EXCLUSIVE, row by row where something changed.
--
-- The work is done by fsync.upgrade_legacy_project_files(schema) so that
-- tests/sql/11-legacy-upgrade.sql can run the very same code on a fixture.
-- =====================================================================

-- ---------------------------------------------------------------------
-- Helpers
-- ---------------------------------------------------------------------

-- p_path when a legacy binary's recorded object can be an fs-sync binary:
-- under project-assets/<project_id>/ with a path obeying the rules (what
-- fsync.check_binary_args accepts from a writer), and p_hash a SHA-256 in hex.
create function fsync.legacy_storage_path(p_project_id uuid, p_path text, p_hash text)
returns text
language sql
immutable
parallel safe
set search_path = ''
as $$
  select legacy_storage_path.p_path
   where legacy_storage_path.p_path is not null
     and left(legacy_storage_path.p_path, 52) = 'project-assets/' || legacy_storage_path.p_project_id::text || '/'
     and fsync.path_error(substr(legacy_storage_path.p_path, 53)) is null
     and lower(legacy_storage_path.p_hash) ~ '^[0-9a-f]{64}$'
$$;
revoke all on function fsync.legacy_storage_path(uuid, text, text) from public;

-- Whether p_path may break the path rules: false for the plain ASCII paths
-- nearly every project holds, so fsync.path_error runs only on the others.
create function fsync.path_suspect(p_path text)
returns boolean
language sql
immutable
parallel safe
set search_path = ''
as $$
  select not (octet_length(path_suspect.p_path) <= 255
              and path_suspect.p_path ~ '^[A-Za-z0-9_.@+-]+(/[A-Za-z0-9_.@+-]+){0,63}$'
              and path_suspect.p_path !~ '(^|/)\.\.?(/|$)'
              and path_suspect.p_path <> '.fs-sync'
              and left(path_suspect.p_path, 9) <> '.fs-sync/')
$$;
revoke all on function fsync.path_suspect(text) from public;

-- The table cannot be rebuilt safely if anything points at it by oid that
-- the rebuild does not carry over: other tables' foreign keys, functions or
-- columns of its row type, owned sequences, inheritance.
create function fsync.check_rebuildable(p_table regclass)
returns void
language plpgsql
stable
set search_path = ''
as $$
declare
  v_what text;
begin
  select string_agg(x.what, '; ') into v_what
    from (select format('foreign key %s of %s', k.conname, k.conrelid::regclass) as what
            from pg_catalog.pg_constraint k where k.confrelid = p_table and k.conrelid <> p_table
          union all
          select pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid)
            from pg_catalog.pg_depend d
           where d.refclassid = 'pg_catalog.pg_type'::regclass
             and d.refobjid = (select c.reltype from pg_catalog.pg_class c where c.oid = p_table)
             and d.classid <> 'pg_catalog.pg_type'::regclass
             and not (d.classid = 'pg_catalog.pg_class'::regclass and d.objid = p_table)
          union all
          select pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid)
            from pg_catalog.pg_depend d
            join pg_catalog.pg_class s on s.oid = d.objid and s.relkind = 'S'
           where d.classid = 'pg_catalog.pg_class'::regclass and d.refobjid = p_table and d.deptype in ('a', 'i')
          union all
          select format('inheritance of %s', i.inhrelid::regclass)
            from pg_catalog.pg_inherits i where i.inhparent = p_table or i.inhrelid = p_table) x;
  if v_what is not null then
    raise exception '%: cannot be upgraded while these depend on it: %', p_table, v_what
      using hint = 'the upgrade rebuilds the table; drop or detach them first and recreate them afterwards';
  end if;
end
$$;
revoke all on function fsync.check_rebuildable(regclass) from public;

-- Gives p_new what p_old has besides rows, columns, constraints and indexes:
-- owner, grants (table and column), row-level security and its policies,
-- triggers, comment, replica identity, storage options, publications.
create function fsync.copy_table_satellites(p_old regclass, p_new regclass)
returns void
language plpgsql
set search_path = ''
as $$
declare
  v_old record;
  v_rec record;
begin
  select c.relowner, c.relacl, c.relrowsecurity, c.relforcerowsecurity, c.relreplident, c.reloptions
    into v_old from pg_catalog.pg_class c where c.oid = p_old;
  if (select c.relowner from pg_catalog.pg_class c where c.oid = p_new) <> v_old.relowner then
    execute format('alter table %s owner to %I', p_new, pg_catalog.pg_get_userbyid(v_old.relowner));
  end if;

  -- Grants: none but the old table's (the new one got the schema's default privileges).
  for v_rec in
    select distinct case when a.grantee = 0 then 'public' else quote_ident(pg_catalog.pg_get_userbyid(a.grantee)) end as grantee
      from pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a
     where c.oid = p_new and a.grantee <> c.relowner
  loop
    execute format('revoke all on %s from %s', p_new, v_rec.grantee);
  end loop;
  for v_rec in
    select case when a.grantee = 0 then 'public' else quote_ident(pg_catalog.pg_get_userbyid(a.grantee)) end as grantee,
           a.privilege_type, a.is_grantable
      from pg_catalog.aclexplode(v_old.relacl) a
     where a.grantee <> v_old.relowner
  loop
    execute format('grant %s on %s to %s%s', v_rec.privilege_type, p_new, v_rec.grantee,
                   case when v_rec.is_grantable then ' with grant option' else '' end);
  end loop;
  for v_rec in
    select case when g.grantee = 0 then 'public' else quote_ident(pg_catalog.pg_get_userbyid(g.grantee)) end as grantee,
           g.privilege_type, g.is_grantable, a.attname
      from pg_catalog.pg_attribute a, pg_catalog.aclexplode(a.attacl) g
     where a.attrelid = p_old and a.attnum > 0 and not a.attisdropped and g.grantee <> v_old.relowner
  loop
    execute format('grant %s (%I) on %s to %s%s', v_rec.privilege_type,
                   case when v_rec.attname = 'checksum' then 'content_hash' else v_rec.attname end,
                   p_new, v_rec.grantee, case when v_rec.is_grantable then ' with grant option' else '' end);
  end loop;

  if v_old.relrowsecurity then
    execute format('alter table %s enable row level security', p_new);
  end if;
  if v_old.relforcerowsecurity then
    execute format('alter table %s force row level security', p_new);
  end if;
  for v_rec in
    select p.policyname, p.permissive, p.cmd, p.roles, p.qual, p.with_check
      from pg_catalog.pg_policies p
      join pg_catalog.pg_class c on c.relname = p.tablename
      join pg_catalog.pg_namespace n on n.oid = c.relnamespace and n.nspname = p.schemaname
     where c.oid = p_old
  loop
    execute format('create policy %I on %s as %s for %s to %s%s%s', v_rec.policyname, p_new, v_rec.permissive,
                   v_rec.cmd,
                   (select string_agg(case when r = 'public' then 'public' else quote_ident(r) end, ', ')
                      from unnest(v_rec.roles) r),
                   case when v_rec.qual is not null then format(' using (%s)', v_rec.qual) else '' end,
                   case when v_rec.with_check is not null then format(' with check (%s)', v_rec.with_check) else '' end);
  end loop;

  for v_rec in
    select pg_catalog.pg_get_triggerdef(t.oid) as def, t.tgenabled, t.tgname
      from pg_catalog.pg_trigger t where t.tgrelid = p_old and not t.tgisinternal
  loop
    execute replace(v_rec.def, format(' ON %s ', p_old), format(' ON %s ', p_new));
    if v_rec.tgenabled <> 'O' then
      execute format('alter table %s %s trigger %I', p_new,
                     case v_rec.tgenabled when 'D' then 'disable' when 'A' then 'enable always'
                                          else 'enable replica' end, v_rec.tgname);
    end if;
  end loop;

  execute format('comment on table %s is %L', p_new, pg_catalog.obj_description(p_old, 'pg_class'));
  if v_old.relreplident in ('f', 'n') then
    execute format('alter table %s replica identity %s', p_new,
                   case v_old.relreplident when 'f' then 'full' else 'nothing' end);
  end if;
  if v_old.reloptions is not null then
    execute format('alter table %s set (%s)', p_new, array_to_string(v_old.reloptions, ', '));
  end if;
  for v_rec in
    select p.pubname from pg_catalog.pg_publication_rel r join pg_catalog.pg_publication p on p.oid = r.prpubid
     where r.prrelid = p_old
  loop
    execute format('alter publication %I add table %s', v_rec.pubname, p_new);
  end loop;
end
$$;
revoke all on function fsync.copy_table_satellites(regclass, regclass) from public;

-- Drops the views that read p_table and returns what fsync.create_views needs
-- to make them again: [{schema, name, definition, options, owner, acl, comment}],
-- in creation order.
create function fsync.drop_dependent_views(p_table regclass)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_views jsonb;
  v_view jsonb;
begin
  select coalesce(jsonb_agg(jsonb_build_object(
           'schema', n.nspname, 'name', v.relname, 'definition', pg_catalog.pg_get_viewdef(v.oid),
           'options', to_jsonb(v.reloptions), 'owner', pg_catalog.pg_get_userbyid(v.relowner),
           'acl', fsync.acl_of(v.relacl, v.relowner), 'comment', pg_catalog.obj_description(v.oid, 'pg_class'))
           order by v.oid), '[]'::jsonb)
    into v_views
    from pg_catalog.pg_class v
    join pg_catalog.pg_namespace n on n.oid = v.relnamespace
   where v.oid in (select r.ev_class from pg_catalog.pg_depend d
                     join pg_catalog.pg_rewrite r on r.oid = d.objid
                    where d.classid = 'pg_catalog.pg_rewrite'::regclass and d.refobjid = p_table
                      and r.ev_class <> p_table);
  for v_view in select * from jsonb_array_elements(v_views) order by 1 desc loop
    execute format('drop view %I.%I', v_view ->> 'schema', v_view ->> 'name');
  end loop;
  return v_views;
end
$$;
revoke all on function fsync.drop_dependent_views(regclass) from public;

create function fsync.create_views(p_views jsonb)
returns void
language plpgsql
set search_path = ''
as $$
declare
  v_view jsonb;
  v_grant jsonb;
begin
  for v_view in select * from jsonb_array_elements(p_views) loop
    execute format('create view %I.%I%s as %s', v_view ->> 'schema', v_view ->> 'name',
                   case when jsonb_typeof(v_view -> 'options') = 'array'
                        then format(' with (%s)', (select string_agg(o, ', ') from jsonb_array_elements_text(v_view -> 'options') o))
                        else '' end,
                   v_view ->> 'definition');
    if v_view ->> 'owner' <> current_user then
      execute format('alter view %I.%I owner to %I', v_view ->> 'schema', v_view ->> 'name', v_view ->> 'owner');
    end if;
    execute format('revoke all on %I.%I from public, anon, authenticated, service_role', v_view ->> 'schema', v_view ->> 'name');
    for v_grant in select * from jsonb_array_elements(v_view -> 'acl') loop
      execute format('grant %s on %I.%I to %s', v_grant ->> 'privilege', v_view ->> 'schema', v_view ->> 'name',
                     case when v_grant ->> 'grantee' = 'PUBLIC' then 'public' else quote_ident(v_grant ->> 'grantee') end);
    end loop;
    if v_view ->> 'comment' is not null then
      execute format('comment on view %I.%I is %L', v_view ->> 'schema', v_view ->> 'name', v_view ->> 'comment');
    end if;
  end loop;
end
$$;
revoke all on function fsync.create_views(jsonb) from public;

-- With fsync.upgrade_timing set to on, the upgrade reports how long each step
-- took (bench/migrate-phase0.sh; an operator can set it before db push).
create function fsync.upgrade_step(p_step text, p_since timestamptz)
returns timestamptz
language plpgsql
volatile
set search_path = ''
as $$
begin
  if current_setting('fsync.upgrade_timing', true) = 'on' then
    raise notice 'fsync-legacy-upgrade: % % ms', p_step, round(extract(epoch from clock_timestamp() - p_since) * 1000);
  end if;
  return clock_timestamp();
end
$$;
revoke all on function fsync.upgrade_step(text, timestamptz) from public;

-- Upgrades <p_schema>.project_files and returns counts of what it did (rows:
-- the rows rewritten). Idempotent: on an already-upgraded table (versions
-- 1..n, the head the last) history order is version order, nothing is
-- renumbered or appended, and it changes nothing.
create function fsync.upgrade_legacy_project_files(p_schema text default 'public')
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_table regclass := to_regclass(format('%I.project_files', p_schema));
  v_new text := format('%I.%I', p_schema, 'project_files_fsync_new');
  v_cols text[];
  v_rebuild boolean;
  v_target text;
  v_snap xid;
  v_plan_sql text;
  v_copy_sql text;
  v_append_sql text;
  v_orphans_sql text;
  v_totals_sql text;
  v_e_hash text;
  v_e_deleted text;
  v_e_storage text;
  v_e_size text;
  v_e_binary text;
  v_extra_cols text[];
  v_rec record;
  v_n integer := 0;
  v_renames text[] := '{}';
  v_views jsonb := '[]';
  v_projects bigint := 0;
  v_count bigint;
  v_owner_nn boolean;
  v_stats jsonb;
  v_rows bigint := 0;
  v_scan record;
  v_delta_paths bigint := 0;
  v_clock timestamptz := clock_timestamp();
begin
  if v_table is null then
    raise exception 'table %.project_files does not exist', p_schema;
  end if;
  -- For the plan's sorts and hash join and the index builds, this transaction only.
  if pg_catalog.pg_size_bytes(current_setting('work_mem')) < 128 * 1024 * 1024 then
    perform set_config('work_mem', '128MB', true);
  end if;
  if pg_catalog.pg_size_bytes(current_setting('maintenance_work_mem')) < 256 * 1024 * 1024 then
    perform set_config('maintenance_work_mem', '256MB', true);
  end if;

  select array_agg(a.attname::text order by a.attnum) into v_cols
    from pg_catalog.pg_attribute a
   where a.attrelid = v_table and a.attnum > 0 and not a.attisdropped;
  if 'checksum' = any (v_cols) and 'content_hash' = any (v_cols) then
    raise exception '%: both checksum and content_hash exist; merge them by hand first', v_table;
  end if;
  v_rebuild := not (v_cols @> array['content_hash', 'is_deleted', 'size_bytes', 'storage_path']);
  if v_rebuild then
    perform fsync.check_rebuildable(v_table);
    v_target := v_new;
  else
    -- An upgraded table (a re-run) is updated in place; reads go on, writes wait.
    execute format('lock table %s in exclusive mode', v_table);
    v_target := v_table::text;
  end if;
  select exists (select 1 from pg_catalog.pg_attribute a
                  where a.attrelid = 'public.projects'::regclass and a.attname = 'user_id'
                    and a.attnotnull and not a.attisdropped)
    into v_owner_nn;

  v_e_hash := case when 'content_hash' = any (v_cols) then 'f.content_hash'
                   when 'checksum' = any (v_cols) then 'f.checksum' else 'null::text' end;
  v_e_deleted := case when 'is_deleted' = any (v_cols) then 'coalesce(f.is_deleted, false)' else 'false' end
                 || ' or coalesce(f.metadata ? ''fsync_tombstone'', false)';
  v_e_storage := case when 'storage_path' = any (v_cols) then 'f.storage_path' else 'null::text' end;
  v_e_size := format('coalesce(%s, %s, 0)',
                     case when 'size_bytes' = any (v_cols) then 'f.size_bytes' else 'null::bigint' end,
                     case when 'file_size' = any (v_cols) then 'f.file_size::bigint' else 'null::bigint' end);
  v_e_binary := case when 'is_binary' = any (v_cols) then 'coalesce(f.is_binary, false)' else 'false' end;

  -- The plan ({plan}: a temp table) of the rows {filter} selects: what each row
  -- becomes, without its content. history order: legacy version (NULLs after),
  -- created_at, id. The legacy head: the last row flagged true, else the last
  -- flagged NULL, else none (every row false: soft-deleted). It stays the head
  -- when it is the last row; otherwise a version is appended (append_kind;
  -- append_source_version: the head's new version). The hash is computed here,
  -- once; src_xmin says which version of the row was read. One sort (by path,
  -- in history order) serves every window. fsync.content_hash's and
  -- fsync.path_suspect's expressions are written out: a function with SET
  -- search_path is never inlined, and a call per row costs more than the hash.
  v_plan_sql := replace(replace(replace(replace(replace(replace($sql$
    create temp table {plan} on commit drop as
    with src as (
      select f.id, f.project_id, f.file_path, f.version, f.created_at, f.is_current_version, f.file_type,
             f.xmin::text::bigint as src_xmin,
             f.content is null as content_null,
             {hash} as old_hash, ({deleted}) as deleted, {storage} as storage_in, {size} as size_in,
             f.metadata ->> 'storage_path' as meta_path, {binary} as binary_in,
             coalesce(f.metadata ? 'fsync_tombstone', false) as marker,
             case when f.is_current_version then 0 when f.is_current_version is null then 1 else 2 end as flag_rank,
             encode(sha256(convert_to(f.content, 'UTF8')), 'hex') as text_hash, octet_length(f.content) as text_size
        from {table} f
      {filter}
    ), norm as (
      select s.*, x.storage,
             not s.deleted and x.storage is null and s.content_null as fill_empty
        from src s
        cross join lateral (
          select case when s.deleted then null
                      when s.storage_in is not null then s.storage_in
                      when s.content_null then fsync.legacy_storage_path(s.project_id, s.meta_path, s.old_hash)
                 end as storage) x
    ), ranked as (
      select n.*,
             row_number() over w as new_version,
             count(*) over p as path_versions,
             min(n.flag_rank) over p as best_rank
        from norm n
      window p as (partition by n.project_id, n.file_path),
             w as (partition by n.project_id, n.file_path order by n.version nulls last, n.created_at, n.id)
    ), headed as (
      select r.*, r.best_rank < 2 as has_head,
             max(r.new_version) filter (where r.flag_rank = r.best_rank) over (partition by r.project_id, r.file_path)
               as head_version
        from ranked r
    ), decided as (
      select h.*,
             h.new_version = h.path_versions
             and ((h.has_head and h.new_version = h.head_version) or (not h.has_head and h.deleted)) as new_head,
             case when h.deleted then null
                  when h.storage is not null then lower(h.old_hash)
                  else coalesce(h.text_hash, 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855') end
               as new_hash
        from headed h
    )
    select d.id, d.project_id, d.file_path, d.src_xmin, d.new_version::integer as new_version, d.new_head, d.new_hash,
           case when d.deleted then 0
                when d.storage is not null then greatest(d.size_in, 0)
                else coalesce(d.text_size, 0) end::bigint as new_size,
           d.storage as new_storage, d.deleted as new_deleted, d.fill_empty,
           coalesce(d.file_type, fsync.infer_file_type(d.file_path)) as new_file_type,
           case when d.new_version = d.path_versions and not d.new_head
                then case when d.has_head then 'legacy_head' else 'soft_delete' end end as append_kind,
           case when d.has_head then d.head_version::integer end as append_source_version,
           d.storage is not null and d.storage_in is null as binary_registered,
           not (octet_length(d.file_path) <= 255
                and d.file_path ~ '^[A-Za-z0-9_.@+-]+(/[A-Za-z0-9_.@+-]+){0,63}$'
                and d.file_path !~ '(^|/)\.\.?(/|$)'
                and d.file_path <> '.fs-sync' and left(d.file_path, 9) <> '.fs-sync/')
           and fsync.path_error(d.file_path) is not null as bad_path,
           case when (d.old_hash is not null and lower(d.old_hash) is distinct from d.new_hash)
                     or d.fill_empty or d.version is distinct from d.new_version or d.file_type is null
                     or (not d.marker and d.is_current_version is distinct from d.new_head)
                then jsonb_strip_nulls(jsonb_build_object(
                       'legacy_checksum',
                         case when d.old_hash is not null and lower(d.old_hash) is distinct from d.new_hash
                              then d.old_hash end,
                       'content_was_null', case when d.fill_empty then true end,
                       'binary_unresolved', case when d.fill_empty and (d.meta_path is not null or d.binary_in) then true end,
                       'legacy_version', case when d.version <> d.new_version then d.version end,
                       'version_filled', case when d.version is null then true end,
                       'legacy_is_current_version',
                         case when not d.marker and d.is_current_version <> d.new_head then d.is_current_version end,
                       'file_type_inferred', case when d.file_type is null then true end))
                else '{}'::jsonb end as notes
      from decided d
  $sql$, '{table}', v_table::text), '{hash}', v_e_hash), '{deleted}', v_e_deleted), '{storage}', v_e_storage),
     '{size}', v_e_size), '{binary}', v_e_binary);

  -- Project ids without a projects row (the app deleted the project, not its
  -- files) get one, owned by their first known author, so the FK can hold.
  v_orphans_sql := replace($sql$
    create temp table fsync_upgrade_orphans on commit drop as
    select o.project_id,
           coalesce((select u.id from auth.users u where u.id = o.first_creator),
                    (select u.id from auth.users u where u.id = o.first_modifier)) as owner_id
      from (select f.project_id,
                   (array_agg(f.created_by order by f.created_at, f.id) filter (where f.created_by is not null))[1]
                     as first_creator,
                   {modifier} as first_modifier
              from {source} f
             where f.project_id in ({ids})
               and not exists (select 1 from public.projects p where p.id = f.project_id)
             group by f.project_id) o
  $sql$, '{modifier}',
     case when 'last_modified_by' = any (v_cols)
          then '(array_agg(f.last_modified_by order by f.created_at, f.id) filter (where f.last_modified_by is not null))[1]'
          else 'null::uuid' end);

  -- Step 1, writes going on: the plan of every row as it is now.
  v_snap := (pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())::text::bigint % 4294967296)::text::xid;
  execute replace(replace(v_plan_sql, '{plan}', 'fsync_upgrade_plan'), '{filter}', '');
  create index on pg_temp.fsync_upgrade_plan (id);
  v_clock := fsync.upgrade_step('plan', v_clock);

  select jsonb_build_object(
           'rows', count(*),
           'paths', count(*) filter (where p.new_version = 1),
           'hashes_mismatched', count(*) filter (where p.notes ? 'legacy_checksum'),
           'contents_null', count(*) filter (where p.notes ? 'content_was_null'),
           'versions_renumbered', count(*) filter (where p.notes ? 'legacy_version'),
           'versions_filled', count(*) filter (where p.notes ? 'version_filled'),
           'heads_changed', count(*) filter (where p.notes ? 'legacy_is_current_version'),
           'file_types_inferred', count(*) filter (where p.notes ? 'file_type_inferred'),
           'heads_appended', count(*) filter (where p.append_kind = 'legacy_head'),
           'tombstones_appended', count(*) filter (where p.append_kind = 'soft_delete'),
           'binaries_registered', count(*) filter (where p.binary_registered),
           'binaries_unresolved', count(*) filter (where p.notes ? 'binary_unresolved'),
           'invalid_paths', count(*) filter (where p.bad_path))
    into v_stats
    from pg_temp.fsync_upgrade_plan p;
  create temp table fsync_upgrade_projects on commit drop as
  select distinct p.project_id from pg_temp.fsync_upgrade_plan p;

  execute replace(replace(v_orphans_sql, '{source}', v_table::text), '{ids}',
                  'select i.project_id from pg_temp.fsync_upgrade_projects i
                    where not exists (select 1 from public.projects p where p.id = i.project_id)');
  if v_owner_nn and exists (select 1 from pg_temp.fsync_upgrade_orphans o where o.owner_id is null) then
    raise exception '%: % project id(s) have files but no projects row and no author in auth.users',
                    v_table, (select count(*) from pg_temp.fsync_upgrade_orphans o where o.owner_id is null)
      using hint = 'public.projects.user_id is NOT NULL: create their projects rows (or delete the files) first; '
                   'select distinct project_id from the table where the project is missing lists them';
  end if;
  insert into public.projects (id, owner_id, name)
  select o.project_id, o.owner_id, 'Imported project' from pg_temp.fsync_upgrade_orphans o;
  get diagnostics v_count = row_count;
  v_projects := v_projects + v_count;
  drop table pg_temp.fsync_upgrade_orphans;
  v_clock := fsync.upgrade_step('stats and orphans', v_clock);

  if v_rebuild then
    -- Step 2, writes going on: the new table, the rows as the plan read them
    -- (a row changed since is left for step 4), its indexes and the rest.
    -- The old one's columns, defaults, comments, storage, then the canonical
    -- shape; the constraints hold per row as it is copied in.
    execute format('create table %s (like %s including defaults including identity including generated
                                     including storage including compression including comments)', v_new, v_table);
    if 'checksum' = any (v_cols) then
      execute format('alter table %s rename column checksum to content_hash', v_new);
    elsif not 'content_hash' = any (v_cols) then
      execute format('alter table %s add column content_hash text', v_new);
    end if;
    execute format($sql$
      alter table %s
        add column if not exists is_deleted boolean not null default false,
        add column if not exists size_bytes bigint not null default 0,
        add column if not exists storage_path text,
        alter column id set default gen_random_uuid(),
        alter column project_id set not null,
        alter column file_path set not null,
        alter column version set not null,
        alter column file_type set not null,
        alter column is_current_version set not null,
        alter column is_current_version set default true,
        alter column metadata set not null,
        alter column metadata set default '{}'::jsonb,
        alter column created_at set not null,
        alter column created_at set default now(),
        alter column updated_at set not null,
        alter column updated_at set default now(),
        add constraint project_files_version_positive check (version > 0),
        add constraint project_files_size_nonnegative check (size_bytes >= 0),
        add constraint project_files_content_hash_format check (content_hash ~ '^[0-9a-f]{64}$'),
        -- A tombstone has no content; a live row has a hash and exactly one of
        -- content (text) or storage_path (binary in Storage).
        add constraint project_files_row_shape check (
          case when is_deleted
               then content is null and content_hash is null and storage_path is null and size_bytes = 0
               else content_hash is not null and num_nonnulls(content, storage_path) = 1 end)
    $sql$, v_new);

    select format('insert into %s (%s) select %s from %s f join pg_temp.{plan} p on p.id = f.id and p.src_xmin = f.xmin::text::bigint',
                  v_new,
                  string_agg(quote_ident(a.attname), ', ' order by a.attnum),
                  string_agg(case a.attname
                               when 'content' then 'case when p.fill_empty then '''' else f.content end'
                               when 'content_hash' then 'p.new_hash'
                               when 'size_bytes' then 'p.new_size'
                               when 'storage_path' then 'p.new_storage'
                               when 'is_deleted' then 'p.new_deleted'
                               when 'version' then 'p.new_version'
                               when 'is_current_version' then 'p.new_head'
                               when 'file_type' then 'p.new_file_type'
                               when 'metadata' then
                                 '(coalesce(f.metadata, ''{}''::jsonb) - ''fsync_tombstone'') || case when p.notes = ''{}''::jsonb '
                                 'then ''{}''::jsonb else jsonb_build_object(''fsync_upgrade'', '
                                 'coalesce(f.metadata -> ''fsync_upgrade'', ''{}''::jsonb) || p.notes) end'
                               else 'f.' || quote_ident(a.attname) end, ', ' order by a.attnum),
                  v_table)
      into v_copy_sql
      from pg_catalog.pg_attribute a
     where a.attrelid = v_new::regclass and a.attnum > 0 and not a.attisdropped and a.attgenerated = '';
    execute replace(v_copy_sql, '{plan}', 'fsync_upgrade_plan');
    get diagnostics v_rows = row_count;
    v_clock := fsync.upgrade_step('copy', v_clock);

    -- The old table's constraints and indexes (temporary names until the swap;
    -- foreign keys and checks keep theirs: their names are per table).
    for v_rec in
      select k.conname, k.contype, pg_catalog.pg_get_constraintdef(k.oid) as def
        from pg_catalog.pg_constraint k
       where k.conrelid = v_table and k.contype in ('p', 'u', 'x', 'f', 'c')
       order by k.contype = 'f', k.conname
    loop
      if v_rec.contype in ('p', 'u', 'x') then
        v_n := v_n + 1;
        execute format('alter table %s add constraint %I %s', v_new, 'fsync_new_' || v_n, v_rec.def);
        v_renames := v_renames || array['constraint', 'fsync_new_' || v_n, v_rec.conname];
      elsif not exists (select 1 from pg_catalog.pg_constraint k2
                         where k2.conrelid = v_new::regclass and k2.conname = v_rec.conname) then
        execute format('alter table %s add constraint %I %s', v_new, v_rec.conname, v_rec.def);
      end if;
    end loop;
    for v_rec in
      select c.relname, i.indisunique, pg_catalog.pg_get_indexdef(i.indexrelid) as def
        from pg_catalog.pg_index i
        join pg_catalog.pg_class c on c.oid = i.indexrelid
       where i.indrelid = v_table
         and not exists (select 1 from pg_catalog.pg_constraint k where k.conindid = i.indexrelid and k.conrelid = v_table)
       order by c.relname
    loop
      v_n := v_n + 1;
      execute format('create %sindex %I on %s using %s', case when v_rec.indisunique then 'unique ' else '' end,
                     'fsync_new_' || v_n, v_new, substr(v_rec.def, strpos(v_rec.def, ' USING ') + 7));
      v_renames := v_renames || array['index', 'fsync_new_' || v_n, v_rec.relname];
    end loop;
    v_clock := fsync.upgrade_step('the table''s constraints and indexes', v_clock);
  else
    execute format($sql$
      update %1$s t
         set content = case when p.fill_empty then '' else t.content end,
             content_hash = p.new_hash,
             size_bytes = p.new_size,
             storage_path = p.new_storage,
             is_deleted = p.new_deleted,
             version = p.new_version,
             is_current_version = p.new_head,
             file_type = p.new_file_type,
             metadata = (coalesce(t.metadata, '{}'::jsonb) - 'fsync_tombstone')
                        || case when p.notes = '{}'::jsonb then '{}'::jsonb
                                else jsonb_build_object('fsync_upgrade',
                                       coalesce(t.metadata -> 'fsync_upgrade', '{}'::jsonb) || p.notes) end
        from pg_temp.fsync_upgrade_plan p
       where p.id = t.id
         and (p.notes <> '{}'::jsonb or p.fill_empty or t.metadata is null or t.metadata ? 'fsync_tombstone'
              or (t.content_hash, t.size_bytes, t.storage_path, t.is_deleted, t.version, t.is_current_version, t.file_type)
                 is distinct from
                 (p.new_hash, p.new_size, p.new_storage, p.new_deleted, p.new_version, p.new_head, p.new_file_type))
    $sql$, v_table);
    get diagnostics v_rows = row_count;
  end if;

  -- fs-sync's indexes. An existing unique index on (project_id, file_path,
  -- version) (velocity's UNIQUE constraint) stands for the first.
  if not exists (
    select 1 from pg_catalog.pg_index i
     where i.indrelid = v_target::regclass and i.indisunique and i.indpred is null and i.indexprs is null
       and (select array_agg(a.attname::text order by k.o)
              from unnest(i.indkey) with ordinality as k(attnum, o)
              join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum)
           = array['project_id', 'file_path', 'version']) then
    execute format('create unique index if not exists project_files_path_version_key
                      on %s (project_id, file_path, version)', v_target);
  end if;
  -- Invariant 1: one head per path.
  execute format('create unique index if not exists project_files_one_head_idx
                    on %s (project_id, file_path) where is_current_version', v_target);
  -- Live paths in byte order (collation "C", whatever the database's collation),
  -- so that fsync.put_version finds the live files under a folder ("src/…")
  -- with one range probe instead of scanning the project (path conflicts).
  execute format('create index if not exists project_files_live_path_idx
                    on %s (project_id, file_path collate "C") where is_current_version and not is_deleted', v_target);
  v_clock := fsync.upgrade_step('fs-sync''s indexes', v_clock);

  -- The appended heads: a copy of the legacy current row (with every other
  -- column of it), or a tombstone. Sources already hold their upgraded values.
  select array_agg(quote_ident(a.attname) order by a.attnum) into v_extra_cols
    from pg_catalog.pg_attribute a
   where a.attrelid = v_target::regclass and a.attnum > 0 and not a.attisdropped and a.attgenerated = ''
     and a.attname not in ('id', 'project_id', 'file_path', 'content', 'file_type', 'version', 'content_hash',
                           'created_at', 'updated_at', 'created_by', 'is_current_version', 'metadata', 'is_deleted',
                           'size_bytes', 'storage_path');
  v_append_sql := format($sql$
    insert into %1$s (id, project_id, file_path, content, file_type, version, content_hash, created_at,
                      updated_at, created_by, is_current_version, metadata, is_deleted, size_bytes, storage_path %2$s)
    select gen_random_uuid(), p.project_id, p.file_path, s.content, s.file_type, p.new_version + 1, s.content_hash,
           now(), now(), s.created_by, true,
           (s.metadata - 'fsync_upgrade')
           || jsonb_build_object('fsync_upgrade', jsonb_build_object('appended', 'legacy_head', 'copy_of', s.id)),
           s.is_deleted, s.size_bytes, s.storage_path %3$s
      from pg_temp.{plan} p
      join %1$s s on s.project_id = p.project_id and s.file_path = p.file_path and s.version = p.append_source_version
     where p.append_kind = 'legacy_head';
    insert into %1$s (id, project_id, file_path, content, file_type, version, content_hash, created_at,
                      updated_at, created_by, is_current_version, metadata, is_deleted, size_bytes, storage_path)
    select gen_random_uuid(), p.project_id, p.file_path, null, p.new_file_type, p.new_version + 1, null,
           now(), now(), null, true, '{"fsync_upgrade": {"appended": "soft_delete"}}'::jsonb, true, 0, null
      from pg_temp.{plan} p
     where p.append_kind = 'soft_delete'
  $sql$, v_target,
     coalesce(', ' || array_to_string(v_extra_cols, ', '), ''),
     coalesce(', s.' || array_to_string(v_extra_cols, ', s.'), ''));
  execute replace(v_append_sql, '{plan}', 'fsync_upgrade_plan');

  -- The running totals the write RPCs keep from here on (projects.live_files,
  -- live_bytes: limits.max_project_files/bytes), from the upgraded heads;
  -- written to projects at the end.
  v_totals_sql := format($sql$
    select f.project_id,
           count(*) filter (where f.is_current_version and not f.is_deleted) as files,
           coalesce(sum(f.size_bytes) filter (where f.is_current_version and not f.is_deleted), 0) as bytes
      from %s f
     where {filter}
     group by f.project_id
  $sql$, v_target);
  execute 'create temp table fsync_upgrade_totals on commit drop as ' || replace(v_totals_sql, '{filter}', 'true');
  v_clock := fsync.upgrade_step('appended heads and running totals', v_clock);

  if v_rebuild then
    perform fsync.copy_table_satellites(v_table, v_new::regclass);
    execute format('analyze %s', v_new);
    v_clock := fsync.upgrade_step('policies, grants, triggers, statistics', v_clock);

    -- Step 3: writes wait from here on (reads go on). What changed since step 1
    -- (rows written by transactions step 1 could not see: newer than its
    -- snapshot's xmin, and not the version the plan read; rows deleted since)
    -- is planned and copied again, path by path.
    execute format('lock table %s in exclusive mode', v_table);
    execute format($sql$
      select count(*) as total,
             coalesce(jsonb_agg(jsonb_build_object('id', f.id, 'project_id', f.project_id, 'file_path', f.file_path,
                                                   'xmin', f.xmin::text::bigint))
                        filter (where age(f.xmin) <= age(%2$L::xid)), '[]') as newer
        from %1$s f
    $sql$, v_table, v_snap) into v_scan;
    create temp table fsync_upgrade_delta on commit drop as
    select distinct c.project_id, c.file_path
      from jsonb_to_recordset(v_scan.newer) as c(id uuid, project_id uuid, file_path text, xmin bigint)
     where not exists (select 1 from pg_temp.fsync_upgrade_plan p where p.id = c.id and p.src_xmin = c.xmin);
    -- Rows the plan read that are gone (updates keep the count, inserts add to it).
    if v_scan.total <> (select count(*) from pg_temp.fsync_upgrade_plan)
                      + (select count(*) from jsonb_to_recordset(v_scan.newer) as c(id uuid)
                          where not exists (select 1 from pg_temp.fsync_upgrade_plan p where p.id = c.id)) then
      execute format($sql$
        insert into pg_temp.fsync_upgrade_delta (project_id, file_path)
        select distinct p.project_id, p.file_path from pg_temp.fsync_upgrade_plan p
         where not exists (select 1 from %s f where f.id = p.id)
      $sql$, v_table);
    end if;
    select count(*) into v_delta_paths from pg_temp.fsync_upgrade_delta;
    if v_delta_paths > 0 then
      execute format('delete from %s n using pg_temp.fsync_upgrade_delta d
                       where n.project_id = d.project_id and n.file_path = d.file_path', v_new);
      execute replace(replace(v_plan_sql, '{plan}', 'fsync_upgrade_delta_plan'), '{filter}',
                      'where (f.project_id, f.file_path) in (select d.project_id, d.file_path from pg_temp.fsync_upgrade_delta d)');
      execute replace(v_copy_sql, '{plan}', 'fsync_upgrade_delta_plan');
      get diagnostics v_count = row_count;
      v_rows := v_rows + v_count;
      execute replace(v_append_sql, '{plan}', 'fsync_upgrade_delta_plan');
      insert into pg_temp.fsync_upgrade_projects
      select distinct d.project_id from pg_temp.fsync_upgrade_delta d
       where not exists (select 1 from pg_temp.fsync_upgrade_projects i where i.project_id = d.project_id);
      delete from pg_temp.fsync_upgrade_totals t
       where t.project_id in (select d.project_id from pg_temp.fsync_upgrade_delta d);
      execute 'insert into pg_temp.fsync_upgrade_totals ' || replace(v_totals_sql, '{filter}',
              'f.project_id in (select d.project_id from pg_temp.fsync_upgrade_delta d)');
    end if;
    v_clock := fsync.upgrade_step(format('what changed meanwhile (%s paths)', v_delta_paths), v_clock);
  end if;

  -- The foreign key to projects, unvalidated here (fsync-flag-audit validates
  -- it, without blocking anyone). From here to the end projects' rows cannot
  -- be deleted; a project deleted since step 1 gets its row back, imported.
  if not exists (select 1 from pg_catalog.pg_constraint c
                  where c.conrelid = v_target::regclass and c.contype = 'f'
                    and c.confrelid = 'public.projects'::regclass) then
    execute format('alter table %s add constraint project_files_project_id_fkey
                      foreign key (project_id) references public.projects (id) on delete cascade not valid', v_target);
  end if;
  execute replace(replace(v_orphans_sql, '{source}', v_target), '{ids}',
                  'select i.project_id from pg_temp.fsync_upgrade_projects i
                    where not exists (select 1 from public.projects p where p.id = i.project_id)');
  if v_owner_nn and exists (select 1 from pg_temp.fsync_upgrade_orphans o where o.owner_id is null) then
    raise exception '%: % project id(s) lost their projects row during the upgrade and have no author in auth.users',
                    v_table, (select count(*) from pg_temp.fsync_upgrade_orphans o where o.owner_id is null);
  end if;
  insert into public.projects (id, owner_id, name)
  select o.project_id, o.owner_id, 'Imported project' from pg_temp.fsync_upgrade_orphans o;
  get diagnostics v_count = row_count;
  v_projects := v_projects + v_count;
  update public.projects p
     set live_files = t.files, live_bytes = t.bytes
    from pg_temp.fsync_upgrade_totals t
   where p.id = t.project_id and (p.live_files, p.live_bytes) is distinct from (t.files, t.bytes);

  if v_rebuild then
    -- The swap: ACCESS EXCLUSIVE from here to the end of the transaction, which
    -- moves names only. Views on the old table are recreated on the new one.
    execute format('lock table %s in access exclusive mode', v_table);
    v_views := fsync.drop_dependent_views(v_table);
    execute format('drop table %s', v_table);
    execute format('alter table %s rename to project_files', v_new);
    for v_n in 1 .. coalesce(array_length(v_renames, 1), 0) / 3 loop
      if v_renames[v_n * 3 - 2] = 'constraint' then
        execute format('alter table %I.project_files rename constraint %I to %I', p_schema,
                       v_renames[v_n * 3 - 1], v_renames[v_n * 3]);
      else
        execute format('alter index %I.%I rename to %I', p_schema, v_renames[v_n * 3 - 1], v_renames[v_n * 3]);
      end if;
    end loop;
    perform fsync.create_views(v_views);
  end if;
  v_clock := fsync.upgrade_step('foreign key, running totals, swap', v_clock);

  if (v_stats ->> 'invalid_paths')::bigint > 0 then
    raise warning '%.project_files: % row(s) have paths that break the path rules; they are kept unchanged',
                  p_schema, v_stats ->> 'invalid_paths';
  end if;
  drop table pg_temp.fsync_upgrade_plan;
  drop table pg_temp.fsync_upgrade_projects;
  drop table pg_temp.fsync_upgrade_orphans;
  drop table pg_temp.fsync_upgrade_totals;
  if to_regclass('pg_temp.fsync_upgrade_delta') is not null then
    drop table pg_temp.fsync_upgrade_delta;
  end if;
  if to_regclass('pg_temp.fsync_upgrade_delta_plan') is not null then
    drop table pg_temp.fsync_upgrade_delta_plan;
  end if;
  return v_stats || jsonb_build_object('rows', v_rows, 'projects_created', v_projects);
end
$$;
revoke all on function fsync.upgrade_legacy_project_files(text) from public;

-- ---------------------------------------------------------------------
-- Upgrade
-- ---------------------------------------------------------------------

select fsync.upgrade_legacy_project_files('public');

comment on table public.project_files is
  'Every version of every file. Written only by the fs-sync RPCs. One head (is_current_version) per path; versions 1,2,3… per path, tombstones (is_deleted) included.';
comment on column public.project_files.content_hash is 'Lowercase hex SHA-256 of the UTF-8 content (of the Storage object for binaries); NULL for tombstones.';
comment on column public.project_files.is_deleted is 'Tombstone: the path was deleted (or renamed away) at this version.';
comment on column public.project_files.size_bytes is 'Content size in bytes (octet_length for text).';
comment on column public.project_files.storage_path is 'Object path in Storage for binaries, whose content is NULL here.';

-- ---------------------------------------------------------------------
-- RLS
-- ---------------------------------------------------------------------

-- Existing policies stay (the seed's, velocity's owner-based ones): each grants
-- its owner what fs-sync's member policies grant them anyway, and every direct
-- write, whichever policy admits it, becomes a versioned write through the
-- RPCs' own access check (fsync-legacy-writes). None is replaced.
alter table public.project_files enable row level security;

create policy "members can read project files" on public.project_files
  for select to authenticated
  using (project_id in (select fsync.member_project_ids()));

-- TRUNCATE (which no trigger sees), REFERENCES and TRIGGER go, for the app's
-- table too; fsync-legacy-writes grants the direct writes back.
revoke all on public.project_files from anon, authenticated, service_role;
grant select on public.project_files to authenticated, service_role;

-- ---------------------------------------------------------------------
-- velocity's Phase-0 columns
-- ---------------------------------------------------------------------

-- The app reads last_modified_by, file_size and is_binary; the versions fs-sync
-- writes fill them as the app did (a binary is a row with a storage_path), so
-- the app reads them the same whichever path wrote them. Only on a table that
-- has them; the down scripts rely on them too. Named to fire after
-- fsync_legacy_write (triggers fire in name order), which must see a client's
-- row as the client wrote it and drops it.
do $$
declare
  v_sets text;
begin
  select string_agg(x.stmt, E'\n    ' order by x.o) into v_sets
    from (values (1, 'last_modified_by', 'new.last_modified_by := new.created_by;'),
                 (2, 'file_size', 'new.file_size := case when new.is_deleted or new.size_bytes > 2147483647 then null else new.size_bytes::integer end;'),
                 (3, 'is_binary', 'new.is_binary := new.storage_path is not null;')) as x(o, col, stmt)
   where exists (select 1 from pg_catalog.pg_attribute a
                  where a.attrelid = 'public.project_files'::regclass and a.attname = x.col and not a.attisdropped);
  if v_sets is null then
    return;
  end if;
  execute format($fn$
  create function fsync.phase0_columns()
  returns trigger
  language plpgsql
  set search_path = ''
  as $body$
  begin
    %s
    return new;
  end
  $body$
  $fn$, v_sets);
  revoke all on function fsync.phase0_columns() from public;
  create trigger fsync_phase0_columns
    before insert on public.project_files
    for each row execute function fsync.phase0_columns();
end
$$;

-- ---------------------------------------------------------------------
-- Views
-- ---------------------------------------------------------------------

-- Live heads. velocity's Phase-0 view (select * … where is_current_version) is
-- replaced by this one, which also leaves out tombstones; it keeps every column
-- the Phase-0 view had, so the app's .from('project_files_current') selects
-- read what they read. The down script puts the Phase-0 view back.
drop view if exists public.project_files_current;
do $$
declare
  v_extra text;
begin
  select string_agg(format('f.%I', c ->> 'name'), ', ' order by o) into v_extra
    from fsync.adopted a, jsonb_array_elements(a.state -> 'columns') with ordinality as e(c, o)
   where a.kind = 'relation' and a.name = 'public.project_files_current'
     and c ->> 'name' not in ('id', 'project_id', 'file_path', 'content', 'content_hash', 'version', 'file_type',
                              'size_bytes', 'storage_path', 'created_by', 'created_at', 'updated_at', 'metadata')
     and exists (select 1 from pg_catalog.pg_attribute t
                  where t.attrelid = 'public.project_files'::regclass and t.attname = c ->> 'name' and not t.attisdropped);
  execute format($sql$
    create view public.project_files_current
    with (security_invoker = true)
    as
    select f.id, f.project_id, f.file_path, f.content, f.content_hash, f.version, f.file_type,
           f.size_bytes, f.storage_path, f.created_by, f.created_at, f.updated_at, f.metadata%s
      from public.project_files f
     where f.is_current_version and not f.is_deleted
  $sql$, coalesce(', ' || v_extra, ''));
end
$$;
comment on view public.project_files_current is 'Live heads only (tombstones excluded). security_invoker: the caller''s RLS applies.';

revoke all on public.project_files_current from anon, authenticated, service_role;
grant select on public.project_files_current to authenticated, service_role;
