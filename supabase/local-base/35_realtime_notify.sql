-- =====================================================================
-- LOCAL STAND-IN ONLY. Never apply this file to a real Supabase project.
--
-- How fs-sync-dev (crates/devstack) learns about committed realtime.messages
-- rows. Supabase Realtime reads them from a logical replication slot; the
-- local stack LISTENs on channel fsync_realtime instead. NOTIFY is delivered
-- only after commit and in commit order, and a rolled-back insert (such as
-- the probe rows of a channel-join authorization check) notifies nobody, so
-- the observable behaviour is the same: delivery after commit, in commit
-- order, nothing for rolled-back writes. The payload is the message itself
-- as JSON ({id, topic, event, private, payload}) when it fits NOTIFY's
-- 8000-byte limit, so delivery needs no read of the table (a query per
-- message was a third of a millisecond of an edit's way to a container);
-- a larger or binary message sends only its id and the server loads the row.
-- =====================================================================

create or replace function realtime.fsync_dev_notify()
returns trigger
language plpgsql
set search_path = ''
as $$
declare
  v_message text;
begin
  if new.binary_payload is null then
    v_message := pg_catalog.json_build_object('id', new.id, 'topic', new.topic, 'event', coalesce(new.event, ''),
                                              'private', coalesce(new.private, false), 'payload', new.payload)::text;
  end if;
  perform pg_catalog.pg_notify('fsync_realtime',
                               case when pg_catalog.octet_length(v_message) < 7900 then v_message
                                    else new.id::text end);
  return null;
end
$$;

drop trigger if exists fsync_dev_notify on realtime.messages;
create trigger fsync_dev_notify
  after insert on realtime.messages
  for each row execute function realtime.fsync_dev_notify();
