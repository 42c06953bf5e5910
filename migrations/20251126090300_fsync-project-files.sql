-- =====================================================================
-- fsync-project-files: the seed's project_files table, exactly as the seed
-- app created it (12 columns, `checksum`, nullable file_type and version).
--
-- On a database seeded by the app this is a no-op. On a fresh database it
-- creates the same legacy shape, so that fresh and seeded databases take the
-- one upgrade path in the next migration (fsync-legacy-upgrade), which turns it
-- into the canonical table. Do not use the table between the two migrations.
-- =====================================================================

create table if not exists public.project_files (
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
