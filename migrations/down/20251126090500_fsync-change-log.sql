-- Reverses 20251126090500_fsync-change-log.sql.
drop function if exists fsync.append_event(uuid, text, jsonb, text, uuid);
drop table if exists public.project_events;
