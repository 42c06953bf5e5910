-- =====================================================================
-- fsync-legacy-upgrade: turns the seed's project_files (12 columns,
-- `checksum`, nullable file_type and version, heads maybe inconsistent) into
-- the canonical table, losing nothing:
--
--   * checksum is renamed to content_hash and recomputed as
--     sha256(UTF-8 content); a legacy checksum that differs is kept in
--     metadata.fsync_upgrade.legacy_checksum.
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
--         (metadata.fsync_upgrade {appended: "soft_delete"}).
--     Appended rows get a new id and created_at = now(); a copy keeps the
--     content, type, storage_path, author and metadata of its source row.
--     Exactly one head per path, always the latest version. A legacy flag that
--     differs from the result is kept in
--     metadata.fsync_upgrade.legacy_is_current_version.
--   * file_type NULL is inferred from the path (fsync.infer_file_type) and
--     flagged file_type_inferred; content NULL becomes '' (flag content_was_null).
--   * new columns: is_deleted (tombstones), size_bytes, storage_path (binaries
--     in Storage, content NULL).
--   * project ids without a projects row get one ("Imported project", owner =
--     the earliest non-null created_by when that is an auth.users id), so the
--     FK holds. Each project's live_files/live_bytes are set from its live heads
--     (the write RPCs keep them from then on; a project already over
--     limits.max_project_* can shrink but not grow).
--   * legacy paths that break the path rules are kept as they are and reported
--     with a WARNING (the rules refuse, they never rewrite); the RPCs will refuse
--     to write them until they are renamed by hand.
--   * existing policies on project_files are dropped: clients write only
--     through the RPCs; members get a read policy. (fsync-legacy-writes lets
--     writers run direct INSERT/UPDATE/DELETE again, each turned into an RPC
--     write by a trigger.)
--
-- The work is done by fsync.upgrade_legacy_project_files(schema) so that
-- tests/sql/11-legacy-upgrade.sql can run the very same code on a fixture.
-- =====================================================================

-- ---------------------------------------------------------------------
-- Helpers
-- ---------------------------------------------------------------------

-- Upgrades <p_schema>.project_files in place and returns counts of what it did.
-- Idempotent: on an already-upgraded table (versions 1..n, the head the last)
-- history order is version order, nothing is renumbered or appended, and it
-- changes nothing.
create function fsync.upgrade_legacy_project_files(p_schema text default 'public')
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_table regclass := to_regclass(format('%I.project_files', p_schema));
  v_has_checksum boolean;
  v_has_hash boolean;
  v_projects bigint;
  v_invalid bigint;
  v_stats jsonb;
  v_appends jsonb;
