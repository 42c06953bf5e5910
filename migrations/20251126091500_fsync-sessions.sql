-- =====================================================================
-- fsync-sessions: container sessions with a lifecycle (docs/contracts.md
-- "Container token and env" › "Sessions").
--
-- A container token (role fsync_container, claims session_id/project_id/scope)
-- is accepted only while its session is live: its fsync.sessions row exists
-- for the token's project, has not been ended and has not reached expires_at
-- (created_at + the maximum age the edge asked for). Deleting the project
-- deletes its sessions (on delete cascade). Three places check it:
--   * fsync.authorize, which every read RPC starts with (one primary-key
--     lookup after the project lookup it already made);
--   * the container policy on storage.objects (project-assets reads);
--   * the container policy on realtime.messages, which Realtime evaluates at
--     a channel join and at an access-token refresh only: a joined channel
--     keeps receiving until one of those (docs/contracts.md says how long).
-- In both policies the check is an initplan ((select …) around a function of
-- the JWT claims only): one lookup per statement, not per row.
--
-- The edge records sessions with the service role through the RPCs below
-- (SECURITY DEFINER: no API role has a privilege on fsync tables):
--   open_container_session {project_uuid, session_id, max_age_seconds?,
--                           snapshot_id?, as_of_seq?}
--   end_container_session {session_id, reason?}
--   check_container_session {session_id, project_uuid?, refresh?}
--     → {live, reason, session_id, project_id, expires_at, hydration_enabled, …}
--   record_session_snapshot {session_id, snapshot_id, as_of_seq}
-- A refused container gets 42501 with DETAIL {"reason": "session_unknown" |
-- "session_ended" | "session_expired", "session_id"} and a message naming it.
-- =====================================================================

-- ---------------------------------------------------------------------
-- Table
-- ---------------------------------------------------------------------

create table fsync.sessions (
  session_id text primary key,
  project_id uuid not null references public.projects (id) on delete cascade,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  ended_at timestamptz,
  ended_reason text,
  snapshot_id text,
  as_of_seq bigint,
  last_refresh_at timestamptz,
  constraint sessions_session_id_format check (session_id ~ '^[A-Za-z0-9._:-]{1,128}$'),
  constraint sessions_expiry_after_creation check (expires_at > created_at),
  constraint sessions_ended_reason check ((ended_at is null) = (ended_reason is null))
);
comment on table fsync.sessions is
  'One row per preview container (POST /sessions on the edge). Its container token is accepted while the row is live: not ended, expires_at in the future.';
comment on column fsync.sessions.expires_at is 'created_at + the maximum age (the edge''s SESSION_MAX_AGE, default 12 h): no token outlives it.';
comment on column fsync.sessions.snapshot_id is 'The snapshot the container last hydrated from (retention keeps it while the session is live).';
-- The cascade from public.projects, and retention's per-project scans.
create index sessions_project_id_idx on fsync.sessions (project_id);
alter table fsync.sessions enable row level security;
revoke all on fsync.sessions from public, anon, authenticated, service_role;

-- ---------------------------------------------------------------------
-- Helpers
-- ---------------------------------------------------------------------

-- The session_id claim of the request's JWT (null when there is none).
create function fsync.claimed_session_id()
returns text
language sql
stable
set search_path = ''
as $$
  select nullif(coalesce(nullif(current_setting('request.jwt.claims', true), ''), '{}')::jsonb ->> 'session_id', '')
$$;
revoke all on function fsync.claimed_session_id() from public;

-- Why session p_session_id cannot be used for project p_project_id, or null
-- when it is live: {reason, session_id, project_id?, expires_at?, ended_at?,
-- ended_reason?}, reason one of session_unknown (no row for that project: never
-- opened, or its project was deleted), session_ended, session_expired. Runs
-- inside definer functions only.
create function fsync.session_refusal(p_session_id text, p_project_id uuid)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select case
           when s.session_id is null then
             jsonb_build_object('reason', 'session_unknown', 'session_id', session_refusal.p_session_id)
           when s.ended_at is not null then
             jsonb_build_object('reason', 'session_ended', 'session_id', s.session_id, 'project_id', s.project_id,
                                'ended_at', s.ended_at, 'ended_reason', s.ended_reason)
           when s.expires_at <= now() then
             jsonb_build_object('reason', 'session_expired', 'session_id', s.session_id, 'project_id', s.project_id,
                                'expires_at', s.expires_at)
         end
    from (select 1) as one
    left join fsync.sessions s
      on s.session_id = session_refusal.p_session_id and s.project_id = session_refusal.p_project_id
$$;
revoke all on function fsync.session_refusal(text, uuid) from public;

