-- Reverses 20251126091200_fsync-legacy-writes.sql: back to RPC-only writes, the
-- unconditional broadcast and bulk, and no project:<id>:edits topic.
drop policy if exists "fsync: writers broadcast edits" on realtime.messages;
alter policy "fsync: members receive project events" on realtime.messages
  using (
    extension in ('broadcast', 'presence')
    and topic = (select realtime.topic())
    and (select realtime.topic()) like 'project:%'
    and (select realtime.topic()) in (select 'project:' || m::text from fsync.member_project_ids() as m)
  );

drop function if exists fsync.bulk_upsert_project_files(uuid, jsonb);
alter function fsync.apply_bulk(uuid, jsonb) rename to bulk_upsert_project_files;
grant execute on function fsync.bulk_upsert_project_files(uuid, jsonb) to authenticated, service_role;

create or replace function fsync.server_broadcasts(p_project_id uuid)
returns boolean
language plpgsql
stable
set search_path = ''
as $$
begin
  return true;
end
$$;

comment on table public.project_files is
  'Every version of every file. Written only by the fs-sync RPCs. One head (is_current_version) per path; versions 1,2,3… per path, tombstones (is_deleted) included.';
revoke insert, update, delete on public.project_files from authenticated, service_role;
drop policy if exists "writers delete project files" on public.project_files;
drop policy if exists "writers update project files" on public.project_files;
drop policy if exists "writers insert project files" on public.project_files;
drop trigger if exists fsync_legacy_lock on public.project_files;
drop trigger if exists fsync_legacy_write on public.project_files;
drop function if exists fsync.legacy_lock_projects();
drop function if exists fsync.legacy_write();
drop function if exists fsync.legacy_put(public.project_files, text, text);
