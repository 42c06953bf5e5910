-- =====================================================================
-- fsync-projects: projects (owner, change-log counter) and project_members
-- (owner/editor/viewer), the membership helpers RLS policies use, access
-- checks for the RPCs, and project/member management RPCs.
--
-- Access model: owner and editor may write files; viewer may only read; the
-- service role may do anything; a container token may read its own project
-- only. A non-member gets 42501 whether or not the project exists, so outsiders
-- cannot probe for project ids; PT404 "project not found" is only ever returned
-- to callers who would otherwise have access (service role, own container).
-- =====================================================================

-- ---------------------------------------------------------------------
-- Tables
-- ---------------------------------------------------------------------

-- A projects table from the seed app gets the columns fs-sync needs; on a fresh
-- database the create below makes it.
do $$
begin
  if to_regclass('public.projects') is not null then
    alter table public.projects
      add column if not exists owner_id uuid references auth.users (id) on delete set null,
      add column if not exists name text not null default 'Untitled project',
      add column if not exists last_seq bigint not null default 0,
      add column if not exists live_files bigint not null default 0,
      add column if not exists live_bytes bigint not null default 0,
      add column if not exists created_at timestamptz not null default now(),
      add column if not exists updated_at timestamptz not null default now();
  end if;
end
$$;

