-- =====================================================================
-- TEST HELPERS. Never apply this file to a production database.
--
-- A `tests` schema in the style of basejump's supabase_test_helpers: create
-- users, and act as a set of JWT claims the way PostgREST does (role and
-- request.jwt.claims set transaction-locally). Pure SQL with no dependency on
-- the rest of supabase/local-base beyond auth.users, so it can also seed a
-- Supabase CLI stack (`supabase/config.toml` [db.seed]) for `supabase test db`.
--
--   select tests.create_supabase_user('alice');        -- returns the user's uuid
--   select tests.authenticate_as('alice');             -- role authenticated, claims of alice
--   select tests.authenticate_as_service_role();
--   select tests.authenticate_as_claims('{"role":"fsync_container","project_id":"…"}');
--   select tests.clear_authentication();               -- role anon, claims {"role":"anon"}
--   select tests.reset_authentication();               -- back to the session user, no claims
--   select tests.error_of($$select 1/0$$);             -- {code,message,detail,hint} or null
--   select tests.remember('p1', some_uuid);            -- keep a fixture id for the transaction
--   select tests.recall('p1');                         -- … and read it back as any role
--
-- Created by postgres, as a seed is on a Supabase CLI stack: SECURITY DEFINER
-- here means postgres's rights (ALL on auth.users, BYPASSRLS), not a
-- superuser's.
-- =====================================================================

set role postgres;

create schema if not exists tests;
grant usage on schema tests to public;

