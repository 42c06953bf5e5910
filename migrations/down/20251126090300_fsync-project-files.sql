-- Reverses 20251126090300_fsync-project-files.sql: drops the table it created
-- on a fresh database. A table that was there before fs-sync (velocity's, the
-- seed's: fsync.adopted) is the app's and stays, with every row.
do $$
begin
  if not fsync.was_adopted('relation', 'public.project_files') then
    drop table if exists public.project_files;
  end if;
end
$$;
