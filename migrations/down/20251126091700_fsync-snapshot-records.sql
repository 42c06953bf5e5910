-- Reverses 20251126091700_fsync-snapshot-records.sql: no snapshot records (the
-- edge then finds an unchanged project's archive by building its manifest and
-- probing Storage again). The archives stay in Storage; nothing of the app's
-- is dropped.
drop function if exists public.find_project_snapshot(json);
drop function if exists fsync.find_project_snapshot(uuid, text, boolean, bigint);
drop function if exists public.record_project_snapshot(json);
drop function if exists fsync.record_project_snapshot(uuid, text, bigint, text, bigint, integer);
drop table if exists fsync.project_snapshots;
