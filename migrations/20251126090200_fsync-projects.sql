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
-- database the create below makes it. velocity's (Phase 0) is the app's own:
-- its owner column (user_id), policies, grants and rows stay as they are; fs-sync
-- adds owner_id (kept equal to user_id by trigger fsync_project_owner below),
-- last_seq and the running totals next to them.
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
alter table public.projects add constraint projects_live_nonnegative check (live_files >= 0 and live_bytes >= 0);
-- Names the app already stored are its own (velocity has longer ones);
-- create_project checks the length of the names fs-sync writes either way.
do $$
begin
  if not fsync.was_adopted('relation', 'public.projects') then
    alter table public.projects add constraint projects_name_length check (char_length(name) between 1 and 200);
  end if;
end
$$;
comment on column public.projects.last_seq is
  'seq of the newest change-log event; bumped by UPDATE … RETURNING inside each write, which also serialises writers per project.';
comment on column public.projects.live_files is
  'Live heads (current, not deleted) of the project: running total kept by the write RPCs under the project lock (limits.max_project_files).';
comment on column public.projects.live_bytes is
  'Sum of size_bytes of the live heads: running total kept like live_files (limits.max_project_bytes).';
create index if not exists projects_owner_id_idx on public.projects (owner_id);

-- A down script on velocity's database keeps the memberships in
-- fsync_rollback (see its down); they come back here.
do $$
begin
  if to_regclass('fsync_rollback.project_members') is not null then
    alter table fsync_rollback.project_members set schema public;
  end if;
end
$$;

create table if not exists public.project_members (
  project_id uuid not null references public.projects (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  role text not null check (role in ('owner', 'editor', 'viewer')),
  created_at timestamptz not null default now(),
  primary key (project_id, user_id)
);
create index if not exists project_members_user_id_idx on public.project_members (user_id);
select fsync.drop_rollback_schema_if_empty();

-- ---------------------------------------------------------------------
-- The app's owner column (velocity: projects.user_id)
-- ---------------------------------------------------------------------

-- fs-sync's access rules read owner_id and project_members; velocity's app
-- reads and writes user_id. Existing projects get owner_id and an owner
-- membership from user_id now, and from here on owner_id follows user_id:
-- projects the app creates (.from('projects').insert) are fs-sync projects of
-- the same owner, and projects fs-sync creates (create_project, the legacy
-- upgrade's imported projects) have the app's user_id. So no existing user
-- gets 42501 on their own project, whichever path created it.
-- Only on a table with the app's user_id column (nothing to follow otherwise).
do $$
begin
  if not exists (select 1 from pg_catalog.pg_attribute a
                  where a.attrelid = 'public.projects'::regclass and a.attname = 'user_id' and not a.attisdropped) then
    return;
  end if;

  update public.projects p set owner_id = p.user_id where p.owner_id is distinct from p.user_id;
  insert into public.project_members (project_id, user_id, role)
  select p.id, p.owner_id, 'owner' from public.projects p where p.owner_id is not null
  on conflict (project_id, user_id) do update set role = 'owner';

  -- user_id wins over owner_id (clients cannot write owner_id, see the grants
  -- below); a row that names only owner_id (fs-sync's inserts) gets it as user_id.
  create function fsync.sync_project_owner()
  returns trigger
  language plpgsql
  set search_path = ''
  as $fn$
  begin
    if tg_op = 'INSERT' then
      new.owner_id := coalesce(new.user_id, new.owner_id);
      new.user_id := new.owner_id;
    elsif new.user_id is distinct from old.user_id then
      new.owner_id := new.user_id;
    elsif new.owner_id is distinct from old.owner_id then
      new.user_id := new.owner_id;
    end if;
    return new;
  end
  $fn$;
  revoke all on function fsync.sync_project_owner() from public;

  -- SECURITY DEFINER: the app's own inserts and updates run as authenticated,
  -- which has no privilege on project_members. It only ever writes the owner
  -- row of the project whose owner the statement set.
  create function fsync.sync_project_owner_member()
  returns trigger
  language plpgsql
  security definer
  set search_path = ''
  as $fn$
  begin
    if tg_op = 'UPDATE' then
      if old.owner_id is not distinct from new.owner_id then
        return null;
      end if;
      delete from public.project_members m
       where m.project_id = new.id and m.user_id = old.owner_id and m.role = 'owner';
    end if;
    if new.owner_id is not null then
      insert into public.project_members (project_id, user_id, role)
      values (new.id, new.owner_id, 'owner')
      on conflict (project_id, user_id) do update set role = 'owner';
    end if;
    return null;
  end
  $fn$;
  revoke all on function fsync.sync_project_owner_member() from public;

  -- "of user_id, owner_id": the writes' own last_seq/live_* updates do not fire them.
  create trigger fsync_project_owner
    before insert or update of user_id, owner_id on public.projects
    for each row execute function fsync.sync_project_owner();
  create trigger fsync_project_owner_member
    after insert or update of user_id, owner_id on public.projects
    for each row execute function fsync.sync_project_owner_member();
end
$$;

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
language plpgsql
stable
set search_path = ''
as $$
begin
  -- PL/pgSQL, not SQL: see fsync.setting in fsync-setup.
  return (select case when p.owner_id = project_role.p_user_id then 'owner' else m.role end
            from public.projects p
            left join public.project_members m
              on m.project_id = p.id and m.user_id = project_role.p_user_id
           where p.id = project_role.p_project_id);
end
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

-- Clients change projects and memberships only through the RPCs below, on a
-- fresh database. velocity's app writes its projects table directly
-- (.from('projects').insert/update/delete, under its own policies, which stay):
-- it keeps every privilege it had, except that INSERT and UPDATE now cover
-- the app's own columns only, so that no client writes the columns fs-sync
-- keeps (owner_id, last_seq, live_files, live_bytes): a client that could set
-- last_seq would make followers skip or repeat events.
do $$
declare
  v_state jsonb := (select a.state from fsync.adopted a where a.kind = 'relation' and a.name = 'public.projects');
  v_columns text;
  v_grant record;
begin
  if v_state is null then
    revoke all on public.projects from anon, authenticated, service_role;
    grant select on public.projects to authenticated;
    grant select, delete on public.projects to service_role;
    return;
  end if;
  select string_agg(quote_ident(c ->> 'name'), ', ' order by o) into v_columns
    from jsonb_array_elements(v_state -> 'columns') with ordinality as e(c, o)
   where c ->> 'name' not in ('owner_id', 'last_seq', 'live_files', 'live_bytes');
  for v_grant in
    select case when a.grantee = 0 then 'public' else quote_ident(pg_catalog.pg_get_userbyid(a.grantee)) end as grantee,
           a.privilege_type, a.is_grantable
      from pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a
     where c.oid = 'public.projects'::regclass and a.grantee <> c.relowner
       and a.privilege_type in ('INSERT', 'UPDATE')
  loop
    execute format('revoke %s on public.projects from %s', v_grant.privilege_type, v_grant.grantee);
    execute format('grant %s (%s) on public.projects to %s%s', v_grant.privilege_type, v_columns, v_grant.grantee,
                   case when v_grant.is_grantable then ' with grant option' else '' end);
  end loop;
end
$$;
revoke all on public.project_members from anon, authenticated, service_role;
grant select on public.project_members to authenticated;
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
    -- on conflict: on velocity's table trigger fsync_project_owner_member wrote it already.
    insert into public.project_members (project_id, user_id, role) values (v_id, v_owner, 'owner')
    on conflict (project_id, user_id) do nothing;
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
