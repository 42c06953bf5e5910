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
  ('limits.max_project_bytes', '1073741824',
   'Most content bytes of a project''s live files (binaries by size_bytes): what a container must hold. '
   'Default = fs-sync-core MAX_PROJECT_BYTES.'),
  ('limits.max_project_files', '65534',
   'Most live files in a project: what a container must hold. Default = fs-sync-core MAX_PROJECT_FILES.'),
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
-- Executable by the API roles, like the other pure helpers the invoker-rights
-- public RPCs run (RPC arguments, below).
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
grant execute on function fsync.raise_error(text, text, jsonb) to authenticated, service_role, fsync_container;

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
grant execute on function fsync.try_uuid(text) to authenticated, service_role, fsync_container;

-- ---------------------------------------------------------------------
-- RPC arguments
-- ---------------------------------------------------------------------

-- Every public fs-sync RPC takes one unnamed json parameter, so that PostgREST
-- passes it the request body whole ($1::json) instead of converting each named
-- argument to a typed parameter. That conversion runs before the function and
-- fails with Postgres' wording (a \u0000 anywhere in the body: 22P05;
-- expected_version 2147483648: 22003; 1.5 or "abc": 22P02) or not at all (a
-- number or object given for a text parameter becomes its text). The public
-- functions check the body with these helpers instead, then call the typed
-- fsync.* implementation (which SQL callers use directly). A refused argument
-- is PT422 (HTTP 422) with DETAIL {"param": <name>, "rule": <rule>}, rule one of
-- object, json, unknown, required, nul, surrogate, string, uuid, integer,
-- boolean, array (param is null for object and json, which are about the whole
-- body). The argument names are those of the seed's functions.

-- The path (param, param[i], param.key) of the first string or key in p_value
-- holding p_marker, else null.
create function fsync.find_marker(p_value jsonb, p_path text, p_marker text)
returns text
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_item record;
  v_found text;
