-- Reverses 20251126090300_fsync-project-files.sql. Destroys file data: for
-- development databases only (a seeded production table would be dropped too).
drop table if exists public.project_files;
