-- Storage: buckets and who may read objects (first folder = project id).
begin;
create extension if not exists pgtap;
select plan(14);

select results_eq($$select id, public, file_size_limit, allowed_mime_types from storage.buckets
                    where id in ('project-snapshots', 'preview-bundles') order by id$$,
  $$values ('preview-bundles', false, 104857600::bigint, array['application/zip', 'application/javascript', 'text/javascript']),
           ('project-snapshots', false, 52428800::bigint, array['application/zip'])$$,
  'private buckets: snapshots 50 MB zip only, bundles 100 MB zip/js');

select tests.create_supabase_user('alice');    -- owner of p1
select tests.create_supabase_user('carol');    -- viewer of p1
select tests.create_supabase_user('mallory');  -- owner of p2
select tests.authenticate_as('mallory');
select tests.remember('p2', public.create_project('p2'));
select tests.authenticate_as('alice');
select tests.remember('p1', public.create_project('p1'));
select public.add_project_member(tests.recall('p1'), tests.get_supabase_uid('carol'), 'viewer');
select tests.reset_authentication();

insert into storage.buckets (id, name) values ('avatars', 'avatars');
insert into storage.objects (bucket_id, name) values
  ('project-snapshots', tests.recall('p1') || '/snap.zip'),
  ('preview-bundles', tests.recall('p1') || '/bundle.js'),
  ('project-snapshots', tests.recall('p2') || '/snap.zip'),
  ('project-snapshots', 'loose.zip'),
  ('avatars', tests.recall('p1') || '/me.png');

select tests.authenticate_as('alice');
select bag_eq($$select bucket_id, name from storage.objects$$,
  format($$values ('project-snapshots', '%1$s/snap.zip'), ('preview-bundles', '%1$s/bundle.js')$$, tests.recall('p1')),
  'a member reads her project''s snapshots and bundles, nothing else');
select tests.authenticate_as('carol');
select is((select count(*)::int from storage.objects), 2, 'a viewer reads them too');
select tests.authenticate_as('mallory');
select bag_eq($$select bucket_id, name from storage.objects$$,
  format($$values ('project-snapshots', '%1$s/snap.zip')$$, tests.recall('p2')), 'a non-member sees only her own project');
select tests.clear_authentication();
select is_empty($$select * from storage.objects$$, 'anon sees nothing');
select tests.authenticate_as_container(tests.recall('p1'));
select is_empty($$select * from storage.objects$$, 'container tokens see nothing (they get signed URLs)');
select tests.authenticate_as_service_role();
select is((select count(*)::int from storage.objects), 5, 'the service role sees everything');

-- No writes for clients ---------------------------------------------------------------
select tests.authenticate_as('alice');
select throws_ok(format($$insert into storage.objects (bucket_id, name) values ('project-snapshots', '%s/evil.zip')$$, tests.recall('p1')),
                 '42501', 'new row violates row-level security policy for table "objects"', 'members cannot upload snapshots');
select throws_ok(format($$insert into storage.objects (bucket_id, name) values ('preview-bundles', '%s/evil.js')$$, tests.recall('p1')),
                 '42501', 'new row violates row-level security policy for table "objects"', 'members cannot upload bundles');
select is_empty($$update storage.objects set name = name || '.bak' returning id$$, 'members cannot rename objects');
select is_empty($$delete from storage.objects returning id$$, 'members cannot delete objects');
select tests.clear_authentication();
select throws_ok($$insert into storage.objects (bucket_id, name) values ('project-snapshots', 'x/y.zip')$$,
                 '42501', 'new row violates row-level security policy for table "objects"', 'anon cannot upload');
select tests.reset_authentication();
select is((select count(*)::int from storage.objects), 5, 'nothing was changed');
select is_empty($$select policyname from pg_policies
                   where schemaname = 'storage' and policyname like 'fsync:%' and (cmd <> 'SELECT' or roles <> '{authenticated}')$$,
                'fs-sync adds only a SELECT policy for authenticated');

select * from finish();
rollback;
