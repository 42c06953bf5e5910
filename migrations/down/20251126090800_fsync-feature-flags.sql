-- Reverses 20251126090800_fsync-feature-flags.sql.
drop function if exists public.get_enabled_features();
drop function if exists fsync.get_enabled_features();
drop function if exists public.is_feature_enabled(text, uuid);
drop function if exists fsync.is_feature_enabled(text, uuid);
drop function if exists fsync.flag_bucket(text, uuid);
drop table if exists public.feature_flags;
