-- =====================================================================
-- LOCAL STAND-IN ONLY. Never apply this file to a real Supabase project.
--
-- The part of Supabase Auth's schema that fs-sync touches: auth.users (enough
-- columns for foreign keys and the test helpers) and the SQL helpers
-- auth.uid(), auth.role(), auth.email(), auth.jwt() with the exact bodies of
-- supabase/auth migrations 20220224000811_update_auth_functions.up.sql and
-- 20220531120530_add_auth_jwt_function.up.sql (legacy per-claim GUC first,
-- then the JSON claims PostgREST sets). Ownership and grants as on hosted
-- Supabase: the schema belongs to supabase_admin, the table and helpers to
-- supabase_auth_admin (GoTrue's login role), RLS is on with no policy, and of
-- the roles fs-sync uses only postgres may touch auth.users.
-- =====================================================================

create schema if not exists auth authorization supabase_admin;

create table if not exists auth.users (
  instance_id uuid,
  id uuid not null primary key,
  aud varchar(255),
  role varchar(255),
  email varchar(255),
  encrypted_password varchar(255),
  email_confirmed_at timestamptz,
  last_sign_in_at timestamptz,
  raw_app_meta_data jsonb,
  raw_user_meta_data jsonb,
  is_super_admin boolean,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  phone text default null,
  is_anonymous boolean not null default false,
  deleted_at timestamptz
);

create or replace function auth.uid()
returns uuid
language sql stable
as $$
  select
    coalesce(
      nullif(current_setting('request.jwt.claim.sub', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
    )::uuid
$$;
comment on function auth.uid() is 'Deprecated. Use auth.jwt() -> ''sub'' instead.';

create or replace function auth.role()
returns text
language sql stable
as $$
  select
    coalesce(
      nullif(current_setting('request.jwt.claim.role', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
    )::text
$$;
comment on function auth.role() is 'Deprecated. Use auth.jwt() -> ''role'' instead.';

create or replace function auth.email()
returns text
language sql stable
as $$
  select
    coalesce(
      nullif(current_setting('request.jwt.claim.email', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
    )::text
$$;
comment on function auth.email() is 'Deprecated. Use auth.jwt() -> ''email'' instead.';

create or replace function auth.jwt()
returns jsonb
language sql stable
as $$
  select
    coalesce(
      nullif(current_setting('request.jwt.claim', true), ''),
      nullif(current_setting('request.jwt.claims', true), '')
    )::jsonb
$$;

alter table auth.users enable row level security;
alter table auth.users owner to supabase_auth_admin;
alter function auth.uid() owner to supabase_auth_admin;
alter function auth.role() owner to supabase_auth_admin;
alter function auth.email() owner to supabase_auth_admin;
alter function auth.jwt() owner to supabase_auth_admin;

grant usage on schema auth to postgres, anon, authenticated, service_role;
grant all on schema auth to supabase_auth_admin;
grant execute on function auth.uid(), auth.role(), auth.email(), auth.jwt()
  to postgres, anon, authenticated, service_role;
-- No API role may read or write auth.users, not even service_role: supabase/auth's
-- 20240612123726_enable_rls_update_grants and supabase/postgres's
-- 20211115181400_update-auth-permissions.sql grant to postgres only.
revoke all on auth.users from anon, authenticated, service_role;
grant all on auth.users to postgres;
grant select on auth.users to postgres with grant option;
