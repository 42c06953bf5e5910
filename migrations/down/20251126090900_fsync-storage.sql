-- Reverses 20251126090900_fsync-storage.sql. Buckets that were there before
-- fs-sync (velocity's project-snapshots and preview-bundles: fsync.adopted) get
-- their recorded settings back and stay, with their objects and the app's
-- policies (never touched). The buckets fs-sync created go when empty; those
-- that still hold objects are kept (empty them through the Storage API first).
drop policy if exists "fsync: writers delete project assets" on storage.objects;
drop policy if exists "fsync: writers replace project assets" on storage.objects;
drop policy if exists "fsync: writers upload project assets" on storage.objects;
drop policy if exists "fsync: containers read their project's assets" on storage.objects;
drop policy if exists "fsync: members read their projects' objects" on storage.objects;
-- Hosted parity: storage.buckets refuses a DELETE (protect_buckets_delete)
-- unless storage.allow_delete_query is 'true' in the transaction; the DO block
-- is one transaction however the script is run (psql -f autocommits).
do $$
begin
  update storage.buckets b
     set public = (a.state ->> 'public')::boolean,
         file_size_limit = (a.state ->> 'file_size_limit')::bigint,
         allowed_mime_types = case when jsonb_typeof(a.state -> 'allowed_mime_types') = 'array'
                                   then array(select jsonb_array_elements_text(a.state -> 'allowed_mime_types')) end
    from fsync.adopted a
   where a.kind = 'bucket' and a.name = b.id;
  perform set_config('storage.allow_delete_query', 'true', true);
  delete from storage.buckets b
   where b.id in ('project-snapshots', 'preview-bundles', 'project-assets')
     and not fsync.was_adopted('bucket', b.id)
     and not exists (select 1 from storage.objects o where o.bucket_id = b.id);
end
$$;
