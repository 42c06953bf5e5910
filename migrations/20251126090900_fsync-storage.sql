-- =====================================================================
-- fsync-storage: buckets for snapshots, preview bundles and project binaries,
-- and who may use them. Objects are stored at <bucket>/<project_id>/<…>.
--   * The service role manages everything (it has BYPASSRLS; no policy needed).
--     fs-sync-edge uploads snapshots, signs URLs and reads binaries with it.
--   * project-snapshots, preview-bundles: project members may SELECT (download,
--     sign URLs for) objects whose first folder is the id of a project they
--     belong to; nobody else, and no client writes.
--   * project-assets: the binaries of project files. register_binary_file and
--     bulk entries accept only storage_path = 'project-assets/<project_id>/<path>'
--     (fsync.check_binary_args), so a project can name only its own objects.
--     Owners and editors may upload, replace and delete objects under their
--     project's folder; members of any role may read them; a container token
--     (fsync_container with scope fsync:read) may read its own project's folder.
--   * Nobody else sees or writes anything.
-- =====================================================================

insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types) values
  ('project-snapshots', 'project-snapshots', false, 52428800, array['application/zip']),
  ('preview-bundles', 'preview-bundles', false, 104857600,
   array['application/zip', 'application/javascript', 'text/javascript']),
  ('project-assets', 'project-assets', false, 52428800, null)
on conflict (id) do update
  set public = excluded.public,
      file_size_limit = excluded.file_size_limit,
      allowed_mime_types = excluded.allowed_mime_types;

-- One SELECT policy per role (Supabase lint 0006: no overlapping permissive policies).
create policy "fsync: members read their projects' objects" on storage.objects
  for select to authenticated
  using (
    bucket_id in ('project-snapshots', 'preview-bundles', 'project-assets')
    and (storage.foldername(name))[1] in (select m::text from fsync.member_project_ids() as m)
  );

create policy "fsync: containers read their project's assets" on storage.objects
  for select to fsync_container
  using (
    bucket_id = 'project-assets'
    and (storage.foldername(name))[1] = ((select auth.jwt()) ->> 'project_id')
    and 'fsync:read' = any (string_to_array(coalesce((select auth.jwt()) ->> 'scope', ''), ' '))
  );

create policy "fsync: writers upload project assets" on storage.objects
  for insert to authenticated
  with check (
    bucket_id = 'project-assets'
    and (storage.foldername(name))[1] in (select w::text from fsync.writable_project_ids() as w)
  );

-- USING picks the rows a writer may change, WITH CHECK keeps them in a project
-- folder the writer may write (no moving objects into another project).
create policy "fsync: writers replace project assets" on storage.objects
  for update to authenticated
  using (
    bucket_id = 'project-assets'
    and (storage.foldername(name))[1] in (select w::text from fsync.writable_project_ids() as w)
  )
  with check (
    bucket_id = 'project-assets'
    and (storage.foldername(name))[1] in (select w::text from fsync.writable_project_ids() as w)
  );

create policy "fsync: writers delete project assets" on storage.objects
  for delete to authenticated
  using (
    bucket_id = 'project-assets'
    and (storage.foldername(name))[1] in (select w::text from fsync.writable_project_ids() as w)
  );