begin
  case jsonb_typeof(p_value)
    when 'string' then
      if strpos(p_value #>> '{}', p_marker) > 0 then
        return p_path;
      end if;
    when 'array' then
      for v_item in select e.value, e.n - 1 as i from jsonb_array_elements(p_value) with ordinality as e(value, n) loop
        v_found := fsync.find_marker(v_item.value, format('%s[%s]', p_path, v_item.i), p_marker);
        if v_found is not null then
          return v_found;
        end if;
      end loop;
    when 'object' then
      for v_item in select e.key, e.value from jsonb_each(p_value) as e loop
        v_found := case when strpos(v_item.key, p_marker) > 0 then p_path
                        else fsync.find_marker(v_item.value, p_path || '.' || v_item.key, p_marker) end;
        if v_found is not null then
          return v_found;
        end if;
      end loop;
    else
      null;
  end case;
  return null;
end
$$;
revoke all on function fsync.find_marker(jsonb, text, text) from public;
grant execute on function fsync.find_marker(jsonb, text, text) to authenticated, service_role, fsync_container;

-- The body of a call to p_rpc as jsonb, refusing a body that is not an object,
-- a name not in p_params, text that text cannot hold (\u0000, an unpaired UTF-16
-- surrogate), and a p_required argument that is missing or null.
create function fsync.rpc_args(p_rpc text, p_body json, p_params text[], p_required text[])
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_raw text := coalesce(p_body::text, '{}');
  v_clean text := v_raw;
  v_args jsonb;
  v_key text;
  v_where text;
begin
  if json_typeof(coalesce(p_body, '{}'::json)) <> 'object' then  -- reads the first token only
    perform fsync.raise_error('PT422',
      format('invalid arguments to %s: send a JSON object of named arguments (%s)',
             p_rpc, array_to_string(p_params, ', ')),
      jsonb_build_object('param', null, 'rule', 'object'));
  end if;

  -- json keeps "\u0000" and unpaired surrogates ("\ud800") as written, but text
  -- cannot hold them and every function that reads a json string fails on one.
  -- Each becomes a Unicode noncharacter (U+FDD0, U+FDD1) so that the body
  -- parses and the argument holding it can be named. (?<!\\)((?:\\\\)*) skips
  -- escaped backslashes: "\\u0000" is the six characters \u0000.
  if strpos(v_raw, '\u') > 0 then
    v_clean := regexp_replace(v_clean, '(?<!\\)((?:\\\\)*)\\u0000', '\1\\ufdd0', 'g');
    v_clean := regexp_replace(v_clean,
      '(?<!\\)((?:\\\\)*)\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})', '\1\\ufdd1', 'g');
    v_clean := regexp_replace(v_clean,
      '(?<!\\)((?:\\\\)*)(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}', '\1\\ufdd1', 'g');
  end if;
  begin
    v_args := v_clean::jsonb;
  exception when numeric_value_out_of_range or invalid_text_representation then
    -- Left: a number beyond numeric's range, or a surrogate escape the
    -- patterns above cannot tell apart (one right after an escaped backslash).
    perform fsync.raise_error('PT422',
      format('invalid arguments to %s: a value cannot be stored (a number out of range or a malformed \u escape)', p_rpc),
      jsonb_build_object('param', null, 'rule', 'json'));
  end;

  select k into v_key from jsonb_object_keys(v_args) as k where k <> all (p_params) order by k limit 1;
  if v_key is not null then
    perform fsync.raise_error('PT422',
      format('unknown parameter %s for %s: it takes %s', to_jsonb(v_key), p_rpc, array_to_string(p_params, ', ')),
      jsonb_build_object('param', v_key, 'rule', 'unknown'));
  end if;

  if v_clean <> v_raw then
    v_where := fsync.find_marker(v_args, '', U&'\FDD0');
    if v_where is not null then
      perform fsync.raise_error('PT422',
        format('invalid %s: text must not contain the NUL character (U+0000)', ltrim(v_where, '.')),
        jsonb_build_object('param', ltrim(v_where, '.'), 'rule', 'nul'));
    end if;
    v_where := fsync.find_marker(v_args, '', U&'\FDD1');
    perform fsync.raise_error('PT422',
      format('invalid %s: the text holds an unpaired UTF-16 surrogate (a lone \ud800-\udfff escape); send well-formed Unicode',
             ltrim(v_where, '.')),
      jsonb_build_object('param', ltrim(v_where, '.'), 'rule', 'surrogate'));
  end if;

  foreach v_key in array p_required loop
    if coalesce(jsonb_typeof(v_args -> v_key), 'null') = 'null' then
      perform fsync.raise_error('PT422',
        format('missing %s: %s needs %s', v_key, p_rpc, array_to_string(p_required, ', ')),
        jsonb_build_object('param', v_key, 'rule', 'required'));
    end if;
  end loop;
  return v_args;
end
$$;
revoke all on function fsync.rpc_args(text, json, text[], text[]) from public;
grant execute on function fsync.rpc_args(text, json, text[], text[]) to authenticated, service_role, fsync_container;

-- Refuses argument p_param (a name, or a path such as versions[2]) with PT422
-- rule p_rule; p_want says what it must be, p_value is what was given.
create function fsync.refuse_arg(p_param text, p_rule text, p_want text, p_value jsonb)
returns void
language plpgsql
immutable
set search_path = ''
as $$
begin
  perform fsync.raise_error('PT422',
    format('invalid %s: must be %s; got %s', p_param, p_want,
           case jsonb_typeof(p_value)
             when 'string' then to_jsonb(left(p_value #>> '{}', 40))::text
                                || case when char_length(p_value #>> '{}') > 40 then '…' else '' end
             when 'array' then 'an array'
             when 'object' then 'an object'
             else left(coalesce(p_value::text, 'null'), 40)
                  || case when char_length(p_value::text) > 40 then '…' else '' end end),
    jsonb_build_object('param', p_param, 'rule', p_rule));
end
$$;
revoke all on function fsync.refuse_arg(text, text, text, jsonb) from public;
grant execute on function fsync.refuse_arg(text, text, text, jsonb) to authenticated, service_role, fsync_container;

-- p_value as text, refused unless it is a string. p_param names it in errors.
create function fsync.json_text(p_value jsonb, p_param text)
returns text
language plpgsql
immutable
set search_path = ''
as $$
begin
  if jsonb_typeof(p_value) is distinct from 'string' then
    perform fsync.refuse_arg(p_param, 'string', 'a string', p_value);
  end if;
  return p_value #>> '{}';
end
$$;
revoke all on function fsync.json_text(jsonb, text) from public;
grant execute on function fsync.json_text(jsonb, text) to authenticated, service_role, fsync_container;

-- p_value as a bigint, refused unless it is a number with an integral value in
-- [p_min, p_max]. p_param names it in errors.
create function fsync.json_int(p_value jsonb, p_param text, p_min bigint, p_max bigint)
returns bigint
language plpgsql
immutable
set search_path = ''
as $$
begin
  -- case, not or: the casts must not run on a non-number.
  if (case when jsonb_typeof(p_value) = 'number'
           then p_value::numeric <> trunc(p_value::numeric) or p_value::numeric not between p_min and p_max
           else true end) then
    perform fsync.refuse_arg(p_param, 'integer', format('an integer from %s to %s', p_min, p_max), p_value);
  end if;
  return p_value::numeric::bigint;
end
$$;
revoke all on function fsync.json_int(jsonb, text, bigint, bigint) from public;
grant execute on function fsync.json_int(jsonb, text, bigint, bigint) to authenticated, service_role, fsync_container;

-- Argument p_param of p_args (from fsync.rpc_args) as text; null when absent or
-- null (the arg_* helpers below likewise).
create function fsync.arg_text(p_args jsonb, p_param text)
returns text
language sql
immutable
set search_path = ''
as $$
  select case when coalesce(jsonb_typeof(p_args -> p_param), 'null') <> 'null'
              then fsync.json_text(p_args -> p_param, p_param) end
$$;
revoke all on function fsync.arg_text(jsonb, text) from public;
grant execute on function fsync.arg_text(jsonb, text) to authenticated, service_role, fsync_container;

-- A UUID, given as a string.
create function fsync.arg_uuid(p_args jsonb, p_param text)
returns uuid
language plpgsql
immutable
set search_path = ''
as $$
declare
  v jsonb := p_args -> p_param;
begin
  if coalesce(jsonb_typeof(v), 'null') = 'null' then
    return null;
  end if;
  if jsonb_typeof(v) <> 'string' or fsync.try_uuid(v #>> '{}') is null then
    perform fsync.refuse_arg(p_param, 'uuid', 'a UUID string', v);
  end if;
  return (v #>> '{}')::uuid;
end
$$;
revoke all on function fsync.arg_uuid(jsonb, text) from public;
grant execute on function fsync.arg_uuid(jsonb, text) to authenticated, service_role, fsync_container;

-- An integer in [p_min, p_max], given as a JSON number.
create function fsync.arg_int(p_args jsonb, p_param text, p_min bigint, p_max bigint)
returns bigint
language sql
immutable
set search_path = ''
as $$
  select case when coalesce(jsonb_typeof(p_args -> p_param), 'null') <> 'null'
              then fsync.json_int(p_args -> p_param, p_param, p_min, p_max) end
$$;
revoke all on function fsync.arg_int(jsonb, text, bigint, bigint) from public;
grant execute on function fsync.arg_int(jsonb, text, bigint, bigint) to authenticated, service_role, fsync_container;

-- true or false.
create function fsync.arg_bool(p_args jsonb, p_param text)
returns boolean
language plpgsql
immutable
set search_path = ''
as $$
declare
  v jsonb := p_args -> p_param;
begin
  if coalesce(jsonb_typeof(v), 'null') = 'null' then
    return null;
  end if;
  if jsonb_typeof(v) <> 'boolean' then
    perform fsync.refuse_arg(p_param, 'boolean', 'true or false', v);
  end if;
  return v::boolean;
end
$$;
revoke all on function fsync.arg_bool(jsonb, text) from public;
grant execute on function fsync.arg_bool(jsonb, text) to authenticated, service_role, fsync_container;

-- A JSON array, as is (its elements are checked by the caller).
create function fsync.arg_array(p_args jsonb, p_param text)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
declare
  v jsonb := p_args -> p_param;
begin
  if coalesce(jsonb_typeof(v), 'null') = 'null' then
    return null;
  end if;
  if jsonb_typeof(v) <> 'array' then
    perform fsync.refuse_arg(p_param, 'array', 'an array', v);
  end if;
  return v;
end
$$;
revoke all on function fsync.arg_array(jsonb, text) from public;
grant execute on function fsync.arg_array(jsonb, text) to authenticated, service_role, fsync_container;

-- An array of strings.
create function fsync.arg_text_array(p_args jsonb, p_param text)
returns text[]
language sql
immutable
set search_path = ''
as $$
  select array(select fsync.json_text(e.value, format('%s[%s]', p_param, e.n - 1))
                 from jsonb_array_elements(fsync.arg_array(p_args, p_param)) with ordinality as e(value, n)
                order by e.n)
   where coalesce(jsonb_typeof(p_args -> p_param), 'null') <> 'null'
$$;
revoke all on function fsync.arg_text_array(jsonb, text) from public;
grant execute on function fsync.arg_text_array(jsonb, text) to authenticated, service_role, fsync_container;

-- An array of integers in [p_min, p_max] or nulls.
create function fsync.arg_int_array(p_args jsonb, p_param text, p_min bigint, p_max bigint)
returns bigint[]
language sql
immutable
set search_path = ''
as $$
  select array(select case when jsonb_typeof(e.value) <> 'null'
                           then fsync.json_int(e.value, format('%s[%s]', p_param, e.n - 1), p_min, p_max) end
                 from jsonb_array_elements(fsync.arg_array(p_args, p_param)) with ordinality as e(value, n)
                order by e.n)
   where coalesce(jsonb_typeof(p_args -> p_param), 'null') <> 'null'
$$;
revoke all on function fsync.arg_int_array(jsonb, text, bigint, bigint) from public;
grant execute on function fsync.arg_int_array(jsonb, text, bigint, bigint) to authenticated, service_role, fsync_container;

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
