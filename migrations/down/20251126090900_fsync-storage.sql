-- Reverses 20251126090900_fsync-storage.sql. Buckets that still hold objects
-- are kept (Storage refuses to drop them; empty them through the Storage API first).
drop policy if exists "fsync: members read their projects' snapshots and bundles" on storage.objects;
delete from storage.buckets b
 where b.id in ('project-snapshots', 'preview-bundles')
   and not exists (select 1 from storage.objects o where o.bucket_id = b.id);
