-- Reverses 20251126090100_fsync-contracts.sql.
drop function if exists fsync.infer_file_type(text);
drop function if exists fsync.validate_path(text);
drop function if exists fsync.path_error(text);
drop function if exists fsync.check_path(text);
drop function if exists fsync.content_hash(text);