begin
  if v_table is null then
    raise exception 'table %.project_files does not exist', p_schema;
  end if;
  execute format('lock table %s in access exclusive mode', v_table);

  select exists (select 1 from pg_catalog.pg_attribute a
                  where a.attrelid = v_table and a.attname = 'checksum' and not a.attisdropped),
         exists (select 1 from pg_catalog.pg_attribute a
                  where a.attrelid = v_table and a.attname = 'content_hash' and not a.attisdropped)
    into v_has_checksum, v_has_hash;
  if v_has_checksum and v_has_hash then
    raise exception '%: both checksum and content_hash exist; merge them by hand first', v_table;
  elsif v_has_checksum then
    execute format('alter table %s rename column checksum to content_hash', v_table);
  elsif not v_has_hash then
    execute format('alter table %s add column content_hash text', v_table);
  end if;

  execute format('alter table %s
                    add column if not exists is_deleted boolean not null default false,
                    add column if not exists size_bytes bigint not null default 0,
                    add column if not exists storage_path text', v_table);

  -- history order: legacy version (NULLs after), created_at, id. The legacy head
  -- (head_id): the last row flagged true, else the last flagged NULL, else none
  -- (every row false: soft-deleted). It stays the head when it is the last row;
  -- otherwise a version is appended (second statement below).
  execute format($sql$
    with ranked as (
      select f.*,
             row_number() over w as new_version,
             count(*) over (partition by f.project_id, f.file_path) as path_versions,
             first_value(f.id) over h as head_id,
             first_value(f.is_current_version is not false) over h as has_head
        from %1$s f
      window w as (partition by f.project_id, f.file_path order by f.version nulls last, f.created_at, f.id),
             h as (partition by f.project_id, f.file_path
                   order by case when f.is_current_version then 0 when f.is_current_version is null then 1 else 2 end,
                            f.version desc nulls first, f.created_at desc, f.id desc)
    ), computed as (
      select r.id, r.project_id, r.file_path, r.new_version, r.path_versions,
             r.new_version = r.path_versions and r.has_head and r.head_id = r.id as new_head,
             case when r.new_version = r.path_versions and not (r.has_head and r.head_id = r.id)
                  then case when r.has_head then 'legacy_head' else 'soft_delete' end end as append_kind,
             case when r.has_head then r.head_id end as append_source,
             nc.content as new_content, x.hash as new_hash, x.size as new_size,
             coalesce(r.file_type, fsync.infer_file_type(r.file_path)) as new_file_type,
             jsonb_strip_nulls(jsonb_build_object(
               'legacy_checksum',
                 case when r.content_hash is not null and lower(r.content_hash) is distinct from x.hash
                      then r.content_hash end,
               'content_was_null', case when r.content is null and nc.content is not null then true end,
               'legacy_version', case when r.version <> r.new_version then r.version end,
               'version_filled', case when r.version is null then true end,
               'legacy_is_current_version',
                 case when r.is_current_version
                           <> (r.new_version = r.path_versions and r.has_head and r.head_id = r.id)
                      then r.is_current_version end,
               'file_type_inferred', case when r.file_type is null then true end)) as notes
        from ranked r
        cross join lateral (
          select case when r.is_deleted or r.storage_path is not null then r.content
                      else coalesce(r.content, '') end as content) nc
        cross join lateral (
          select case when r.is_deleted then null
                      when nc.content is null then r.content_hash
                      else fsync.content_hash(nc.content) end as hash,
                 case when r.is_deleted then 0
                      when nc.content is null then r.size_bytes
                      else octet_length(nc.content) end as size) x
    ), upd as (
      update %1$s t
         set content = c.new_content,
             content_hash = c.new_hash,
             size_bytes = c.new_size,
             version = c.new_version,
             is_current_version = c.new_head,
             file_type = c.new_file_type,
             metadata = coalesce(t.metadata, '{}'::jsonb)
                        || case when c.notes = '{}'::jsonb then '{}'::jsonb
                                else jsonb_build_object('fsync_upgrade', c.notes) end
        from computed c
       where c.id = t.id
      returning c.project_id, c.file_path, c.notes, c.append_kind, c.append_source, c.path_versions, c.new_file_type
    )
    select jsonb_build_object(
             'rows', count(*),
             'paths', count(distinct (u.project_id, u.file_path)),
             'hashes_mismatched', count(*) filter (where u.notes ? 'legacy_checksum'),
             'contents_null', count(*) filter (where u.notes ? 'content_was_null'),
             'versions_renumbered', count(*) filter (where u.notes ? 'legacy_version'),
             'versions_filled', count(*) filter (where u.notes ? 'version_filled'),
             'heads_changed', count(*) filter (where u.notes ? 'legacy_is_current_version'),
             'file_types_inferred', count(*) filter (where u.notes ? 'file_type_inferred'),
             'heads_appended', count(*) filter (where u.append_kind = 'legacy_head'),
             'tombstones_appended', count(*) filter (where u.append_kind = 'soft_delete')),
           coalesce(jsonb_agg(jsonb_build_object(
                      'project_id', u.project_id, 'file_path', u.file_path, 'kind', u.append_kind,
                      'source', u.append_source, 'version', u.path_versions + 1, 'file_type', u.new_file_type))
                    filter (where u.append_kind is not null), '[]'::jsonb)
    from upd u
  $sql$, v_table) into v_stats, v_appends;

  -- The appended heads: a copy of the legacy current row, or a tombstone. The
  -- source rows already hold their upgraded content_hash and size_bytes.
  execute format($sql$
    insert into %1$s (id, project_id, file_path, content, file_type, version, content_hash, created_at,
                      updated_at, created_by, is_current_version, metadata, is_deleted, size_bytes, storage_path)
    select gen_random_uuid(), a.project_id, a.file_path,
           s.content, coalesce(s.file_type, a.file_type), a.version, s.content_hash, now(),
           now(), s.created_by, true,
           case when a.kind = 'legacy_head'
                then (coalesce(s.metadata, '{}'::jsonb) - 'fsync_upgrade')
                     || jsonb_build_object('fsync_upgrade', jsonb_build_object('appended', a.kind, 'copy_of', a.source))
                else jsonb_build_object('fsync_upgrade', jsonb_build_object('appended', a.kind)) end,
           coalesce(s.is_deleted, a.kind = 'soft_delete'),
           coalesce(s.size_bytes, 0), s.storage_path
      from jsonb_to_recordset($1) as a(project_id uuid, file_path text, kind text, source uuid, version integer,
                                       file_type text)
      left join %1$s s on a.kind = 'legacy_head' and s.id = a.source
  $sql$, v_table) using v_appends;

  execute format($sql$
    insert into public.projects (id, owner_id, name)
    select o.project_id, (select u.id from auth.users u where u.id = o.first_creator), 'Imported project'
      from (select f.project_id, (array_agg(f.created_by order by f.created_at, f.id)
                                         filter (where f.created_by is not null))[1] as first_creator
              from %s f
             where not exists (select 1 from public.projects p where p.id = f.project_id)
             group by f.project_id) o
  $sql$, v_table);
  get diagnostics v_projects = row_count;

  -- The running totals the write RPCs keep from here on (projects.live_files,
  -- live_bytes: limits.max_project_files/bytes), from the upgraded heads.
  execute format($sql$
    update public.projects p
       set live_files = s.files, live_bytes = s.bytes
      from (select f.project_id,
                   count(*) filter (where f.is_current_version and not f.is_deleted) as files,
                   coalesce(sum(f.size_bytes) filter (where f.is_current_version and not f.is_deleted), 0) as bytes
              from %s f
             group by f.project_id) s
     where p.id = s.project_id
  $sql$, v_table);

  execute format($sql$
    alter table %s
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
      alter column updated_at set default now()
  $sql$, v_table);

  if not exists (select 1 from pg_catalog.pg_constraint c
                  where c.conrelid = v_table and c.contype = 'f'
                    and c.confrelid = 'public.projects'::regclass) then
    execute format('alter table %s add constraint project_files_project_id_fkey
                      foreign key (project_id) references public.projects (id) on delete cascade', v_table);
  end if;
  if not exists (select 1 from pg_catalog.pg_constraint c
                  where c.conrelid = v_table and c.conname = 'project_files_version_positive') then
    execute format('alter table %s add constraint project_files_version_positive check (version > 0)', v_table);
  end if;
  if not exists (select 1 from pg_catalog.pg_constraint c
                  where c.conrelid = v_table and c.conname = 'project_files_size_nonnegative') then
    execute format('alter table %s add constraint project_files_size_nonnegative check (size_bytes >= 0)', v_table);
  end if;
  if not exists (select 1 from pg_catalog.pg_constraint c
                  where c.conrelid = v_table and c.conname = 'project_files_content_hash_format') then
    execute format($sql$alter table %s add constraint project_files_content_hash_format
                      check (content_hash ~ '^[0-9a-f]{64}$')$sql$, v_table);
  end if;
  -- A tombstone has no content; a live row has a hash and exactly one of
  -- content (text) or storage_path (binary in Storage).
  if not exists (select 1 from pg_catalog.pg_constraint c
                  where c.conrelid = v_table and c.conname = 'project_files_row_shape') then
    execute format($sql$alter table %s add constraint project_files_row_shape check (
                      case when is_deleted
                           then content is null and content_hash is null and storage_path is null and size_bytes = 0
                           else content_hash is not null and num_nonnulls(content, storage_path) = 1 end)$sql$,
                   v_table);
  end if;

  execute format('create unique index if not exists project_files_path_version_key
                    on %s (project_id, file_path, version)', v_table);
  -- Invariant 1: one head per path.
  execute format('create unique index if not exists project_files_one_head_idx
                    on %s (project_id, file_path) where is_current_version', v_table);
  -- Live paths in byte order (collation "C", whatever the database's collation),
  -- so that fsync.put_version finds the live files under a folder ("src/…")
  -- with one range probe instead of scanning the project (path conflicts).
  execute format('create index if not exists project_files_live_path_idx
                    on %s (project_id, file_path collate "C") where is_current_version and not is_deleted', v_table);

  execute format('select count(*) from %s f where fsync.path_error(f.file_path) is not null', v_table)
    into v_invalid;
  if v_invalid > 0 then
    raise warning '%: % row(s) have paths that break the path rules; they are kept unchanged', v_table, v_invalid;
  end if;

  return v_stats || jsonb_build_object('projects_created', v_projects, 'invalid_paths', v_invalid);
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

do $$
declare
  v_policy record;
begin
  for v_policy in
    select p.policyname from pg_catalog.pg_policies p
     where p.schemaname = 'public' and p.tablename = 'project_files'
  loop
    execute format('drop policy %I on public.project_files', v_policy.policyname);
  end loop;
end
$$;

alter table public.project_files enable row level security;

create policy "members can read project files" on public.project_files
  for select to authenticated
  using (project_id in (select fsync.member_project_ids()));

revoke all on public.project_files from anon, authenticated, service_role;
grant select on public.project_files to authenticated, service_role;

-- ---------------------------------------------------------------------
-- Views
-- ---------------------------------------------------------------------

create view public.project_files_current
with (security_invoker = true)
as
select f.id, f.project_id, f.file_path, f.content, f.content_hash, f.version, f.file_type,
       f.size_bytes, f.storage_path, f.created_by, f.created_at, f.updated_at, f.metadata
  from public.project_files f
 where f.is_current_version and not f.is_deleted;
comment on view public.project_files_current is 'Live heads only (tombstones excluded). security_invoker: the caller''s RLS applies.';

revoke all on public.project_files_current from anon, authenticated, service_role;
grant select on public.project_files_current to authenticated, service_role;
