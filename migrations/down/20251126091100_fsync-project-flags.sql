drop function if exists public.is_feature_enabled_for_project(text, uuid);
drop function if exists fsync.is_feature_enabled_for_project(text, uuid);
