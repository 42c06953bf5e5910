-- =====================================================================
-- LOCAL STAND-IN ONLY. Never apply this file to a real Supabase project.
--
-- Recreates the API roles Supabase provides (supabase/postgres
-- migrations/db/init-scripts/00000000000000-initial-schema.sql and later
-- migrations), so that migrations/ and tests/sql run on a plain PostgreSQL 15.
-- Files in supabase/local-base/ are applied in name order to a fresh database,
-- before migrations/. Roles are cluster-wide, so every statement here is
-- idempotent and safe to re-run for each new database of the same cluster.
-- =====================================================================

do $$
begin
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
end
$$;

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

-- Public schema and default privileges as on Supabase: tables and functions are broadly
-- granted to the API roles and RLS is the real access control. Migrations revoke what
-- they must not expose.
grant usage on schema public to anon, authenticated, service_role;
alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;
