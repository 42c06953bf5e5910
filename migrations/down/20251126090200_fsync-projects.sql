-- Reverses 20251126090200_fsync-projects.sql.
--
-- A projects table fs-sync found (velocity's: fsync.adopted) is the app's: it
-- stays with its rows, its own columns, policies and grants as they were
-- (recorded); fs-sync's columns (owner_id, last_seq, live_files, live_bytes),
-- constraints, policy and triggers go. The memberships are kept for the next up
-- in fsync_rollback (see the down of fsync-change-log), since the app has no
-- place for editors and viewers. On a fresh database both tables are dropped.
drop function if exists public.remove_project_member(json);
drop function if exists fsync.remove_project_member(uuid, uuid);
drop function if exists public.add_project_member(json);
drop function if exists fsync.set_project_member(uuid, uuid, text);
drop function if exists public.create_project(json);
drop function if exists fsync.create_project(text, uuid);
do $$
declare
  v_state jsonb := (select a.state from fsync.adopted a where a.kind = 'relation' and a.name = 'public.projects');
  v_name text;
begin
  if v_state is null then
    drop table if exists public.project_members;
    drop table if exists public.projects;
    return;
  end if;

  drop trigger if exists fsync_project_owner_member on public.projects;
  drop trigger if exists fsync_project_owner on public.projects;
  drop policy if exists "members can read their projects" on public.projects;
  if to_regclass('public.project_members') is not null then
    create schema if not exists fsync_rollback;
    revoke all on schema fsync_rollback from public;
    drop policy if exists "members can read co-members" on public.project_members;
    revoke all on public.project_members from anon, authenticated, service_role;
    alter table public.project_members set schema fsync_rollback;
  end if;
  alter table public.projects
    drop constraint if exists projects_last_seq_nonnegative,
    drop constraint if exists projects_live_nonnegative,
    drop constraint if exists projects_name_length;
  foreach v_name in array array['owner_id', 'name', 'last_seq', 'live_files', 'live_bytes', 'created_at', 'updated_at'] loop
    if not exists (select 1 from jsonb_array_elements(v_state -> 'columns') c where c ->> 'name' = v_name) then
      execute format('alter table public.projects drop column if exists %I', v_name);
    end if;
  end loop;
  perform fsync.restore_grants('public.projects', v_state);
end
$$;
drop function if exists fsync.sync_project_owner_member();
drop function if exists fsync.sync_project_owner();
drop function if exists fsync.authorize(uuid, boolean);
drop function if exists fsync.project_role(uuid, uuid);
drop function if exists fsync.writable_project_ids();
drop function if exists fsync.member_project_ids();
