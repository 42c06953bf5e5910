-- =====================================================================
-- LOCAL STAND-IN ONLY. Never apply this file to a real Supabase project.
--
-- How fs-sync-dev (crates/devstack) learns about committed realtime.messages
-- rows. Supabase Realtime reads them from a logical replication slot; the
-- local stack LISTENs on channel fsync_realtime instead. NOTIFY is delivered
-- only after commit and in commit order, and a rolled-back insert (such as
-- the probe rows of a channel-join authorization check) notifies nobody, so
-- the observable behaviour is the same: delivery after commit, in commit
-- order, nothing for rolled-back writes. The payload is only the row id,
-- because a message can exceed NOTIFY's 8000-byte payload limit; the server
-- loads the row by id.
-- =====================================================================

create or replace function realtime.fsync_dev_notify()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  perform pg_catalog.pg_notify('fsync_realtime', new.id::text);
  return null;
end
$$;

drop trigger if exists fsync_dev_notify on realtime.messages;
create trigger fsync_dev_notify
  after insert on realtime.messages
  for each row execute function realtime.fsync_dev_notify();
