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
-- Hosted parity: lets postgres (which runs the migrations and `supabase test db`)
-- SET ROLE fsync_container, as the pgTAP suite does. On PostgreSQL 16+ the
-- creator of a role may not SET ROLE to it without this grant; postgres already
-- bypasses RLS, so acting as a container adds nothing.
grant fsync_container to postgres;
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
-- What was here before fs-sync
-- ---------------------------------------------------------------------

-- velocity's production database already has projects, project_files,
-- feature_flags, is_feature_enabled, buckets and policies of its own (the
-- Phase-0 state, docs/adoption.md). Before any fs-sync migration changes one of
-- them, this records what it was: the later migrations adapt to what is
-- recorded here (keep the app's grants and policies, extend its tables), and
-- the down scripts put it back. On a fresh database the table stays empty.
-- kind 'relation': every table and view of public ({kind, columns, acl,
-- column_acl, rls, policies, definition, options, comment}; feature_flags also
-- its rows); 'function': every
-- function of public ({definition, acl}); 'bucket': the rows of the buckets
-- fs-sync uses; 'policy': storage.objects' policies.
create table fsync.adopted (
  kind text not null check (kind in ('relation', 'function', 'bucket', 'policy')),
  name text not null,
  state jsonb not null,
  recorded_at timestamptz not null default now(),
  primary key (kind, name)
);
comment on table fsync.adopted is
  'What fs-sync found before its first migration (the app''s objects): later migrations adapt to it, down scripts restore it.';

-- A relation's grants as [{grantee, privilege, grantable}] (grantee PUBLIC for
-- the pseudo-role), leaving out its owner's own.
create function fsync.acl_of(p_acl aclitem[], p_owner oid)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select coalesce(jsonb_agg(jsonb_build_object(
           'grantee', case when a.grantee = 0 then 'PUBLIC' else pg_catalog.pg_get_userbyid(a.grantee) end,
           'privilege', a.privilege_type, 'grantable', a.is_grantable)
           order by a.grantee, a.privilege_type), '[]'::jsonb)
    from pg_catalog.aclexplode(p_acl) a
   where a.grantee <> p_owner
$$;
revoke all on function fsync.acl_of(aclitem[], oid) from public;

create function fsync.describe_relation(p_rel regclass)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_build_object(
    'kind', c.relkind,
    'owner', pg_catalog.pg_get_userbyid(c.relowner),
    'columns', (select coalesce(jsonb_agg(jsonb_build_object(
                  'name', a.attname, 'type', pg_catalog.format_type(a.atttypid, a.atttypmod),
                  'not_null', a.attnotnull,
                  'default', pg_catalog.pg_get_expr(d.adbin, d.adrelid)) order by a.attnum), '[]'::jsonb)
                  from pg_catalog.pg_attribute a
                  left join pg_catalog.pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
                 where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped),
    'acl', fsync.acl_of(c.relacl, c.relowner),
    'column_acl', (select coalesce(jsonb_agg(jsonb_build_object('column', a.attname) || g order by a.attnum), '[]'::jsonb)
                     from pg_catalog.pg_attribute a,
                          jsonb_array_elements(fsync.acl_of(a.attacl, c.relowner)) g
                    where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped and a.attacl is not null),
    'rls', c.relrowsecurity,
    'force_rls', c.relforcerowsecurity,
    'policies', (select coalesce(jsonb_agg(jsonb_build_object(
                   'name', p.policyname, 'permissive', p.permissive, 'cmd', p.cmd, 'roles', p.roles,
                   'qual', p.qual, 'with_check', p.with_check) order by p.policyname), '[]'::jsonb)
                   from pg_catalog.pg_policies p
                  where p.schemaname = n.nspname and p.tablename = c.relname),
    'constraints', (select coalesce(jsonb_agg(jsonb_build_object(
                      'name', k.conname, 'type', k.contype, 'definition', pg_catalog.pg_get_constraintdef(k.oid))
                      order by k.conname), '[]'::jsonb)
                      from pg_catalog.pg_constraint k where k.conrelid = c.oid),
    'indexes', (select coalesce(jsonb_agg(i.indexrelid::regclass::text order by 1), '[]'::jsonb)
                  from pg_catalog.pg_index i where i.indrelid = c.oid),
    'triggers', (select coalesce(jsonb_agg(t.tgname order by t.tgname), '[]'::jsonb)
                   from pg_catalog.pg_trigger t where t.tgrelid = c.oid and not t.tgisinternal),
    'definition', case when c.relkind in ('v', 'm') then pg_catalog.pg_get_viewdef(c.oid) end,
    'options', to_jsonb(c.reloptions),
    'comment', pg_catalog.obj_description(c.oid, 'pg_class'))
    from pg_catalog.pg_class c
    join pg_catalog.pg_namespace n on n.oid = c.relnamespace
   where c.oid = p_rel
