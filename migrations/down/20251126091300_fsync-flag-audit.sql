-- Reverses 20251126091300_fsync-flag-audit.sql. The audit trail goes with it:
-- export it first (npm run flags -- history) if it is to be kept.
drop trigger if exists fsync_record_flag_change on public.feature_flags;
drop function if exists fsync.record_flag_change();
drop table if exists public.feature_flag_changes;
