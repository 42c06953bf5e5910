-- Reverses 20251126090600_fsync-rate-limits.sql.
drop function if exists fsync.consume_rate_limit(fsync.caller, uuid);
drop table if exists fsync.rate_limit_buckets;