$$;
revoke all on function fsync.describe_relation(regclass) from public;

-- The app's objects, as they are before fs-sync changes anything. Runs once,
-- here; recording again keeps the first record.
create function fsync.record_adopted()
returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_count integer;
begin
  insert into fsync.adopted (kind, name, state)
  select 'relation', format('%I.%I', n.nspname, c.relname), fsync.describe_relation(c.oid)
    from pg_catalog.pg_class c
    join pg_catalog.pg_namespace n on n.oid = c.relnamespace
   where n.nspname = 'public' and c.relkind in ('r', 'p', 'v', 'm')
     and not exists (select 1 from pg_catalog.pg_depend d
                      where d.classid = 'pg_catalog.pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')
  union all
  select 'function', p.oid::regprocedure::text,
         jsonb_build_object('definition', pg_catalog.pg_get_functiondef(p.oid),
                            'acl', fsync.acl_of(coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner)), p.proowner))
    from pg_catalog.pg_proc p
   where p.pronamespace = 'public'::regnamespace and p.prokind in ('f', 'p')
     and not exists (select 1 from pg_catalog.pg_depend d
                      where d.classid = 'pg_catalog.pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e')
  union all
  select 'bucket', b.id, to_jsonb(b)
    from storage.buckets b
   where b.id in ('project-snapshots', 'preview-bundles', 'project-assets')
  union all
  select 'policy', format('%I.%I.%I', p.schemaname, p.tablename, p.policyname), to_jsonb(p)
    from pg_catalog.pg_policies p
   where p.schemaname in ('storage', 'realtime')
  on conflict do nothing;
  get diagnostics v_count = row_count;
  -- and the flags as the operator left them, which fs-sync keeps
  if to_regclass('public.feature_flags') is not null then
    execute $sql$
      update fsync.adopted a
         set state = a.state || jsonb_build_object('rows', (select coalesce(jsonb_agg(to_jsonb(f) order by f.flag_key), '[]')
                                                              from public.feature_flags f))
       where a.kind = 'relation' and a.name = 'public.feature_flags' and not a.state ? 'rows'
    $sql$;
  end if;
  return v_count;
end
$$;
revoke all on function fsync.record_adopted() from public;

select fsync.record_adopted();

-- Whether p_name (a relation 'public.x', a function signature, a bucket id)
-- was there before fs-sync.
create function fsync.was_adopted(p_kind text, p_name text)
returns boolean
language sql
stable
set search_path = ''
as $$
  select exists (select 1 from fsync.adopted a where a.kind = p_kind and a.name = p_name)
$$;
revoke all on function fsync.was_adopted(text, text) from public;

-- A down script run on velocity's database keeps what fs-sync alone knows
-- (the change log, memberships, the flag audit trail) in the private schema
-- fsync_rollback rather than dropping it; the next up moves each back and drops
-- the schema once it is empty.
create function fsync.drop_rollback_schema_if_empty()
returns void
language plpgsql
set search_path = ''
as $$
begin
  if exists (select 1 from pg_catalog.pg_namespace n where n.nspname = 'fsync_rollback')
     and not exists (select 1 from pg_catalog.pg_class c
                       join pg_catalog.pg_namespace n on n.oid = c.relnamespace
                      where n.nspname = 'fsync_rollback' and c.relkind in ('r', 'p', 'v')) then
    drop schema fsync_rollback;
  end if;
