-- =====================================================================
-- fsync-setup: the private schema, the container role, settings, error
-- helpers and caller identity that every later fs-sync migration uses.
--
-- Conventions for all fs-sync migrations:
--   * Tables and privileged helpers live in the private schema `fsync`, which
--     PostgREST does not expose. The API is `public` functions: thin SECURITY
--     INVOKER wrappers around `fsync` implementations.
--   * EXECUTE is revoked from PUBLIC right after each function and granted per
--     full signature. We do not change the global default privileges (basejump
--     does `alter default privileges revoke execute on functions from public`):
--     on a real project that would silently change objects that are not ours.
--     tests/sql/00-schema.sql fails if any function forgets its revoke.
--   * SECURITY DEFINER only where needed, with a comment saying why,
--     `set search_path = ''` and schema-qualified names everywhere.
-- =====================================================================

-- ---------------------------------------------------------------------
-- Roles
-- ---------------------------------------------------------------------

-- fsync_container: the role of container tokens minted by fs-sync-edge (JWT
-- role claim). Claims: sub = session id (not a user uuid), project_id,
-- session_id, scope 'fsync:read'. It may execute only the read RPCs for its own
-- project and read its own realtime topic.
-- It inherits `anon` so that it gets exactly the schema usage and function grants
-- an anon request has (auth.jwt(), realtime.topic(), SELECT on realtime.messages
-- for the channel-join check) without this migration granting anything in the
-- Supabase-owned auth/realtime schemas. The container already holds the anon key,
-- so this adds no capability.
do $$
begin
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'fsync_container') then
    create role fsync_container nologin inherit;
  end if;
end
$$;
grant anon to fsync_container;
grant fsync_container to authenticator;
alter role fsync_container set statement_timeout = '8s';

-- ---------------------------------------------------------------------
-- Schema
-- ---------------------------------------------------------------------

create schema if not exists fsync;
comment on schema fsync is 'fs-sync internals. Not exposed through PostgREST; the API is public.* functions.';
revoke all on schema fsync from public;
-- Usage lets the public wrappers and RLS policies call the few fsync functions
-- granted to these roles. No fsync table is granted to any API role.
grant usage on schema fsync to authenticated, service_role, fsync_container;

-- ---------------------------------------------------------------------
-- Tables
-- ---------------------------------------------------------------------

create table fsync.settings (
  key text primary key,
  value jsonb not null,
  description text not null,
  updated_at timestamptz not null default now()
);
comment on table fsync.settings is 'Configurable limits and environment. Edit as the database owner.';

insert into fsync.settings (key, value, description) values
  ('limits.max_file_bytes', '5242880', 'Largest text file content in bytes (octet_length of UTF-8 content).'),
  ('limits.max_bulk_files', '5000', 'Most entries in one bulk_upsert_project_files call.'),
  ('limits.max_bulk_bytes', '52428800', 'Largest total content bytes in one bulk_upsert_project_files call.'),
  ('rate_limit.enabled', 'true', 'Token bucket per (user, project) on write RPCs; service role is exempt.'),
  ('rate_limit.capacity', '200', 'Bucket size: writes a user may burst per project.'),
  ('rate_limit.refill_per_second', '50', 'Tokens added per second.'),
  ('environment', '"development"', 'Environment name matched against feature_flags.environments.')
on conflict (key) do nothing;

-- ---------------------------------------------------------------------
-- Helpers
-- ---------------------------------------------------------------------

create function fsync.setting(p_key text)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select s.value from fsync.settings s where s.key = setting.p_key
$$;
revoke all on function fsync.setting(text) from public;

create function fsync.setting_bigint(p_key text, p_default bigint)
returns bigint
language sql
stable
set search_path = ''
as $$
  select coalesce((select (s.value #>> '{}')::bigint from fsync.settings s where s.key = setting_bigint.p_key),
                  setting_bigint.p_default)
$$;
revoke all on function fsync.setting_bigint(text, bigint) from public;

-- Raises an error PostgREST maps to an HTTP status: PTxyz gives status xyz, 42501
-- gives 401/403. DETAIL carries JSON for clients; messages are for people.
create function fsync.raise_error(p_code text, p_message text, p_detail jsonb default null)
returns void
language plpgsql
set search_path = ''
as $$
begin
  if p_detail is null then
    raise exception using errcode = p_code, message = p_message;
  end if;
  raise exception using errcode = p_code, message = p_message, detail = p_detail::text;
end
$$;
revoke all on function fsync.raise_error(text, text, jsonb) from public;

create function fsync.try_uuid(p_text text)
returns uuid
language sql
immutable
set search_path = ''
as $$
  select case when p_text ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
              then p_text::uuid end
$$;
revoke all on function fsync.try_uuid(text) from public;

-- ---------------------------------------------------------------------
-- Caller identity
-- ---------------------------------------------------------------------

-- kind: 'service' (service_role, or a direct connection as a superuser/BYPASSRLS
-- role such as postgres), 'user' (authenticated), 'container' (fsync_container),
-- 'anon', or 'other'.
create type fsync.caller as (
  kind text,
  role text,
  user_id uuid,
  project_id uuid,
  scopes text[]
);

-- The role comes from the `role` setting (what PostgREST, Realtime and Storage
-- switch into with set_config('role', …, true)); inside SECURITY DEFINER functions
-- it still names the invoker's role, and claims cannot change it. Identity
-- (sub, project_id, scope) comes from the JWT claims, read from the same settings
-- as auth.uid()/auth.jwt(), but parsed without throwing on a non-uuid sub.
create function fsync.current_caller()
returns fsync.caller
language plpgsql
stable
set search_path = ''
as $$
declare
  v_role text := nullif(current_setting('role', true), 'none');
  v_claims jsonb := coalesce(nullif(current_setting('request.jwt.claim', true), ''),
                             nullif(current_setting('request.jwt.claims', true), ''))::jsonb;
  v_sub text := coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''), v_claims ->> 'sub');
  v_result fsync.caller;
begin
  if v_role is null then
    v_role := session_user;
  end if;
  v_result.role := v_role;
  if v_role = 'service_role' then
    v_result.kind := 'service';
  elsif v_role = 'authenticated' then
    v_result.kind := 'user';
    v_result.user_id := fsync.try_uuid(v_sub);
  elsif v_role = 'fsync_container' then
    v_result.kind := 'container';
    v_result.project_id := fsync.try_uuid(v_claims ->> 'project_id');
    v_result.scopes := string_to_array(coalesce(v_claims ->> 'scope', ''), ' ');
  elsif v_role = 'anon' then
    v_result.kind := 'anon';
  elsif exists (select 1 from pg_catalog.pg_roles r
                 where r.rolname = v_role and (r.rolsuper or r.rolbypassrls)) then
    v_result.kind := 'service';
  else
    v_result.kind := 'other';
  end if;
  return v_result;
end
$$;
revoke all on function fsync.current_caller() from public;
