-- =====================================================================
-- fsync-change-log: the per-project change log (docs/contracts.md invariant 2) and
-- fsync.append_event, the one place events are written and broadcast
-- (fsync-legacy-writes redefines fsync.server_broadcasts so that they are
-- broadcast only while FSYNC_SERVER_BROADCASTS is on for the project's owner).
--
-- Gapless seq: projects.last_seq is bumped with UPDATE … RETURNING inside the
-- write transaction. Every writer first locks the project row (fsync.lock_project
-- in fsync-rpcs), so writers of one project are serialised and seq order is
-- commit order; a rolled-back write rolls back its bump, leaving no event and no
-- seq.
--
-- Stored payloads are the broadcast payloads without "content": the content is
-- re-attached from project_files (path, version) when the log is read
-- (list_project_events), so the log does not store a second copy.
-- =====================================================================

-- ---------------------------------------------------------------------
-- Tables
-- ---------------------------------------------------------------------

-- A down script on velocity's database keeps the log in fsync_rollback (see
-- its down); it comes back here and continues (below).
do $$
begin
  if to_regclass('fsync_rollback.project_events') is not null then
    alter table fsync_rollback.project_events set schema public;
  end if;
end
$$;

create table if not exists public.project_events (
  project_id uuid not null references public.projects (id) on delete cascade,
  seq bigint not null check (seq > 0),
  event_type text not null check (event_type in ('file:update', 'file:delete', 'file:rename', 'bulk:apply')),
  payload jsonb not null,
  actor uuid,
  created_at timestamptz not null default now(),
  primary key (project_id, seq)
);
comment on table public.project_events is
  'Change log: one row per committed write, seq = 1, 2, 3 … per project with no gap. Written only by the fs-sync RPCs.';

-- ---------------------------------------------------------------------
-- Helpers
-- ---------------------------------------------------------------------

-- Whether the project's writes are broadcast: always here; fsync-legacy-writes
-- makes it follow FSYNC_SERVER_BROADCASTS for the project's owner. A write RPC
-- asks before it takes the project lock and passes the answer to append_event.
create function fsync.server_broadcasts(p_project_id uuid)
returns boolean
language plpgsql
stable
set search_path = ''
as $$
begin
  return true;
end
$$;
revoke all on function fsync.server_broadcasts(uuid) from public;

-- Appends the next event of p_project_id and, when p_broadcast (null: ask
-- fsync.server_broadcasts now), broadcasts it on the private topic project:<id>
-- with realtime.send(payload, type, topic, true). p_content, when not null, is
-- added to the broadcast payload only (see header). Returns the seq.
-- Must be called by a SECURITY DEFINER write RPC after fsync.lock_project: the
-- insert into realtime.messages then runs as the function owner, so the silent
-- failure mode of realtime.send (it swallows RLS errors) cannot drop the message.
create function fsync.append_event(p_project_id uuid, p_type text, p_payload jsonb, p_content text, p_actor uuid,
                                   p_broadcast boolean default null)
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

  if coalesce(p_broadcast, fsync.server_broadcasts(p_project_id)) then
    perform realtime.send(
      case when p_content is null then v_payload else v_payload || jsonb_build_object('content', p_content) end,
      p_type,
      'project:' || p_project_id::text,
      true);
  end if;
  return v_seq;
end
$$;
revoke all on function fsync.append_event(uuid, text, jsonb, text, uuid, boolean) from public;

-- ---------------------------------------------------------------------
-- RLS
-- ---------------------------------------------------------------------

alter table public.project_events enable row level security;

create policy "members can read project events" on public.project_events
  for select to authenticated
  using (project_id in (select fsync.member_project_ids()));

revoke all on public.project_events from anon, authenticated, service_role;
grant select on public.project_events to authenticated, service_role;

-- ---------------------------------------------------------------------
-- After a rollback
-- ---------------------------------------------------------------------

-- The log came back from fsync_rollback: seq continues where it stopped
-- (projects.last_seq = the last event's), and what the legacy app wrote while
-- fs-sync was rolled back (every version created since, including the heads
-- and tombstones fsync-legacy-upgrade appended for it just now) is announced by
-- one bulk:apply event per project that changed, listing those versions in
-- order (paths in byte order, then version), so that followers that held a
-- position before the rollback converge and the history still names every
-- version. Paths that break the path rules are left out: no follower can hold
-- them. Not broadcast: followers find the event by their position check.
do $$
declare
  v_since timestamptz;
begin
  if to_regclass('fsync_rollback.state') is null then
    return;
  end if;
  select (s.value #>> '{}')::timestamptz into v_since from fsync_rollback.state s where s.key = 'rolled_back_at';
  update public.projects p
     set last_seq = e.seq
    from (select e.project_id, max(e.seq) as seq from public.project_events e group by e.project_id) e
   where p.id = e.project_id and p.last_seq < e.seq;
  if v_since is not null then
    with changed as (
      select f.project_id,
             jsonb_agg(jsonb_build_object('file_path', f.file_path, 'version', f.version,
                                          'content_hash', f.content_hash, 'deleted', f.is_deleted)
                       order by f.file_path collate "C", f.version) as files
        from public.project_files f
       where f.created_at > v_since
         and not (fsync.path_suspect(f.file_path) and fsync.path_error(f.file_path) is not null)
       group by f.project_id
    ), bumped as (
      update public.projects p
         set last_seq = p.last_seq + 1
        from changed c
       where p.id = c.project_id
      returning p.id, p.last_seq, c.files
    )
    insert into public.project_events (project_id, seq, event_type, payload, actor, created_at)
    select b.id, b.last_seq, 'bulk:apply',
           jsonb_build_object('files', b.files, 'catch_up', jsonb_build_object('since', v_since),
                              'v', 1, 'seq', b.last_seq, 'type', 'bulk:apply', 'project_id', b.id,
                              'timestamp', to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                              'actor', null),
           null, clock_timestamp()
      from bumped b;
  end if;
  drop table fsync_rollback.state;
  perform fsync.drop_rollback_schema_if_empty();
end
$$;
