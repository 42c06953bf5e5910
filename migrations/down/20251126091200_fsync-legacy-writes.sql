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

create or replace function fsync.append_event(p_project_id uuid, p_type text, p_payload jsonb, p_content text, p_actor uuid)
returns bigint
language plpgsql
set search_path = ''
as $$
declare
  v_seq bigint;
  v_at timestamptz := clock_timestamp();  -- taken under the project lock: increases with seq
  v_payload jsonb;
begin
  update public.projects p
     set last_seq = p.last_seq + 1, updated_at = v_at
   where p.id = p_project_id
  returning p.last_seq into v_seq;
  if v_seq is null then
    perform fsync.raise_error('PT404', format('project %s not found', p_project_id),
                              jsonb_build_object('project_id', p_project_id));
  end if;

  v_payload := p_payload || jsonb_build_object(
    'v', 1,
    'seq', v_seq,
    'type', p_type,
    'project_id', p_project_id,
    'timestamp', to_char(v_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    'actor', p_actor);

  insert into public.project_events (project_id, seq, event_type, payload, actor, created_at)
  values (p_project_id, v_seq, p_type, v_payload, p_actor, v_at);

  perform realtime.send(
    case when p_content is null then v_payload else v_payload || jsonb_build_object('content', p_content) end,
    p_type,
    'project:' || p_project_id::text,
    true);
  return v_seq;
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