create or replace function tests.create_supabase_user(identifier text, email text default null)
returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_id uuid := gen_random_uuid();
begin
  insert into auth.users (id, aud, role, email, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
  values (
    v_id, 'authenticated', 'authenticated',
    coalesce(create_supabase_user.email, v_id::text || '@example.test'),
    '{"provider": "email", "providers": ["email"]}'::jsonb,
    jsonb_build_object('test_identifier', create_supabase_user.identifier),
    now(), now()
  );
  return v_id;
end
$$;

create or replace function tests.get_supabase_user(identifier text)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_user jsonb;
begin
  select jsonb_build_object(
           'id', u.id, 'email', u.email,
           'raw_app_meta_data', u.raw_app_meta_data,
           'raw_user_meta_data', u.raw_user_meta_data)
    into v_user
    from auth.users u
   where u.raw_user_meta_data ->> 'test_identifier' = get_supabase_user.identifier
   limit 1;
  if v_user is null then
    raise exception 'test user "%" not found; create it with tests.create_supabase_user', identifier;
  end if;
  return v_user;
end
$$;

create or replace function tests.get_supabase_uid(identifier text)
returns uuid
language sql
stable
set search_path = ''
as $$
  select (tests.get_supabase_user(get_supabase_uid.identifier) ->> 'id')::uuid
$$;

-- Sets the role and claims for the rest of the transaction, like PostgREST's
-- set_config('role', …, true) and set_config('request.jwt.claims', …, true).
-- Not security definer: the role GUC cannot be set inside a definer function.
create or replace function tests.authenticate_as_claims(claims jsonb)
returns void
language plpgsql
set search_path = ''
as $$
declare
  v_role text := coalesce(nullif(claims ->> 'role', ''), 'anon');
begin
  perform set_config('role', v_role, true);
  perform set_config('request.jwt.claims', (claims || jsonb_build_object('role', v_role))::text, true);
end
$$;

create or replace function tests.authenticate_as(identifier text)
returns void
language plpgsql
set search_path = ''
as $$
declare
  v_user jsonb := tests.get_supabase_user(authenticate_as.identifier);
  v_now bigint := extract(epoch from now())::bigint;
begin
  perform tests.authenticate_as_claims(jsonb_build_object(
    'sub', v_user ->> 'id',
    'role', 'authenticated',
    'aud', 'authenticated',
    'email', v_user ->> 'email',
    'app_metadata', v_user -> 'raw_app_meta_data',
    'user_metadata', v_user -> 'raw_user_meta_data',
    'session_id', gen_random_uuid(),
    'is_anonymous', false,
    'aal', 'aal1',
    'iat', v_now,
    'exp', v_now + 3600));
end
$$;

create or replace function tests.authenticate_as_service_role()
returns void
language sql
set search_path = ''
as $$
  select tests.authenticate_as_claims('{"role": "service_role", "iss": "supabase"}'::jsonb)
$$;

-- A live fs-sync container session (fsync.sessions, migrations/*_fsync-sessions.sql) for
-- project_id, as the edge's POST /sessions records it; nothing when that table or the project
-- does not exist. Dynamic SQL: this file is applied before the migrations.
create or replace function tests.open_container_session(session_id text, project_id uuid)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  if to_regclass('fsync.sessions') is not null then
    execute 'insert into fsync.sessions (session_id, project_id, expires_at)
             select $1, p.id, now() + interval ''1 hour'' from public.projects p where p.id = $2
             on conflict do nothing'
      using open_container_session.session_id, open_container_session.project_id;
  end if;
end
$$;

-- Claims of an fs-sync container token (docs/contracts.md "Container token and env"), with a
-- live session behind them.
create or replace function tests.container_claims(project_id uuid, scope text default 'fsync:read')
returns jsonb
language plpgsql
volatile
set search_path = ''
as $$
declare
  v_session_id text := gen_random_uuid()::text;
begin
  perform tests.open_container_session(v_session_id, container_claims.project_id);
  return jsonb_build_object(
    'role', 'fsync_container',
    'sub', v_session_id,
    'session_id', v_session_id,
    'project_id', container_claims.project_id,
    'scope', container_claims.scope,
    'iat', extract(epoch from now())::bigint,
    'exp', extract(epoch from now())::bigint + 900);
end
$$;

create or replace function tests.authenticate_as_container(project_id uuid, scope text default 'fsync:read')
returns void
language sql
set search_path = ''
as $$
  select tests.authenticate_as_claims(tests.container_claims(authenticate_as_container.project_id,
                                                             authenticate_as_container.scope))
$$;

-- An anonymous PostgREST request: role anon, claims {"role":"anon"}.
create or replace function tests.clear_authentication()
returns void
language plpgsql
set search_path = ''
as $$
begin
  perform set_config('role', 'anon', true);
  perform set_config('request.jwt.claims', '{"role": "anon"}', true);
end
$$;

-- Back to the session user (a direct, privileged connection) with no claims.
create or replace function tests.reset_authentication()
returns void
language plpgsql
set search_path = ''
as $$
begin
  perform set_config('role', 'none', true);
  perform set_config('request.jwt.claims', '', true);
end
$$;

-- Runs a statement as the current role and returns the error it raised, if any,
-- as {code, message, detail, hint}; null when it succeeded. A failed statement leaves no effects.
create or replace function tests.error_of(statement text)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_code text;
  v_message text;
  v_detail text;
  v_hint text;
begin
  begin
    execute statement;
  exception when others then
    get stacked diagnostics v_code = returned_sqlstate, v_message = message_text,
                            v_detail = pg_exception_detail, v_hint = pg_exception_hint;
    return jsonb_build_object('code', v_code, 'message', v_message,
                              'detail', nullif(v_detail, ''), 'hint', nullif(v_hint, ''));
  end;
  return null;
end
$$;

-- Fixture ids, kept in transaction-local settings so every role can read them.
create or replace function tests.remember(name text, value uuid)
returns uuid
language sql
volatile
set search_path = ''
as $$
  select set_config('tests.' || remember.name, remember.value::text, true)::uuid
$$;

create or replace function tests.recall(name text)
returns uuid
language sql
stable
set search_path = ''
as $$
  select nullif(current_setting('tests.' || recall.name, true), '')::uuid
$$;

grant execute on all functions in schema tests to public;

reset role;
