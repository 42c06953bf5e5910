-- Reverses 20251126090800_fsync-feature-flags.sql. Drops the table even when it
-- existed before (velocity's Phase-0 flags): for development databases.
drop function if exists public.get_enabled_features();
drop function if exists fsync.get_enabled_features();
drop function if exists public.is_feature_enabled(text, uuid);
drop function if exists fsync.is_feature_enabled(text, uuid);
drop function if exists fsync.seed_feature_flags();
drop function if exists fsync.flag_enabled(text, uuid);
drop function if exists fsync.flag_bucket(text, uuid);
drop table if exists public.feature_flags;
