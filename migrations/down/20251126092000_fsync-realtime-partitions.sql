-- Reverses 20251126092000_fsync-realtime-partitions.sql.
drop function if exists fsync.realtime_partition_status(timestamp);