create table if not exists public.projects (
  id uuid primary key default gen_random_uuid(),
  owner_id uuid references auth.users (id) on delete set null,
  name text not null default 'Untitled project',
  last_seq bigint not null default 0,
  live_files bigint not null default 0,
  live_bytes bigint not null default 0,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
alter table public.projects add constraint projects_last_seq_nonnegative check (last_seq >= 0);
alter table public.projects add constraint projects_name_length check (char_length(name) between 1 and 200);
alter table public.projects add constraint projects_live_nonnegative check (live_files >= 0 and live_bytes >= 0);
comment on column public.projects.last_seq is
  'seq of the newest change-log event; bumped by UPDATE … RETURNING inside each write, which also serialises writers per project.';
comment on column public.projects.live_files is
  'Live heads (current, not deleted) of the project: running total kept by the write RPCs under the project lock (limits.max_project_files).';
comment on column public.projects.live_bytes is
  'Sum of size_bytes of the live heads: running total kept like live_files (limits.max_project_bytes).';
create index if not exists projects_owner_id_idx on public.projects (owner_id);

create table public.project_members (
  project_id uuid not null references public.projects (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  role text not null check (role in ('owner', 'editor', 'viewer')),
  created_at timestamptz not null default now(),
  primary key (project_id, user_id)
);
create index project_members_user_id_idx on public.project_members (user_id);

-- ---------------------------------------------------------------------
-- Helpers
-- ---------------------------------------------------------------------

-- Projects the signed-in user belongs to (owner_id or a member row).
-- SECURITY DEFINER: RLS policies on project_members, projects, project_files,
-- project_events, storage.objects and realtime.messages call it; reading
-- project_members under the caller's RLS from a policy on project_members would
-- recurse. It only ever returns the caller's own memberships.
create function fsync.member_project_ids()
returns setof uuid
language sql
stable
security definer
set search_path = ''
as $$
  with me as (select (fsync.current_caller()).user_id as uid)
  select p.id from public.projects p, me where p.owner_id = me.uid
  union
  select m.project_id from public.project_members m, me where m.user_id = me.uid
$$;
revoke all on function fsync.member_project_ids() from public;
grant execute on function fsync.member_project_ids() to authenticated, service_role;

-- Projects whose files the signed-in user may change: owner (owner_id, or an
-- owner member row) or editor; the same rule as fsync.project_role/authorize.
-- SECURITY DEFINER: as fsync.member_project_ids (the storage.objects write
-- policies call it). It only ever returns the caller's own projects.
create function fsync.writable_project_ids()
returns setof uuid
language sql
stable
security definer
set search_path = ''
as $$
  with me as (select (fsync.current_caller()).user_id as uid)
  select p.id from public.projects p, me where p.owner_id = me.uid
  union
  select m.project_id from public.project_members m, me
   where m.user_id = me.uid and m.role in ('owner', 'editor')
$$;
revoke all on function fsync.writable_project_ids() from public;
grant execute on function fsync.writable_project_ids() to authenticated, service_role;

-- 'owner' | 'editor' | 'viewer' | null. Runs inside definer functions only.
create function fsync.project_role(p_project_id uuid, p_user_id uuid)
returns text
language sql
stable
set search_path = ''
as $$
  select case when p.owner_id = project_role.p_user_id then 'owner' else m.role end
    from public.projects p
    left join public.project_members m
      on m.project_id = p.id and m.user_id = project_role.p_user_id
   where p.id = project_role.p_project_id
$$;
revoke all on function fsync.project_role(uuid, uuid) from public;

-- The access check every RPC starts with. Returns the caller; raises 42501 or PT404.
create function fsync.authorize(p_project_id uuid, p_write boolean)
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

-- ---------------------------------------------------------------------
-- RLS
-- ---------------------------------------------------------------------

alter table public.projects enable row level security;
alter table public.project_members enable row level security;

create policy "members can read their projects" on public.projects
  for select to authenticated
  using (id in (select fsync.member_project_ids()));

create policy "members can read co-members" on public.project_members
  for select to authenticated
  using (project_id in (select fsync.member_project_ids()));

-- Clients change projects and memberships only through the RPCs below.
revoke all on public.projects, public.project_members from anon, authenticated, service_role;
grant select on public.projects, public.project_members to authenticated;
grant select, delete on public.projects to service_role;
grant select, insert, update, delete on public.project_members to service_role;

-- ---------------------------------------------------------------------
-- Public API
-- ---------------------------------------------------------------------

-- SECURITY DEFINER: clients have no INSERT on projects/project_members; this
-- creates a project owned by the signed-in caller (or, for the service role,
-- by p_owner_id) and its owner membership row.
create function fsync.create_project(p_name text, p_owner_id uuid default null)
returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_caller fsync.caller := fsync.current_caller();
  v_owner uuid;
  v_id uuid;
begin
  if v_caller.kind = 'user' and v_caller.user_id is not null then
    if p_owner_id is not null and p_owner_id <> v_caller.user_id then
      perform fsync.raise_error('42501', 'access denied: you can only create projects you own');
    end if;
    v_owner := v_caller.user_id;
  elsif v_caller.kind = 'service' then
    v_owner := p_owner_id;
  else
    perform fsync.raise_error('42501', 'access denied: sign in to create projects');
  end if;
  if p_name is null or char_length(p_name) not between 1 and 200 then
    perform fsync.raise_error('PT422', 'invalid project name: use 1 to 200 characters',
                              jsonb_build_object('rule', 'project_name'));
  end if;
  insert into public.projects (owner_id, name) values (v_owner, p_name) returning id into v_id;
  if v_owner is not null then
    insert into public.project_members (project_id, user_id, role) values (v_id, v_owner, 'owner');
  end if;
  return v_id;
end
$$;
revoke all on function fsync.create_project(text, uuid) from public;
grant execute on function fsync.create_project(text, uuid) to authenticated, service_role;

-- The public functions take one unnamed json argument: see "RPC arguments" in
-- fsync-setup and the header of fsync-rpcs.
create function public.create_project(json)
returns uuid
language sql
security invoker
set search_path = ''
as $$
  select fsync.create_project(fsync.arg_text(a, 'p_name'), fsync.arg_uuid(a, 'p_owner_id'))
    from fsync.rpc_args('create_project', $1, array['p_name', 'p_owner_id'], array['p_name']) as a
$$;
comment on function public.create_project(json) is
  'Creates a project owned by the caller (service role: by p_owner_id) and returns its id. Arguments: one JSON object {p_name, p_owner_id?}.';
revoke all on function public.create_project(json) from public, anon;
grant execute on function public.create_project(json) to authenticated, service_role;

-- SECURITY DEFINER: clients have no write access to project_members; only the
-- project's owner (or the service role) may add or change a member.
create function fsync.set_project_member(p_project_id uuid, p_user_id uuid, p_role text)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_caller fsync.caller := fsync.authorize(p_project_id, false);
begin
  if v_caller.kind = 'container'
     or (v_caller.kind = 'user' and fsync.project_role(p_project_id, v_caller.user_id) <> 'owner') then
    perform fsync.raise_error('42501', format('access denied: only the owner manages members of project %s', p_project_id));
  end if;
  if p_role is null or p_role not in ('owner', 'editor', 'viewer') then
    perform fsync.raise_error('PT422', format('invalid member role "%s": use owner, editor or viewer', p_role),
                              jsonb_build_object('rule', 'member_role'));
  end if;
  if not exists (select 1 from auth.users u where u.id = p_user_id) then
    perform fsync.raise_error('PT404', format('user %s not found', p_user_id), jsonb_build_object('user_id', p_user_id));
  end if;
  insert into public.project_members (project_id, user_id, role)
  values (p_project_id, p_user_id, p_role)
  on conflict (project_id, user_id) do update set role = excluded.role;
end
$$;
revoke all on function fsync.set_project_member(uuid, uuid, text) from public;
grant execute on function fsync.set_project_member(uuid, uuid, text) to authenticated, service_role;

create function public.add_project_member(json)
returns void
language sql
security invoker
set search_path = ''
as $$
  select fsync.set_project_member(fsync.arg_uuid(a, 'project_uuid'), fsync.arg_uuid(a, 'p_user_id'),
                                  fsync.arg_text(a, 'p_role'))
    from fsync.rpc_args('add_project_member', $1, array['project_uuid', 'p_user_id', 'p_role'],
                        array['project_uuid', 'p_user_id', 'p_role']) as a
$$;
comment on function public.add_project_member(json) is
  'Adds a member or changes their role (owner, editor, viewer). Project owner or service role only. Arguments: one JSON object {project_uuid, p_user_id, p_role}.';
revoke all on function public.add_project_member(json) from public, anon;
grant execute on function public.add_project_member(json) to authenticated, service_role;

-- SECURITY DEFINER: as fsync.set_project_member.
create function fsync.remove_project_member(p_project_id uuid, p_user_id uuid)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_caller fsync.caller := fsync.authorize(p_project_id, false);
begin
  if v_caller.kind = 'container'
     or (v_caller.kind = 'user' and fsync.project_role(p_project_id, v_caller.user_id) <> 'owner') then
    perform fsync.raise_error('42501', format('access denied: only the owner manages members of project %s', p_project_id));
  end if;
  if exists (select 1 from public.projects p where p.id = p_project_id and p.owner_id = p_user_id) then
    perform fsync.raise_error('PT422', 'the project owner cannot be removed', jsonb_build_object('rule', 'owner_member'));
  end if;
  delete from public.project_members m where m.project_id = p_project_id and m.user_id = p_user_id;
  return found;
end
$$;
revoke all on function fsync.remove_project_member(uuid, uuid) from public;
grant execute on function fsync.remove_project_member(uuid, uuid) to authenticated, service_role;

create function public.remove_project_member(json)
returns boolean
language sql
security invoker
set search_path = ''
as $$
  select fsync.remove_project_member(fsync.arg_uuid(a, 'project_uuid'), fsync.arg_uuid(a, 'p_user_id'))
    from fsync.rpc_args('remove_project_member', $1, array['project_uuid', 'p_user_id'],
                        array['project_uuid', 'p_user_id']) as a
$$;
comment on function public.remove_project_member(json) is
  'Removes a member (not the owner). Returns whether a row was removed. Project owner or service role only. Arguments: one JSON object {project_uuid, p_user_id}.';
revoke all on function public.remove_project_member(json) from public, anon;
grant execute on function public.remove_project_member(json) to authenticated, service_role;
