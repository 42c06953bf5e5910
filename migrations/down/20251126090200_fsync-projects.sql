-- Reverses 20251126090200_fsync-projects.sql.
drop function if exists public.remove_project_member(json);
drop function if exists fsync.remove_project_member(uuid, uuid);
drop function if exists public.add_project_member(json);
drop function if exists fsync.set_project_member(uuid, uuid, text);
drop function if exists public.create_project(json);
drop function if exists fsync.create_project(text, uuid);
drop table if exists public.project_members;
drop table if exists public.projects;
drop function if exists fsync.authorize(uuid, boolean);
drop function if exists fsync.project_role(uuid, uuid);
drop function if exists fsync.writable_project_ids();
drop function if exists fsync.member_project_ids();
