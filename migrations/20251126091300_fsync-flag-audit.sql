-- =====================================================================
-- fsync-flag-audit: every change to public.feature_flags is recorded (who,
-- when, old, new), whoever makes it: the operators' command (npm run flags,
-- which names its operator in the x-fsync-operator request header), the SQL
-- editor, or a migration.
--
-- changed_by: the x-fsync-operator header when a request sent one, else the
-- JWT's subject, else the database user. via: the request's role (service_role,
-- authenticated) or, outside a request, the database user.
--
-- Also (the first migration after fsync-legacy-writes): validates the foreign
-- key fsync-legacy-upgrade added unvalidated.
-- =====================================================================

-- fsync-legacy-upgrade added project_files' foreign key to projects without
-- checking the rows (it holds its locks meanwhile); checking them takes SHARE
-- UPDATE EXCLUSIVE, which blocks neither readers nor writers. Here, after
-- fsync-legacy-writes: until that one the app's direct writes are refused, and
-- the check (a scan of the table) would make that longer.
do $$
begin
  if exists (select 1 from pg_catalog.pg_constraint c
              where c.conrelid = 'public.project_files'::regclass and c.conname = 'project_files_project_id_fkey'
                and not c.convalidated) then
    alter table public.project_files validate constraint project_files_project_id_fkey;
  end if;
end
$$;

-- A down script on velocity's database keeps the trail in fsync_rollback.
do $$
begin
  if to_regclass('fsync_rollback.feature_flag_changes') is not null then
    alter table fsync_rollback.feature_flag_changes set schema public;
  end if;
end
$$;
select fsync.drop_rollback_schema_if_empty();

create table if not exists public.feature_flag_changes (
  id bigint generated always as identity primary key,
  flag_key text not null,
  operation text not null check (operation in ('INSERT', 'UPDATE', 'DELETE')),
  changed_at timestamptz not null default now(),
  changed_by text not null,
  via text not null,
  old_value jsonb,
  new_value jsonb
);
create index if not exists feature_flag_changes_flag_idx on public.feature_flag_changes (flag_key, changed_at);
comment on table public.feature_flag_changes is
  'Audit trail of public.feature_flags: one row per inserted, changed or deleted flag.';

-- RLS on, no policy: like the flags, only the service role and the owner read it.
alter table public.feature_flag_changes enable row level security;
revoke all on public.feature_flag_changes from anon, authenticated, service_role;
grant select on public.feature_flag_changes to service_role;

-- SECURITY DEFINER: writes the audit table, which no API role may write. It runs
-- only as the trigger of feature_flags, whose writers are the service role and
-- the owner; it records and decides nothing else.
create function fsync.record_flag_change()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_headers jsonb := nullif(current_setting('request.headers', true), '')::jsonb;
  v_claims jsonb := nullif(current_setting('request.jwt.claims', true), '')::jsonb;
  v_old jsonb := case when tg_op <> 'INSERT' then to_jsonb(old) end;
  v_new jsonb := case when tg_op <> 'DELETE' then to_jsonb(new) end;
begin
  -- updated_at alone moving is not a change worth a row.
  if tg_op = 'UPDATE' and (v_old - 'updated_at') = (v_new - 'updated_at') then
    return null;
  end if;
  insert into public.feature_flag_changes (flag_key, operation, changed_by, via, old_value, new_value)
  values (coalesce(new.flag_key, old.flag_key), tg_op,
          coalesce(nullif(v_headers ->> 'x-fsync-operator', ''), v_claims ->> 'sub', session_user::text),
          coalesce(v_claims ->> 'role', session_user::text),
          v_old, v_new);
  return null;
end
$$;
revoke all on function fsync.record_flag_change() from public;

create trigger fsync_record_flag_change
  after insert or update or delete on public.feature_flags
  for each row execute function fsync.record_flag_change();
