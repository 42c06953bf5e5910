-- Reverses 20251126091800_fsync-planner-stats.sql: bulk_upsert_project_files
-- as fsync-rpcs wrote it, and project_files' statistics autovacuum's alone.
-- Nothing of the app's is dropped.
create or replace function public.bulk_upsert_project_files(json)
returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
declare
  a jsonb := fsync.rpc_args('bulk_upsert_project_files', $1,
                            array['project_uuid', 'files'],
                            array['project_uuid', 'files']);
begin
  return fsync.bulk_upsert_project_files(fsync.arg_uuid(a, 'project_uuid'), fsync.arg_array(a, 'files'));
end
$$;
drop function if exists fsync.refresh_file_statistics();