end
$$;
revoke all on function fsync.drop_rollback_schema_if_empty() from public;

-- Puts back a relation's recorded grants for the API roles and PUBLIC (table
-- and column grants): what fs-sync granted or revoked on an object of the app
-- is undone, nothing else is touched. For down scripts.
create function fsync.restore_grants(p_rel regclass, p_state jsonb)
returns void
language plpgsql
set search_path = ''
as $$
declare
  v_role text;
  v_grant jsonb;
begin
  foreach v_role in array array['public', 'anon', 'authenticated', 'service_role', 'fsync_container'] loop
    if v_role = 'public' or exists (select 1 from pg_catalog.pg_roles r where r.rolname = v_role) then
      -- Revoking a table privilege also revokes it on every column.
      execute format('revoke all on %s from %s', p_rel, case when v_role = 'public' then 'public' else quote_ident(v_role) end);
    end if;
  end loop;
  for v_grant in select * from jsonb_array_elements(p_state -> 'acl') loop
    if v_grant ->> 'grantee' in ('PUBLIC', 'anon', 'authenticated', 'service_role') then
      execute format('grant %s on %s to %s%s', v_grant ->> 'privilege', p_rel,
                     case when v_grant ->> 'grantee' = 'PUBLIC' then 'public' else quote_ident(v_grant ->> 'grantee') end,
                     case when (v_grant ->> 'grantable')::boolean then ' with grant option' else '' end);
    end if;
  end loop;
  for v_grant in select * from jsonb_array_elements(coalesce(p_state -> 'column_acl', '[]')) loop
    if v_grant ->> 'grantee' in ('PUBLIC', 'anon', 'authenticated', 'service_role') then
      execute format('grant %s (%I) on %s to %s%s', v_grant ->> 'privilege', v_grant ->> 'column', p_rel,
                     case when v_grant ->> 'grantee' = 'PUBLIC' then 'public' else quote_ident(v_grant ->> 'grantee') end,
                     case when (v_grant ->> 'grantable')::boolean then ' with grant option' else '' end);
    end if;
  end loop;
end
$$;
revoke all on function fsync.restore_grants(regclass, jsonb) from public;

-- ---------------------------------------------------------------------
-- Helpers
-- ---------------------------------------------------------------------

-- The helpers on the write path are PL/pgSQL, not SQL: a SQL function with a
-- SET clause is never inlined, and one called from PL/pgSQL or from a statement
-- is parsed and planned again in every transaction, where PL/pgSQL keeps its
-- plans for the session (about 0.1 ms per call on the write path's ~15 calls).
create function fsync.setting(p_key text)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
begin
  return (select s.value from fsync.settings s where s.key = setting.p_key);
end
$$;
revoke all on function fsync.setting(text) from public;

create function fsync.setting_bigint(p_key text, p_default bigint)
returns bigint
language plpgsql
stable
set search_path = ''
as $$
begin
  return coalesce((select (s.value #>> '{}')::bigint from fsync.settings s where s.key = setting_bigint.p_key),
                  setting_bigint.p_default);
end
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
language plpgsql
immutable
set search_path = ''
as $$
begin
  return case when p_text ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
              then p_text::uuid end;
end
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
language plpgsql
immutable
set search_path = ''
as $$
begin
  return case when coalesce(jsonb_typeof(p_args -> p_param), 'null') <> 'null'
              then fsync.json_text(p_args -> p_param, p_param) end;
end
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
language plpgsql
immutable
set search_path = ''
as $$
begin
  return case when coalesce(jsonb_typeof(p_args -> p_param), 'null') <> 'null'
              then fsync.json_int(p_args -> p_param, p_param, p_min, p_max) end;
end
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
