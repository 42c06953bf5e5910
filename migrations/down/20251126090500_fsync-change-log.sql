-- Reverses 20251126090500_fsync-change-log.sql.
--
-- On velocity's database (a projects table fs-sync found: fsync.adopted) the log
-- is not dropped: it is what followers' positions refer to. It moves, with the
-- time of the rollback, to the private schema fsync_rollback (no API role has
-- any privilege there), and the next up brings it back and continues it
-- (fsync-change-log "After a rollback"). Drop fsync_rollback by hand to forget it.
drop function if exists fsync.append_event(uuid, text, jsonb, text, uuid, boolean);
drop function if exists fsync.server_broadcasts(uuid);
do $$
begin
  if fsync.was_adopted('relation', 'public.projects') and to_regclass('public.project_events') is not null then
    create schema if not exists fsync_rollback;
    revoke all on schema fsync_rollback from public;
    comment on schema fsync_rollback is
      'fs-sync''s change log, memberships and flag audit, kept by its down scripts for the next up. Not exposed.';
    create table if not exists fsync_rollback.state (key text primary key, value jsonb not null);
    insert into fsync_rollback.state (key, value) values ('rolled_back_at', to_jsonb(now()))
    on conflict (key) do nothing;
    drop policy if exists "members can read project events" on public.project_events;
    revoke all on public.project_events from anon, authenticated, service_role;
    alter table public.project_events set schema fsync_rollback;
  end if;
end
$$;
drop table if exists public.project_events;
