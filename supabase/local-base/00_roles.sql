-- =====================================================================
-- LOCAL STAND-IN ONLY. Never apply this file to a real Supabase project.
--
-- Recreates the roles Supabase provides (supabase/postgres
-- migrations/db/init-scripts/00000000000000-initial-schema.sql and later
-- migrations), so that migrations/ and tests/sql run on a plain PostgreSQL 15
-- with the privileges they get on hosted Supabase. Files in
-- supabase/local-base/ are applied in name order to a fresh database by
-- supabase_admin, the cluster's bootstrap superuser (initdb -U supabase_admin),
-- as Supabase's images apply their own schemas; migrations/ and tests/sql then
-- run logged in as `postgres`, which is not a superuser. Roles are
-- cluster-wide, so every statement here is idempotent and safe to re-run for
-- each new database of the same cluster.
-- =====================================================================

do $$
begin
  -- Everything below is owned by the admin roles, not by whoever applies it; as
  -- `postgres` it would also demote the session's own role.
  if current_user <> 'supabase_admin' then
    raise exception 'apply supabase/local-base as supabase_admin (the bootstrap superuser: initdb -U supabase_admin), not as %', current_user;
  end if;

  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'authenticator') then
    create role authenticator login noinherit;
  end if;
  -- The services' own login roles (GoTrue, Storage, Realtime), owners of their schemas' tables.
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'supabase_auth_admin') then
    create role supabase_auth_admin noinherit createrole login noreplication;
  end if;
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'supabase_storage_admin') then
    create role supabase_storage_admin noinherit createrole login noreplication;
  end if;
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'supabase_realtime_admin') then
    create role supabase_realtime_admin noinherit nologin noreplication;
  end if;
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'postgres') then
    create role postgres login;
  end if;
end
$$;

-- The project's own role, as 10000000000000_demote-postgres.sql leaves it: no superuser.
alter role postgres nosuperuser createdb createrole login replication bypassrls;
alter role postgres set search_path to "$user", public, extensions;

-- Supabase later switched the API roles to INHERIT (20230529180330_alter_api_roles_for_inherit.sql).
alter role anon inherit;
alter role authenticated inherit;
alter role service_role inherit bypassrls;
alter role authenticator noinherit;

alter role anon set statement_timeout = '3s';
alter role authenticated set statement_timeout = '8s';
alter role authenticator set statement_timeout = '8s';

-- PostgREST connects as authenticator and switches into these roles.
grant anon, authenticated, service_role to authenticator;
-- Storage connects as supabase_storage_admin and switches into the caller's role.
grant anon, authenticated, service_role, authenticator to supabase_storage_admin;
-- postgres may act as the API roles and grant them (20230201083204, and with ADMIN OPTION for
-- PostgreSQL 16+ in 20250605172253, where CREATEROLE alone no longer allows it), read every table
-- and signal backends (20230306081037, 20240606060239). It is a member of none of the
-- auth/storage/realtime admin roles (20250421084701_revoke_admin_roles_from_postgres.sql).
grant anon, authenticated, service_role to postgres with admin option;
grant pg_read_all_data, pg_signal_backend, pg_monitor to postgres;

-- The project's database belongs to postgres (migrations/db/migrate.sh), so postgres may create
-- schemas and owns `public` (pg_database_owner).
do $$
begin
  execute format('alter database %I owner to postgres', current_database());
end
$$;

-- Public schema and default privileges as on Supabase: tables and functions created by postgres
-- (migrations) or supabase_admin are broadly granted to the API roles and RLS is the real access
-- control. Migrations revoke what they must not expose.
grant usage on schema public to postgres, anon, authenticated, service_role;
alter default privileges for role postgres in schema public grant all on tables to postgres, anon, authenticated, service_role;
alter default privileges for role postgres in schema public grant all on functions to postgres, anon, authenticated, service_role;
alter default privileges for role postgres in schema public grant all on sequences to postgres, anon, authenticated, service_role;
alter default privileges for role supabase_admin in schema public grant all on tables to postgres, anon, authenticated, service_role;
alter default privileges for role supabase_admin in schema public grant all on functions to postgres, anon, authenticated, service_role;
alter default privileges for role supabase_admin in schema public grant all on sequences to postgres, anon, authenticated, service_role;

-- Where Supabase installs extensions; on postgres's search_path (00000000000003-post-setup.sql).
create schema if not exists extensions;
grant usage on schema extensions to postgres, anon, authenticated, service_role;
grant all on schema extensions to postgres;
