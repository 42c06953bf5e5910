-- Reverses 20251126091300_fsync-flag-audit.sql. On velocity's database (a
-- feature_flags table fs-sync found: fsync.adopted) the audit trail is kept
-- for the next up in fsync_rollback (see the down of fsync-change-log); on a
-- fresh database it is dropped (export it first with npm run flags -- history).
drop trigger if exists fsync_record_flag_change on public.feature_flags;
drop function if exists fsync.record_flag_change();
do $$
begin
  if fsync.was_adopted('relation', 'public.feature_flags') and to_regclass('public.feature_flag_changes') is not null then
    create schema if not exists fsync_rollback;
    revoke all on schema fsync_rollback from public;
    revoke all on public.feature_flag_changes from anon, authenticated, service_role;
    alter table public.feature_flag_changes set schema fsync_rollback;
  end if;
end
$$;
drop table if exists public.feature_flag_changes;
