-- Reverses 20251126091800_fsync-planner-stats.sql: project_files' statistics
-- are autovacuum's alone again. Nothing of the app's is dropped.
drop trigger if exists fsync_refresh_statistics on public.project_files;
drop function if exists fsync.refresh_file_statistics();
