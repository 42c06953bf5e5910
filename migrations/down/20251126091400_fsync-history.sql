-- Reverses 20251126091400_fsync-history.sql: no restore and no diff. The
-- bulk:apply events restores wrote stay in the log (they are ordinary bulks).
drop function if exists public.diff_project(json);
drop function if exists fsync.diff_project(uuid, bigint, bigint);
drop function if exists public.restore_project(json);
drop function if exists fsync.restore_project(uuid, bigint, bigint, text[]);
drop function if exists fsync.check_point(uuid, text, bigint, bigint);
drop function if exists fsync.versions_between(uuid, bigint, bigint);
drop function if exists fsync.event_files(uuid, bigint);
