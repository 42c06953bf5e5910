-- Reverses 20251126090900_fsync-storage.sql. Buckets that still hold objects
-- are kept (Storage refuses to drop them; empty them through the Storage API first).
drop policy if exists "fsync: writers delete project assets" on storage.objects;
drop policy if exists "fsync: writers replace project assets" on storage.objects;
drop policy if exists "fsync: writers upload project assets" on storage.objects;
drop policy if exists "fsync: containers read their project's assets" on storage.objects;
drop policy if exists "fsync: members read their projects' objects" on storage.objects;
delete from storage.buckets b
 where b.id in ('project-snapshots', 'preview-bundles', 'project-assets')
   and not exists (select 1 from storage.objects o where o.bucket_id = b.id);
