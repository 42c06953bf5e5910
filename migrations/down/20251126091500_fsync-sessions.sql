-- Reverses 20251126091500_fsync-sessions.sql: the container policies and
-- fsync.authorize as fsync-storage, fsync-realtime-auth and fsync-projects
-- wrote them (a container token is accepted until its exp again), and no
-- sessions. The sessions are fs-sync's own and short-lived: nothing of the
-- app's is dropped.
alter policy "fsync: containers receive their project's events" on realtime.messages
  using (
    extension in ('broadcast', 'presence')
    and topic = (select realtime.topic())
    and (select realtime.topic()) = 'project:' || ((select auth.jwt()) ->> 'project_id')
    and 'fsync:read' = any (string_to_array(coalesce((select auth.jwt()) ->> 'scope', ''), ' '))
  );

alter policy "fsync: containers read their project's assets" on storage.objects
  using (
    bucket_id = 'project-assets'
    and (storage.foldername(name))[1] = ((select auth.jwt()) ->> 'project_id')
    and 'fsync:read' = any (string_to_array(coalesce((select auth.jwt()) ->> 'scope', ''), ' '))
  );

create or replace function fsync.authorize(p_project_id uuid, p_write boolean)
returns fsync.caller
language plpgsql
stable
set search_path = ''
as $$
declare
  v_caller fsync.caller := fsync.current_caller();
  v_role text;
begin
  if v_caller.kind = 'user' then
    if v_caller.user_id is null then
      perform fsync.raise_error('42501', 'access denied: the token has no user id');
    end if;
    v_role := fsync.project_role(p_project_id, v_caller.user_id);
    if v_role is null then
      perform fsync.raise_error('42501', format('access denied: you are not a member of project %s', p_project_id));
    end if;
    if p_write and v_role = 'viewer' then
      perform fsync.raise_error('42501', format('access denied: viewers cannot change files of project %s', p_project_id));
    end if;
    return v_caller;
  elsif v_caller.kind = 'service' then
    null;
  elsif v_caller.kind = 'container' then
    if p_write then
      perform fsync.raise_error('42501', 'access denied: container tokens are read-only');
    end if;
    if v_caller.project_id is distinct from p_project_id then
      perform fsync.raise_error('42501', format('access denied: this container token is not for project %s', p_project_id));
    end if;
    if not ('fsync:read' = any (v_caller.scopes)) then
      perform fsync.raise_error('42501', 'access denied: the container token lacks the fsync:read scope');
    end if;
  else
    perform fsync.raise_error('42501', 'access denied: sign in to access projects');
  end if;
  if not exists (select 1 from public.projects p where p.id = p_project_id) then
    perform fsync.raise_error('PT404', format('project %s not found', p_project_id),
                              jsonb_build_object('project_id', p_project_id));
  end if;
  return v_caller;
end
$$;
revoke all on function fsync.authorize(uuid, boolean) from public;

drop function if exists public.record_session_snapshot(json);
drop function if exists fsync.record_session_snapshot(text, text, bigint);
drop function if exists public.check_container_session(json);
drop function if exists fsync.check_container_session(text, uuid, boolean);
drop function if exists public.end_container_session(json);
drop function if exists fsync.end_container_session(text, text);
drop function if exists public.open_container_session(json);
drop function if exists fsync.open_container_session(uuid, text, bigint, text, bigint);
drop function if exists fsync.session_json(fsync.sessions);
drop function if exists fsync.require_service(text);
drop function if exists fsync.require_live_session(uuid);
drop function if exists fsync.session_live(text, uuid);
drop function if exists fsync.session_refusal(text, uuid);
drop function if exists fsync.claimed_session_id();
drop table if exists fsync.sessions;
