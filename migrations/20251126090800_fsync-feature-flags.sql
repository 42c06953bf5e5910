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
-- independent between flags.
-- =====================================================================

-- ---------------------------------------------------------------------
-- Tables
-- ---------------------------------------------------------------------

create table public.feature_flags (
  flag_key text primary key check (char_length(flag_key) between 1 and 100),
  enabled boolean not null default false,
  rollout_percentage integer not null default 0 check (rollout_percentage between 0 and 100),
  target_user_ids uuid[] not null default '{}',
  environments text[] not null default '{}',
  description text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

insert into public.feature_flags (flag_key, enabled, rollout_percentage, description) values
  ('FSYNC_USE_RPC', false, 0, 'Client saves through the fs-sync RPCs instead of direct table writes.'),
  ('FSYNC_SERVER_BROADCASTS', false, 0, 'Consumers apply server-authored realtime events (project:<id> topic).'),
  ('FSYNC_SNAPSHOT_HYDRATION', false, 0, 'Preview containers hydrate from a signed snapshot plus events.'),
  ('FSYNC_BULK_GENERATION', false, 0, 'Generated projects are written with bulk_upsert_project_files.'),
  ('FSYNC_KEEP_CLIENT_BROADCAST', false, 0, 'Keep the legacy client-side broadcast alongside server broadcasts.')
on conflict (flag_key) do nothing;

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

-- ---------------------------------------------------------------------
-- RLS
-- ---------------------------------------------------------------------

-- RLS on, no policy: only the service role (BYPASSRLS) and the database owner
-- read or change flags.
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
  v_flag public.feature_flags;
  v_environment text := fsync.setting('environment') #>> '{}';
  v_caller fsync.caller := fsync.current_caller();
begin
  if v_caller.kind <> 'service' then
    p_user_id := v_caller.user_id;
  end if;
  select * into v_flag from public.feature_flags f where f.flag_key = p_flag_key;
  if not found or not v_flag.enabled then
    return false;
  end if;
  if p_user_id is not null and p_user_id = any (v_flag.target_user_ids) then
    return true;
  end if;
  if cardinality(v_flag.environments) > 0 and not (coalesce(v_environment, '') = any (v_flag.environments)) then
    return false;
  end if;
  if v_flag.rollout_percentage >= 100 then
    return true;
  end if;
  if p_user_id is null then
    return false;
  end if;
  return fsync.flag_bucket(p_flag_key, p_user_id) < v_flag.rollout_percentage;
end
$$;
revoke all on function fsync.is_feature_enabled(text, uuid) from public;
grant execute on function fsync.is_feature_enabled(text, uuid) to authenticated, service_role;

create function public.is_feature_enabled(flag_key text, user_id uuid default auth.uid())
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