-- Whether the session is live: its row exists for that project (so the project
-- exists: on delete cascade), it has not ended and expires_at is ahead.
-- SECURITY DEFINER: the container policies on storage.objects and
-- realtime.messages call it as fsync_container, which has no privilege on
-- fsync.sessions. Access: a container learns only about the session its own
-- token names (any other id answers false); the service role about any.
create function fsync.session_live(p_session_id text, p_project_id uuid)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select exists (
    select 1
      from fsync.sessions s
      join public.projects p on p.id = s.project_id
     where s.session_id = session_live.p_session_id
       and s.project_id = session_live.p_project_id
       and s.ended_at is null
       and s.expires_at > now())
   and (session_live.p_session_id = fsync.claimed_session_id() or (fsync.current_caller()).kind = 'service')
$$;
revoke all on function fsync.session_live(text, uuid) from public;
grant execute on function fsync.session_live(text, uuid) to service_role, fsync_container;

-- Refuses a container whose session is not live (42501, DETAIL {reason,
-- session_id}). Runs inside definer functions only (fsync.authorize).
create function fsync.require_live_session(p_project_id uuid)
returns void
language plpgsql
stable
set search_path = ''
as $$
declare
  v_session_id text := fsync.claimed_session_id();
  v_refusal jsonb;
begin
  if v_session_id is null then
    perform fsync.raise_error('42501', 'access denied: the container token has no session_id claim',
                              jsonb_build_object('reason', 'session_unknown', 'session_id', null));
  end if;
  v_refusal := fsync.session_refusal(v_session_id, p_project_id);
  if v_refusal is null then
    return;
  end if;
  perform fsync.raise_error('42501',
    case v_refusal ->> 'reason'
      when 'session_ended' then
        format('access denied: container session %s was ended at %s (%s)', v_session_id,
               v_refusal ->> 'ended_at', v_refusal ->> 'ended_reason')
      when 'session_expired' then
        format('access denied: container session %s expired at %s (its maximum age)', v_session_id,
               v_refusal ->> 'expires_at')
      else
        format('access denied: container session %s is unknown for project %s (never opened through the edge, or the project was deleted)',
               v_session_id, p_project_id)
    end,
    jsonb_build_object('reason', v_refusal ->> 'reason', 'session_id', v_session_id));
end
$$;
revoke all on function fsync.require_live_session(uuid) from public;

-- The access check every RPC starts with (20251126090200_fsync-projects.sql),
-- now also refusing a container whose session is not live.
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
  if v_caller.kind = 'container' then
    perform fsync.require_live_session(p_project_id);
  end if;
  return v_caller;
end
$$;
revoke all on function fsync.authorize(uuid, boolean) from public;

-- Only the service role manages sessions (the edge, with its own key).
create function fsync.require_service(p_what text)
returns void
language plpgsql
stable
set search_path = ''
as $$
begin
  if (fsync.current_caller()).kind <> 'service' then
    perform fsync.raise_error('42501', format('access denied: only the service role may %s', p_what));
  end if;
end
$$;
revoke all on function fsync.require_service(text) from public;

create function fsync.session_json(p_session fsync.sessions)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_build_object(
    'session_id', (p_session).session_id, 'project_id', (p_session).project_id,
    'created_at', (p_session).created_at, 'expires_at', (p_session).expires_at,
    'ended_at', (p_session).ended_at, 'ended_reason', (p_session).ended_reason,
    'snapshot_id', (p_session).snapshot_id, 'as_of_seq', (p_session).as_of_seq,
    'last_refresh_at', (p_session).last_refresh_at,
    'live', (p_session).ended_at is null and (p_session).expires_at > now())
$$;
revoke all on function fsync.session_json(fsync.sessions) from public;

-- ---------------------------------------------------------------------
-- Public API (service role only)
-- ---------------------------------------------------------------------

