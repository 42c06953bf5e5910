-- =====================================================================
-- fsync-storage: buckets for snapshots and preview bundles, and who may read
-- them. Objects are stored at <bucket>/<project_id>/<…>.
--   * The service role manages everything (it has BYPASSRLS; no policy needed).
--     fs-sync-edge uploads snapshots and signs URLs with it.
--   * Project members may SELECT (download, sign URLs for) objects whose first
--     folder is the id of a project they belong to.
--   * Nobody else sees anything; no INSERT/UPDATE/DELETE policy exists for
--     authenticated or anon, so clients cannot write these buckets.
-- =====================================================================

insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types) values
  ('project-snapshots', 'project-snapshots', false, 52428800, array['application/zip']),
  ('preview-bundles', 'preview-bundles', false, 104857600,
   array['application/zip', 'application/javascript', 'text/javascript'])
on conflict (id) do update
  set public = excluded.public,
      file_size_limit = excluded.file_size_limit,
      allowed_mime_types = excluded.allowed_mime_types;

create policy "fsync: members read their projects' snapshots and bundles" on storage.objects
  for select to authenticated
  using (
    bucket_id in ('project-snapshots', 'preview-bundles')
    and (storage.foldername(name))[1] in (select m::text from fsync.member_project_ids() as m)
  );
