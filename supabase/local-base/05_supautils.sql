-- =====================================================================
-- LOCAL STAND-IN ONLY. Never apply this file to a real Supabase project.
--
-- The two things the supautils extension lets `postgres` do on hosted
-- Supabase that fs-sync's migrations and tests need, done here in SQL because
-- plain PostgreSQL has no supautils (values from supabase/postgres
-- ansible/files/postgresql_config/supautils.conf.j2):
--
--   * supautils.privileged_extensions: postgres may create pgtap, which needs a
--     superuser. Installed here once, so the tests' own
--     `create extension if not exists pgtap` finds it.
--   * supautils.policy_grants: postgres may create, alter and drop policies on
--     auth.users, storage.buckets, storage.objects and realtime.messages
--     without owning them or being a member of their owners. Here an event
--     trigger makes postgres a member of those owners for the duration of one
--     policy statement only (ddl_command_start to ddl_command_end; a failed
--     statement rolls the grant back with it) and refuses a policy on any other
--     table postgres does not own.
-- =====================================================================

do $$
begin
  if exists (select 1 from pg_catalog.pg_available_extensions where name = 'pgtap') then
    create extension if not exists pgtap with schema extensions;
  end if;
end
$$;

create or replace function extensions.local_policy_grants_start()
returns event_trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  -- The role running the statement: a SECURITY DEFINER function's current_user is its owner.
  v_role text := coalesce(nullif(pg_catalog.current_setting('role'), 'none'), session_user);
  v_owners text;
begin
  if v_role <> 'postgres' then
    return;
  end if;
  select pg_catalog.string_agg(distinct pg_catalog.quote_ident(o.rolname), ', ') into v_owners
    from pg_catalog.pg_class c join pg_catalog.pg_roles o on o.oid = c.relowner
   where c.oid in ('auth.users'::regclass, 'storage.buckets'::regclass, 'storage.objects'::regclass,
                   'realtime.messages'::regclass)
     and not pg_catalog.pg_has_role('postgres', o.oid, 'member');
  if v_owners is not null then
    execute pg_catalog.format('grant %s to postgres', v_owners);
    -- Read back by local_policy_grants_end, which revokes what was granted.
    perform pg_catalog.set_config('local_policy_grants.granted', v_owners, true);
  end if;
end
$$;

create or replace function extensions.local_policy_grants_end()
returns event_trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_owners text := nullif(pg_catalog.current_setting('local_policy_grants.granted', true), '');
  v_table regclass;
begin
  if v_owners is null then
    return;
  end if;
  perform pg_catalog.set_config('local_policy_grants.granted', '', true);
  execute pg_catalog.format('revoke %s from postgres', v_owners);
  for v_table in
    select p.polrelid::regclass
      from pg_catalog.pg_event_trigger_ddl_commands() d
      join pg_catalog.pg_policy p on d.classid = 'pg_catalog.pg_policy'::regclass and p.oid = d.objid
  loop
    if v_table not in ('auth.users'::regclass, 'storage.buckets'::regclass, 'storage.objects'::regclass,
                       'realtime.messages'::regclass)
       and not pg_catalog.pg_has_role('postgres', (select c.relowner from pg_catalog.pg_class c where c.oid = v_table), 'usage') then
      raise exception 'must be owner of table %', v_table using errcode = '42501';
    end if;
  end loop;
end
$$;

revoke all on function extensions.local_policy_grants_start(), extensions.local_policy_grants_end() from public;

drop event trigger if exists local_policy_grants_start;
create event trigger local_policy_grants_start on ddl_command_start
  when tag in ('CREATE POLICY', 'ALTER POLICY', 'DROP POLICY')
  execute function extensions.local_policy_grants_start();

drop event trigger if exists local_policy_grants_end;
create event trigger local_policy_grants_end on ddl_command_end
  when tag in ('CREATE POLICY', 'ALTER POLICY', 'DROP POLICY')
  execute function extensions.local_policy_grants_end();
