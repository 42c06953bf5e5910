-- =====================================================================
-- fsync-feature-flags: rollout switches for the fs-sync client paths.
--
-- Clients never read the table (target_user_ids names users); they ask the
-- RPCs, which answer for the caller only. The service role (fs-sync-edge, admin
-- tools) may read and change flags and evaluate them for any user.
--
-- is_feature_enabled(flag_key, user_id) — user_id is honoured for the service
-- role only; for a signed-in user it is always the caller (auth.uid()) —
-- in this order:
--   unknown or disabled flag                     → false
--   user_id in target_user_ids                   → true
--   environments non-empty and the current
--   environment (fsync.settings 'environment')
--   not in it                                    → false
--   rollout_percentage >= 100                    → true
--   no user_id                                   → false
--   else bucket(flag_key, user_id) < rollout_percentage
-- bucket = first 4 bytes of sha256(UTF-8 of flag_key || ':' || user_id::text),
-- read as an unsigned big-endian integer, mod 100. Stable per (flag, user), and
-- independent between flags. fsync.flag_enabled applies these rules to a given
-- user; server code that acts for a project (fsync.append_event) evaluates
-- flags for the project's owner with it.
--
-- Seeded defaults (fsync.seed_feature_flags): a fresh database runs fs-sync
-- fully; a database that already has flags keeps them and gets new ones off.
-- =====================================================================

-- ---------------------------------------------------------------------
-- Tables
-- ---------------------------------------------------------------------

-- velocity's Phase-0 database already has this table, with flag rows the operator
-- uses: it is kept (with any column it lacks added) and so are its rows; see
-- fsync.seed_feature_flags below.
do $$
begin
  if to_regclass('public.feature_flags') is not null then
    alter table public.feature_flags
      add column if not exists enabled boolean not null default false,
      add column if not exists rollout_percentage integer not null default 0,
      add column if not exists target_user_ids uuid[] not null default '{}',
      add column if not exists environments text[] not null default '{}',
      add column if not exists description text,
      add column if not exists created_at timestamptz not null default now(),
      add column if not exists updated_at timestamptz not null default now();
  end if;
end
$$;

