-- Reverses 20251126090400_fsync-legacy-upgrade.sql.
--
-- On a table fs-sync found (fsync.adopted: velocity's Phase-0 table, or the
-- seed's) every row stays, in the representation the legacy app reads:
--   * a tombstone becomes the app's soft delete: is_current_version = false, so
--     the path has no current row; the row keeps its place in the history and
--     is marked metadata.fsync_tombstone, by which a later up makes it the
--     tombstone again instead of appending another;
--   * the live heads stay the current rows; versions, content_hash and
--     created_by stay as fs-sync wrote them;
--   * a binary fs-sync registered is the app's binary: is_binary, file_size
--     and metadata.storage_path (the Phase-0 columns, where the table has them);
--   * content the upgrade turned from NULL into '' is NULL again, with the
--     content_hash it had (a legacy-only binary's, NULL or not);
--   * fs-sync's columns, constraints and indexes go where the app did not
--     have them; the app's columns get back their nullability and defaults,
--     its view, grants and comment come back as recorded. Its policies were
--     never removed.
-- Projects the upgrade created for files without one ("Imported project")
-- stay: they hold those files, and the app shows them to their owner.
-- On a table fs-sync created (fresh database) it goes back to the seed's
-- 12-column shape, readable by nobody but its owner, for the next down script
-- to drop.
do $$
declare
  v_state jsonb := (select a.state from fsync.adopted a where a.kind = 'relation' and a.name = 'public.project_files');
  v_view jsonb := (select a.state from fsync.adopted a
                    where a.kind = 'relation' and a.name = 'public.project_files_current');
  v_cols text[];
  v_col jsonb;
  v_name text;
begin
  drop view if exists public.project_files_current;
  drop policy if exists "members can read project files" on public.project_files;
  drop trigger if exists fsync_phase0_columns on public.project_files;
  drop function if exists fsync.phase0_columns();

  if v_state is null then
    revoke all on public.project_files from anon, authenticated, service_role;
    drop index if exists public.project_files_live_path_idx;
    drop index if exists public.project_files_one_head_idx;
    drop index if exists public.project_files_path_version_key;
    alter table public.project_files
      drop constraint if exists project_files_row_shape,
      drop constraint if exists project_files_content_hash_format,
      drop constraint if exists project_files_size_nonnegative,
      drop constraint if exists project_files_version_positive,
      drop constraint if exists project_files_project_id_fkey;
    alter table public.project_files
      drop column if exists is_deleted,
      drop column if exists size_bytes,
      drop column if exists storage_path,
      alter column version drop not null,
      alter column file_type drop not null,
      alter column is_current_version drop not null,
      alter column metadata drop not null;
    alter table public.project_files rename column content_hash to checksum;
    alter table public.project_files disable row level security;
    return;
  end if;

  select array_agg(c ->> 'name') into v_cols from jsonb_array_elements(v_state -> 'columns') c;

  -- Rows first, then the shape (the ALTERs below hold ACCESS EXCLUSIVE to the
  -- end of the transaction; the updates touch few rows, the scan is shared).
  update public.project_files f
     set is_current_version = false,
         metadata = f.metadata || '{"fsync_tombstone": true}'::jsonb
   where f.is_deleted and (f.is_current_version or not f.metadata ? 'fsync_tombstone');
  -- (found now, written once fs-sync's row_shape constraint is gone)
  create temp table fsync_down_null_content on commit drop as
  select f.id from public.project_files f
   where f.content = '' and not f.is_deleted and f.metadata -> 'fsync_upgrade' ? 'content_was_null';
  update public.project_files f
     set metadata = f.metadata || jsonb_build_object('storage_path', f.storage_path)
   where f.storage_path is not null and f.metadata ->> 'storage_path' is distinct from f.storage_path;
  if 'is_binary' = any (v_cols) then
    update public.project_files f set is_binary = true where f.storage_path is not null and f.is_binary is not true;
  end if;
  if 'file_size' = any (v_cols) then
    update public.project_files f set file_size = f.size_bytes
     where f.storage_path is not null and f.file_size is null and f.size_bytes <= 2147483647;
  end if;

  foreach v_name in array array['project_files_live_path_idx', 'project_files_one_head_idx', 'project_files_path_version_key'] loop
    if not (v_state -> 'indexes') ? ('public.' || v_name) then
      execute format('drop index if exists public.%I', v_name);
    end if;
  end loop;
  for v_name in
    select k.conname from pg_catalog.pg_constraint k
     where k.conrelid = 'public.project_files'::regclass
       and k.conname in ('project_files_row_shape', 'project_files_content_hash_format', 'project_files_size_nonnegative',
                         'project_files_version_positive', 'project_files_project_id_fkey')
       and not exists (select 1 from jsonb_array_elements(v_state -> 'constraints') r where r ->> 'name' = k.conname)
  loop
    execute format('alter table public.project_files drop constraint %I', v_name);
  end loop;
  update public.project_files f
     set content = null, content_hash = f.metadata -> 'fsync_upgrade' ->> 'legacy_checksum'
   where f.id in (select n.id from pg_temp.fsync_down_null_content n);
  foreach v_name in array array['is_deleted', 'size_bytes', 'storage_path'] loop
    if not v_name = any (v_cols) then
      execute format('alter table public.project_files drop column if exists %I', v_name);
    end if;
  end loop;
  if 'checksum' = any (v_cols) and not 'content_hash' = any (v_cols) then
    alter table public.project_files rename column content_hash to checksum;
  end if;
  for v_col in select * from jsonb_array_elements(v_state -> 'columns') loop
    if not (v_col ->> 'not_null')::boolean then
      execute format('alter table public.project_files alter column %I drop not null', v_col ->> 'name');
    end if;
    if v_col ->> 'default' is null then
      execute format('alter table public.project_files alter column %I drop default', v_col ->> 'name');
    else
      execute format('alter table public.project_files alter column %I set default %s', v_col ->> 'name', v_col ->> 'default');
    end if;
  end loop;
  if not (v_state ->> 'rls')::boolean then
    alter table public.project_files disable row level security;
  end if;
  perform fsync.restore_grants('public.project_files', v_state);
  execute format('comment on table public.project_files is %L', v_state ->> 'comment');

  if v_view is not null then
    perform fsync.create_views(jsonb_build_array(jsonb_build_object(
      'schema', 'public', 'name', 'project_files_current', 'definition', v_view ->> 'definition',
      'options', v_view -> 'options', 'owner', v_view ->> 'owner', 'acl', v_view -> 'acl',
      'comment', v_view ->> 'comment')));
  end if;
end
$$;

drop function if exists fsync.upgrade_legacy_project_files(text);
drop function if exists fsync.upgrade_step(text, timestamptz);
drop function if exists fsync.create_views(jsonb);
drop function if exists fsync.drop_dependent_views(regclass);
drop function if exists fsync.copy_table_satellites(regclass, regclass);
drop function if exists fsync.check_rebuildable(regclass);
drop function if exists fsync.path_suspect(text);
drop function if exists fsync.legacy_storage_path(uuid, text, text);