-- SECURITY DEFINER: writes fsync.sessions, on which no API role has a
-- privilege. Opening an id that is already live for the same project returns
-- that session unchanged (a retried POST /sessions); an id that was used
-- before (ended, expired, or another project's) is refused: a revoked session
-- never comes back.
create function fsync.open_container_session(p_project_id uuid, p_session_id text, p_max_age_seconds bigint default 43200,
                                             p_snapshot_id text default null, p_as_of_seq bigint default null)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_session fsync.sessions;
begin
  perform fsync.require_service('open container sessions');
  if p_session_id is null or p_session_id !~ '^[A-Za-z0-9._:-]{1,128}$' then
    perform fsync.raise_error('PT422', 'invalid session_id: use 1 to 128 characters of A-Z, a-z, 0-9, ''.'', ''_'', '':'' or ''-''',
                              jsonb_build_object('param', 'session_id', 'rule', 'session_id'));
  end if;
  if not exists (select 1 from public.projects p where p.id = p_project_id) then
    perform fsync.raise_error('PT404', format('project %s not found', p_project_id),
                              jsonb_build_object('project_id', p_project_id));
  end if;
  insert into fsync.sessions (session_id, project_id, expires_at, snapshot_id, as_of_seq)
  values (p_session_id, p_project_id, now() + make_interval(secs => coalesce(p_max_age_seconds, 43200)),
          p_snapshot_id, p_as_of_seq)
  on conflict (session_id) do nothing
  returning * into v_session;
  if v_session.session_id is null then
    select * into v_session from fsync.sessions s where s.session_id = p_session_id for update;
    if v_session.project_id <> p_project_id or v_session.ended_at is not null or v_session.expires_at <= now() then
      perform fsync.raise_error('PT422',
        format('invalid session_id: session %s was already used (%s); open a new session id', p_session_id,
               case when v_session.project_id <> p_project_id then 'for another project'
                    when v_session.ended_at is not null then 'ended'
                    else 'expired' end),
        jsonb_build_object('param', 'session_id', 'rule', 'session_reused'));
    end if;
    if p_snapshot_id is not null then
      update fsync.sessions s set snapshot_id = p_snapshot_id, as_of_seq = p_as_of_seq
       where s.session_id = p_session_id
      returning * into v_session;
    end if;
  end if;
  return fsync.session_json(v_session);
end
$$;
revoke all on function fsync.open_container_session(uuid, text, bigint, text, bigint) from public;
grant execute on function fsync.open_container_session(uuid, text, bigint, text, bigint) to service_role;

create function public.open_container_session(json)
returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select fsync.open_container_session(fsync.arg_uuid(a, 'project_uuid'), fsync.arg_text(a, 'session_id'),
                                      coalesce(fsync.arg_int(a, 'max_age_seconds', 1, 2592000), 43200),
                                      fsync.arg_text(a, 'snapshot_id'), fsync.arg_int(a, 'as_of_seq', 0, 9223372036854775807))
    from fsync.rpc_args('open_container_session', $1,
                        array['project_uuid', 'session_id', 'max_age_seconds', 'snapshot_id', 'as_of_seq'],
                        array['project_uuid', 'session_id']) as a
$$;
comment on function public.open_container_session(json) is
  'Records a container session (the edge''s POST /sessions). Service role only. Arguments: one JSON object {project_uuid, session_id, max_age_seconds? (1..2592000, default 43200), snapshot_id?, as_of_seq?}. Returns the session.';
revoke all on function public.open_container_session(json) from public, anon, authenticated;
grant execute on function public.open_container_session(json) to service_role;

-- SECURITY DEFINER: as open_container_session. Ending an ended session
-- changes nothing (already_ended: true); an unknown id is PT404.
create function fsync.end_container_session(p_session_id text, p_reason text default 'revoked')
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_session fsync.sessions;
  v_already boolean;
begin
  perform fsync.require_service('end container sessions');
  select * into v_session from fsync.sessions s where s.session_id = p_session_id for update;
  if not found then
    perform fsync.raise_error('PT404', format('container session %s not found', p_session_id),
                              jsonb_build_object('session_id', p_session_id));
  end if;
  v_already := v_session.ended_at is not null;
  if not v_already then
    update fsync.sessions s
       set ended_at = now(), ended_reason = coalesce(nullif(btrim(p_reason), ''), 'revoked')
     where s.session_id = p_session_id
    returning * into v_session;
  end if;
  return fsync.session_json(v_session) || jsonb_build_object('already_ended', v_already);
end
$$;
revoke all on function fsync.end_container_session(text, text) from public;
grant execute on function fsync.end_container_session(text, text) to service_role;

create function public.end_container_session(json)
returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select fsync.end_container_session(fsync.arg_text(a, 'session_id'), coalesce(fsync.arg_text(a, 'reason'), 'revoked'))
    from fsync.rpc_args('end_container_session', $1, array['session_id', 'reason'], array['session_id']) as a
$$;
comment on function public.end_container_session(json) is
  'Ends a container session (the edge''s DELETE /sessions/<id>): its token is refused from the next call on. Idempotent. Service role only. Arguments: one JSON object {session_id, reason?}.';
revoke all on function public.end_container_session(json) from public, anon, authenticated;
grant execute on function public.end_container_session(json) to service_role;

-- SECURITY DEFINER: as open_container_session. What the edge's refresh and
-- snapshot routes decide on: {live, reason, session_id, project_id,
-- expires_at, hydration_enabled, …}; reason is null when live, else
-- session_unknown, session_ended, session_expired or project_not_found (the
-- token's project, p_project_id, no longer exists). p_refresh stamps
-- last_refresh_at on a live session.
create function fsync.check_container_session(p_session_id text, p_project_id uuid default null,
                                              p_refresh boolean default false)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_session fsync.sessions;
  v_live boolean;
  v_reason text;
begin
  perform fsync.require_service('check container sessions');
  select * into v_session from fsync.sessions s where s.session_id = p_session_id;
  if not found or (p_project_id is not null and v_session.project_id <> p_project_id) then
    v_reason := case when p_project_id is not null
                          and not exists (select 1 from public.projects p where p.id = p_project_id)
                     then 'project_not_found' else 'session_unknown' end;
    return jsonb_build_object('live', false, 'reason', v_reason, 'session_id', p_session_id,
                              'project_id', p_project_id, 'expires_at', null, 'hydration_enabled', null);
  end if;
  v_live := v_session.ended_at is null and v_session.expires_at > now();
  if v_live and p_refresh then
    update fsync.sessions s set last_refresh_at = now() where s.session_id = p_session_id
    returning * into v_session;
  end if;
  return fsync.session_json(v_session) || jsonb_build_object(
    'reason', case when v_session.ended_at is not null then 'session_ended'
                   when not v_live then 'session_expired' end,
    'hydration_enabled', fsync.is_feature_enabled_for_project('FSYNC_SNAPSHOT_HYDRATION', v_session.project_id));
end
$$;
revoke all on function fsync.check_container_session(text, uuid, boolean) from public;
grant execute on function fsync.check_container_session(text, uuid, boolean) to service_role;

create function public.check_container_session(json)
returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select fsync.check_container_session(fsync.arg_text(a, 'session_id'), fsync.arg_uuid(a, 'project_uuid'),
                                       coalesce(fsync.arg_bool(a, 'refresh'), false))
    from fsync.rpc_args('check_container_session', $1, array['session_id', 'project_uuid', 'refresh'],
                        array['session_id']) as a
$$;
comment on function public.check_container_session(json) is
  'Whether a container session is live, and why not: {live, reason (null | session_unknown | session_ended | session_expired | project_not_found), session_id, project_id, expires_at, hydration_enabled, …}. Service role only. Arguments: one JSON object {session_id, project_uuid?, refresh? (stamps last_refresh_at)}.';
revoke all on function public.check_container_session(json) from public, anon, authenticated;
grant execute on function public.check_container_session(json) to service_role;

-- SECURITY DEFINER: as open_container_session. The snapshot a live session
-- re-hydrated from (the edge's POST /sessions/snapshot); false when the
-- session is not live (nothing recorded).
create function fsync.record_session_snapshot(p_session_id text, p_snapshot_id text, p_as_of_seq bigint)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform fsync.require_service('record session snapshots');
  update fsync.sessions s set snapshot_id = p_snapshot_id, as_of_seq = p_as_of_seq
   where s.session_id = p_session_id and s.ended_at is null and s.expires_at > now();
  return found;
end
$$;
revoke all on function fsync.record_session_snapshot(text, text, bigint) from public;
grant execute on function fsync.record_session_snapshot(text, text, bigint) to service_role;

create function public.record_session_snapshot(json)
returns boolean
language sql
security invoker
set search_path = ''
as $$
  select fsync.record_session_snapshot(fsync.arg_text(a, 'session_id'), fsync.arg_text(a, 'snapshot_id'),
                                       fsync.arg_int(a, 'as_of_seq', 0, 9223372036854775807))
    from fsync.rpc_args('record_session_snapshot', $1, array['session_id', 'snapshot_id', 'as_of_seq'],
                        array['session_id', 'snapshot_id', 'as_of_seq']) as a
$$;
comment on function public.record_session_snapshot(json) is
  'Records the snapshot a live container session hydrated from; false when the session is not live. Service role only. Arguments: one JSON object {session_id, snapshot_id, as_of_seq}.';
revoke all on function public.record_session_snapshot(json) from public, anon, authenticated;
grant execute on function public.record_session_snapshot(json) to service_role;

-- ---------------------------------------------------------------------
-- Policies: the container ones of fsync-storage and fsync-realtime-auth,
-- plus a live session
-- ---------------------------------------------------------------------

alter policy "fsync: containers read their project's assets" on storage.objects
  using (
    bucket_id = 'project-assets'
    and (storage.foldername(name))[1] = ((select auth.jwt()) ->> 'project_id')
    and 'fsync:read' = any (string_to_array(coalesce((select auth.jwt()) ->> 'scope', ''), ' '))
    and (select fsync.session_live((select auth.jwt()) ->> 'session_id', fsync.try_uuid((select auth.jwt()) ->> 'project_id')))
  );

alter policy "fsync: containers receive their project's events" on realtime.messages
  using (
    extension in ('broadcast', 'presence')
    and topic = (select realtime.topic())
    and (select realtime.topic()) = 'project:' || ((select auth.jwt()) ->> 'project_id')
    and 'fsync:read' = any (string_to_array(coalesce((select auth.jwt()) ->> 'scope', ''), ' '))
    and (select fsync.session_live((select auth.jwt()) ->> 'session_id', fsync.try_uuid((select auth.jwt()) ->> 'project_id')))
  );