create table if not exists public.feature_flags (
  flag_key text primary key check (char_length(flag_key) between 1 and 100),
  enabled boolean not null default false,
  rollout_percentage integer not null default 0 check (rollout_percentage between 0 and 100),
  target_user_ids uuid[] not null default '{}',
  environments text[] not null default '{}',
  description text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

-- ---------------------------------------------------------------------
-- Helpers
-- ---------------------------------------------------------------------

create function fsync.flag_bucket(p_flag_key text, p_user_id uuid)
returns integer
language sql
immutable
strict
parallel safe
set search_path = ''
as $$
  select (((get_byte(d.h, 0)::bigint << 24) | (get_byte(d.h, 1)::bigint << 16)
           | (get_byte(d.h, 2)::bigint << 8) | get_byte(d.h, 3)::bigint) % 100)::integer
    from (select sha256(convert_to(p_flag_key || ':' || p_user_id::text, 'UTF8')) as h) d
$$;
revoke all on function fsync.flag_bucket(text, uuid) from public;

-- The rules of the header for p_user_id as given. Internal: the caller decides
-- whose flags these are (fsync.is_feature_enabled: the signed-in caller's own).
create function fsync.flag_enabled(p_flag_key text, p_user_id uuid)
returns boolean
language plpgsql
stable
set search_path = ''
as $$
declare
  v_flag public.feature_flags;
begin
  select * into v_flag from public.feature_flags f where f.flag_key = p_flag_key;
  -- coalesce: an adopted table's columns may allow NULL; NULL means off, none, 0.
  if not found or not coalesce(v_flag.enabled, false) then
    return false;
  end if;
  if p_user_id is not null and p_user_id = any (coalesce(v_flag.target_user_ids, '{}')) then
    return true;
  end if;
  -- The environment is read only for a flag limited to some: append_event asks
  -- on every write, under the project's lock.
  if cardinality(v_flag.environments) > 0
     and not (coalesce(fsync.setting('environment') #>> '{}', '') = any (v_flag.environments)) then
    return false;
  end if;
  if coalesce(v_flag.rollout_percentage, 0) >= 100 then
    return true;
  end if;
  if p_user_id is null then
    return false;
  end if;
  return fsync.flag_bucket(p_flag_key, p_user_id) < coalesce(v_flag.rollout_percentage, 0);
end
$$;
revoke all on function fsync.flag_enabled(text, uuid) from public;

-- Inserts the fs-sync flags that are missing; existing rows are never changed.
-- Rows are created here, and what they start as depends on what was there:
--   * no flag rows at all (a fresh database, a new install): fs-sync is the
--     whole system, so FSYNC_USE_RPC, FSYNC_SERVER_BROADCASTS and
--     FSYNC_BULK_GENERATION start enabled at 100%; FSYNC_SNAPSHOT_HYDRATION
--     stays off until the edge is deployed; FSYNC_KEEP_CLIENT_BROADCAST off
--     (no legacy app to keep).
--   * flag rows exist (velocity's Phase-0 database, where the operator rolls
--     fs-sync out): every missing flag starts off, except
--     FSYNC_KEEP_CLIENT_BROADCAST, enabled at 100% when FSYNC_USE_RPC already
--     existed: the legacy app broadcasts its edits today, and that stays so
--     until the operator turns it off.
-- Returns the number of rows inserted. tests/sql/08-flags.sql runs it on both shapes.
create function fsync.seed_feature_flags()
returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_fresh boolean := not exists (select 1 from public.feature_flags);
  v_had_use_rpc boolean := exists (select 1 from public.feature_flags f where f.flag_key = 'FSYNC_USE_RPC');
  v_count integer;
begin
  insert into public.feature_flags (flag_key, enabled, rollout_percentage, description)
  select d.flag_key, d.enabled, case when d.enabled then 100 else 0 end, d.description
    from (values
      ('FSYNC_USE_RPC', v_fresh,
       'Client saves through the fs-sync RPCs instead of direct table writes.'),
      ('FSYNC_SERVER_BROADCASTS', v_fresh,
       'The write functions broadcast server-authored events on project:<id> (evaluated for the project''s owner); off: the change log only.'),
      ('FSYNC_SNAPSHOT_HYDRATION', false,
       'Preview containers hydrate from a signed snapshot plus events.'),
      ('FSYNC_BULK_GENERATION', v_fresh,
       'Signed-in users may call bulk_upsert_project_files (the service role always may).'),
      ('FSYNC_KEEP_CLIENT_BROADCAST', not v_fresh and v_had_use_rpc,
       'Writers may broadcast optimistic edits on project:<id>:edits (never on project:<id>).'))
      as d(flag_key, enabled, description)
   where not exists (select 1 from public.feature_flags f where f.flag_key = d.flag_key);
  get diagnostics v_count = row_count;
  return v_count;
end
$$;
revoke all on function fsync.seed_feature_flags() from public;

-- ---------------------------------------------------------------------
-- Seed
-- ---------------------------------------------------------------------

select fsync.seed_feature_flags();

-- ---------------------------------------------------------------------
-- RLS
-- ---------------------------------------------------------------------

-- RLS on, no policy: only the service role (BYPASSRLS) and the database owner
-- read or change flags. velocity's Phase-0 table had a read policy for
-- authenticated; it stays, but without the table privilege it admits nobody:
-- target_user_ids names users, and the app asks is_feature_enabled, which
-- answers as before. This is the one privilege of the app's that fs-sync takes
-- away; the down script gives it back.
alter table public.feature_flags enable row level security;

revoke all on public.feature_flags from anon, authenticated, service_role;
grant select, insert, update, delete on public.feature_flags to service_role;

-- ---------------------------------------------------------------------
-- Public API
-- ---------------------------------------------------------------------

-- SECURITY DEFINER: reads feature_flags and the environment from fsync.settings,
-- which no client role may read. Reveals only a boolean, and only about the
-- caller: p_user_id counts for the service role (and direct privileged
-- connections); anyone else is evaluated as themselves (auth.uid(), parsed
-- without throwing by fsync.current_caller).
create function fsync.is_feature_enabled(p_flag_key text, p_user_id uuid)
returns boolean
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_caller fsync.caller := fsync.current_caller();
begin
  if v_caller.kind <> 'service' then
    p_user_id := v_caller.user_id;
  end if;
  return fsync.flag_enabled(p_flag_key, p_user_id);
end
$$;
revoke all on function fsync.is_feature_enabled(text, uuid) from public;
grant execute on function fsync.is_feature_enabled(text, uuid) to authenticated, service_role;

-- Replaces velocity's Phase-0 function of the same name, arguments and result
-- (create or replace: what depends on it keeps working); the down script puts
-- the Phase-0 one back. Unlike it, a signed-in user is evaluated as themselves.
create or replace function public.is_feature_enabled(flag_key text, user_id uuid default auth.uid())
returns boolean
language sql
stable
security invoker
set search_path = ''
as $$
  select fsync.is_feature_enabled(is_feature_enabled.flag_key, is_feature_enabled.user_id)
$$;
comment on function public.is_feature_enabled(text, uuid) is
  'Whether a flag is on for the caller: enabled, then targeting, environment, stable percentage bucket. user_id is honoured for the service role only.';
revoke all on function public.is_feature_enabled(text, uuid) from public, anon;
grant execute on function public.is_feature_enabled(text, uuid) to authenticated, service_role;

-- SECURITY DEFINER: as fsync.is_feature_enabled.
create function fsync.get_enabled_features()
returns text[]
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce(array_agg(f.flag_key order by f.flag_key), '{}')
    from public.feature_flags f
   where fsync.is_feature_enabled(f.flag_key, (fsync.current_caller()).user_id)
$$;
revoke all on function fsync.get_enabled_features() from public;
grant execute on function fsync.get_enabled_features() to authenticated, service_role;

create function public.get_enabled_features()
returns text[]
language sql
stable
security invoker
set search_path = ''
as $$
  select fsync.get_enabled_features()
$$;
comment on function public.get_enabled_features() is 'Keys of the flags enabled for the calling user, sorted.';
revoke all on function public.get_enabled_features() from public, anon;
grant execute on function public.get_enabled_features() to authenticated, service_role;
