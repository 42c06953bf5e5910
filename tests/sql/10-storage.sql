-- Storage: buckets and who may read and write objects (first folder = project id).
begin;
create extension if not exists pgtap;
select plan(32);

select results_eq($$select id, public, file_size_limit, allowed_mime_types from storage.buckets
                    where id in ('project-snapshots', 'preview-bundles', 'project-assets') order by id$$,
  $$values ('preview-bundles', false, 104857600::bigint, array['application/zip', 'application/javascript', 'text/javascript']),
           ('project-assets', false, 52428800::bigint, null::text[]),
           ('project-snapshots', false, 52428800::bigint, array['application/zip'])$$,
  'private buckets: snapshots 50 MB zip only, bundles 100 MB zip/js, project assets 50 MB any type');

select tests.create_supabase_user('alice');    -- owner of p1
select tests.create_supabase_user('bob');      -- editor of p1
select tests.create_supabase_user('carol');    -- viewer of p1
select tests.create_supabase_user('mallory');  -- owner of p2
select tests.authenticate_as('mallory');
select tests.remember('p2', fsync.create_project('p2'));
select tests.authenticate_as('alice');
select tests.remember('p1', fsync.create_project('p1'));
select fsync.set_project_member(tests.recall('p1'), tests.get_supabase_uid('bob'), 'editor');
select fsync.set_project_member(tests.recall('p1'), tests.get_supabase_uid('carol'), 'viewer');
select tests.reset_authentication();

-- (An adopted database has objects of its own: velocity's Phase-0 snapshots and bundles.)
create temp table objects_before on commit drop as select bucket_id, name from storage.objects;
select set_config('tests.objects_before', (select count(*)::text from objects_before), true);
insert into storage.buckets (id, name) values ('avatars', 'avatars');
insert into storage.objects (bucket_id, name) values
  ('project-snapshots', tests.recall('p1') || '/snap.zip'),
  ('preview-bundles', tests.recall('p1') || '/bundle.js'),
  ('project-assets', tests.recall('p1') || '/blobs/logo.png'),
  ('project-snapshots', tests.recall('p2') || '/snap.zip'),
  ('project-assets', tests.recall('p2') || '/blobs/secret.png'),
  ('project-snapshots', 'loose.zip'),
  ('project-assets', 'loose.png'),
  ('avatars', tests.recall('p1') || '/me.png');

-- Reading -------------------------------------------------------------------------------
select tests.authenticate_as('alice');
select bag_eq($$select bucket_id, name from storage.objects$$,
  format($$values ('project-snapshots', '%1$s/snap.zip'), ('preview-bundles', '%1$s/bundle.js'),
                  ('project-assets', '%1$s/blobs/logo.png')$$, tests.recall('p1')),
  'the owner reads her project''s snapshots, bundles and assets, nothing else');
select tests.authenticate_as('bob');
select is((select count(*)::int from storage.objects), 3, 'an editor reads them too');
select tests.authenticate_as('carol');
select is((select count(*)::int from storage.objects), 3, 'a viewer reads them too');
select tests.authenticate_as('mallory');
select bag_eq($$select bucket_id, name from storage.objects$$,
  format($$values ('project-snapshots', '%1$s/snap.zip'), ('project-assets', '%1$s/blobs/secret.png')$$, tests.recall('p2')),
  'a non-member sees only her own project');
select tests.clear_authentication();
select is_empty($$select * from storage.objects$$, 'anon sees nothing');
select tests.authenticate_as_container(tests.recall('p1'));
select bag_eq($$select bucket_id, name from storage.objects$$,
  format($$values ('project-assets', '%1$s/blobs/logo.png')$$, tests.recall('p1')),
  'a container token reads its own project''s assets only (snapshots come as signed URLs)');
select tests.authenticate_as_container(tests.recall('p2'));
select bag_eq($$select bucket_id, name from storage.objects$$,
  format($$values ('project-assets', '%1$s/blobs/secret.png')$$, tests.recall('p2')),
  '… and not another project''s');
select tests.authenticate_as_container(tests.recall('p1'), 'fsync:write');
select is_empty($$select * from storage.objects$$, 'a container token without fsync:read reads nothing');
select tests.authenticate_as_claims(jsonb_build_object('role', 'fsync_container', 'sub', 'session-1'));
select is_empty($$select * from storage.objects$$, 'a container token without a project_id claim reads nothing');
select tests.authenticate_as_service_role();
select is((select count(*)::int from storage.objects), 8 + current_setting('tests.objects_before')::int,
          'the service role sees everything');

-- Writing project assets: owners and editors, under their project's folder only -----------
-- Deletes below are the Storage API's, which allows them per request (a plain DELETE is
-- refused: 20-hosted-parity.sql).
select set_config('storage.allow_delete_query', 'true', true);
select tests.authenticate_as('alice');
select lives_ok(format($$insert into storage.objects (bucket_id, name) values ('project-assets', '%s/blobs/a.png')$$, tests.recall('p1')),
                'the owner uploads an asset under her project''s folder');
select tests.authenticate_as('bob');
select lives_ok(format($$insert into storage.objects (bucket_id, name) values ('project-assets', '%s/blobs/b.png')$$, tests.recall('p1')),
                'an editor uploads an asset');
