-- Reverses 20251126091000_fsync-realtime-auth.sql.
drop policy if exists "fsync: containers receive their project's events" on realtime.messages;
drop policy if exists "fsync: members receive project events" on realtime.messages;
