-- Reverses the schema changes of 20251126090400_fsync-legacy-upgrade.sql,
-- back to the seed's 12-column shape. Data changes are NOT undone (renumbered
-- versions, heads, appended head copies and tombstones, filled types,
-- metadata.fsync_upgrade notes, "Imported project" rows); dropping is_deleted
-- turns tombstones into rows with NULL content. For development databases.
drop view if exists public.project_files_current;
drop policy if exists "members can read project files" on public.project_files;
alter table public.project_files disable row level security;
grant all on public.project_files to anon, authenticated, service_role;

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

drop function if exists fsync.upgrade_legacy_project_files(text);