select isnt_empty($$update storage.objects set metadata = '{"v": 2}'
                      where bucket_id = 'project-assets' and name = tests.recall('p1') || '/blobs/b.png' returning id$$,
                  'an editor replaces (updates) an asset');
select throws_ok(format($$update storage.objects set name = '%s/blobs/b.png' where name = '%s/blobs/b.png'$$,
                        tests.recall('p2'), tests.recall('p1')),
                 '42501', 'new row violates row-level security policy for table "objects"',
                 'an editor cannot move an asset into another project''s folder');
select isnt_empty($$delete from storage.objects
                      where bucket_id = 'project-assets' and name = tests.recall('p1') || '/blobs/b.png' returning id$$,
                  'an editor deletes an asset');
select throws_ok(format($$insert into storage.objects (bucket_id, name) values ('project-assets', '%s/blobs/evil.png')$$, tests.recall('p2')),
                 '42501', 'new row violates row-level security policy for table "objects"',
                 'an editor of p1 cannot upload into p2''s folder');
select throws_ok($$insert into storage.objects (bucket_id, name) values ('project-assets', 'loose2.png')$$,
                 '42501', 'new row violates row-level security policy for table "objects"',
                 'nobody uploads outside a project folder');
select tests.authenticate_as('carol');
select throws_ok(format($$insert into storage.objects (bucket_id, name) values ('project-assets', '%s/blobs/c.png')$$, tests.recall('p1')),
                 '42501', 'new row violates row-level security policy for table "objects"', 'a viewer cannot upload assets');
select is_empty($$update storage.objects set metadata = '{}' where bucket_id = 'project-assets' returning id$$,
                'a viewer cannot replace assets');
select is_empty($$delete from storage.objects where bucket_id = 'project-assets' returning id$$, 'a viewer cannot delete assets');
select tests.authenticate_as('mallory');
select is_empty(format($$delete from storage.objects where name like '%s/%%' returning id$$, tests.recall('p1')),
                'a non-member cannot delete another project''s assets');
select tests.authenticate_as_container(tests.recall('p1'));
select throws_ok(format($$insert into storage.objects (bucket_id, name) values ('project-assets', '%s/blobs/x.png')$$, tests.recall('p1')),
                 '42501', 'new row violates row-level security policy for table "objects"', 'a container cannot upload');
select is_empty($$delete from storage.objects returning id$$, 'a container cannot delete');

-- No client writes snapshots or bundles --------------------------------------------------------
select tests.authenticate_as('alice');
select throws_ok(format($$insert into storage.objects (bucket_id, name) values ('project-snapshots', '%s/evil.zip')$$, tests.recall('p1')),
                 '42501', 'new row violates row-level security policy for table "objects"', 'members cannot upload snapshots');
select throws_ok(format($$insert into storage.objects (bucket_id, name) values ('preview-bundles', '%s/evil.js')$$, tests.recall('p1')),
                 '42501', 'new row violates row-level security policy for table "objects"', 'members cannot upload bundles');
select is_empty($$update storage.objects set name = name || '.bak' where bucket_id <> 'project-assets' returning id$$,
                'members cannot rename snapshots or bundles');
select is_empty($$delete from storage.objects where bucket_id <> 'project-assets' returning id$$,
                'members cannot delete snapshots or bundles');
select tests.clear_authentication();
select throws_ok($$insert into storage.objects (bucket_id, name) values ('project-snapshots', 'x/y.zip')$$,
                 '42501', 'new row violates row-level security policy for table "objects"', 'anon cannot upload');
select throws_ok(format($$insert into storage.objects (bucket_id, name) values ('project-assets', '%s/anon.png')$$, tests.recall('p1')),
                 '42501', 'new row violates row-level security policy for table "objects"', 'anon cannot upload assets');
select tests.reset_authentication();
select bag_eq($$select bucket_id, name from storage.objects except all select bucket_id, name from objects_before$$,
  format($$values ('project-snapshots', '%1$s/snap.zip'), ('preview-bundles', '%1$s/bundle.js'),
                  ('project-assets', '%1$s/blobs/logo.png'), ('project-snapshots', '%2$s/snap.zip'),
                  ('project-assets', '%2$s/blobs/secret.png'), ('project-snapshots', 'loose.zip'),
                  ('project-assets', 'loose.png'), ('avatars', '%1$s/me.png'), ('project-assets', '%1$s/blobs/a.png')$$,
         tests.recall('p1'), tests.recall('p2')),
  'only the permitted writes happened');
select results_eq($$select policyname::text collate "default", cmd collate "default", roles::text collate "default" from pg_policies
                     where schemaname = 'storage' and policyname like 'fsync:%' order by policyname$$,
  $$values ('fsync: containers read their project''s assets', 'SELECT', '{fsync_container}'),
           ('fsync: members read their projects'' objects', 'SELECT', '{authenticated}'),
           ('fsync: writers delete project assets', 'DELETE', '{authenticated}'),
           ('fsync: writers replace project assets', 'UPDATE', '{authenticated}'),
           ('fsync: writers upload project assets', 'INSERT', '{authenticated}')$$,
  'fs-sync''s storage policies: one SELECT per role, writes only on project-assets');

select * from finish();
rollback;
