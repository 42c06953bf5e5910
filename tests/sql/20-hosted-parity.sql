-- Hosted Supabase facts the migrations and this suite rely on (docs/supabase.md, "Hosted-only
-- behaviour the local base must match"): they hold on a real project, and the local base must
-- make them hold too, so that nothing passes here only thanks to local-only privileges.
begin;
create extension if not exists pgtap;
select plan(18);
select tests.create_supabase_user('parity-user');

-- postgres -------------------------------------------------------------------------------
select is(current_user::text, 'postgres', 'the suite runs as postgres');
select ok((select not rolsuper and rolcreaterole and rolbypassrls from pg_roles where rolname = 'postgres'),
          'postgres is no superuser; it has CREATEROLE and BYPASSRLS');
select is_empty($$select r.rolname from pg_roles r
                   where r.rolname in ('supabase_admin', 'supabase_auth_admin', 'supabase_storage_admin',
                                       'supabase_realtime_admin')
                     and pg_has_role('postgres', r.oid, 'member')$$,
                'postgres is a member of none of the admin roles');
select lives_ok($$select tests.authenticate_as_container(gen_random_uuid())$$,
                'postgres may SET ROLE fsync_container (granted: on PostgreSQL 16+ creating it is not enough)');
select tests.reset_authentication();

-- auth.users -----------------------------------------------------------------------------
select ok((select relrowsecurity from pg_class where oid = 'auth.users'::regclass), 'auth.users has RLS on');
select is_empty($$select privilege_type from information_schema.role_table_grants
                   where table_schema = 'auth' and table_name = 'users'
                     and grantee in ('anon', 'authenticated', 'service_role')$$,
                'no API role, not even service_role, has a privilege on auth.users');
select tests.authenticate_as_service_role();
select throws_ok($$select count(*) from auth.users$$, '42501', 'permission denied for table users',
                 'the service role cannot read auth.users');
select tests.reset_authentication();

-- storage: no plain DELETE -----------------------------------------------------------------
insert into storage.buckets (id, name) values ('parity', 'parity');
insert into storage.objects (bucket_id, name) values ('parity', 'a.txt');
select throws_ok($$delete from storage.objects where bucket_id = 'parity'$$, '42501',
                 'Direct deletion from storage tables is not allowed. Use the Storage API instead.',
                 'a plain DELETE on storage.objects is refused');
select throws_ok($$delete from storage.buckets where id = 'no such bucket'$$, '42501',
                 'Direct deletion from storage tables is not allowed. Use the Storage API instead.',
                 '… and on storage.buckets, even one that matches no row');
select tests.authenticate_as_service_role();
select throws_ok($$delete from storage.objects where bucket_id = 'parity'$$, '42501',
                 'Direct deletion from storage tables is not allowed. Use the Storage API instead.',
                 '… whatever the role');
select tests.reset_authentication();
select set_config('storage.allow_delete_query', 'true', true);
select lives_ok($$delete from storage.objects where bucket_id = 'parity';
                  delete from storage.buckets where id = 'parity'$$,
                'with storage.allow_delete_query = true (as the Storage API sets it) it goes through');
select set_config('storage.allow_delete_query', 'false', true);

-- realtime.messages: partitioned by day ------------------------------------------------------
select is((select p.partstrat::text || ':' || a.attname
             from pg_partitioned_table p
             join pg_attribute a on a.attrelid = p.partrelid and a.attnum = p.partattrs[0]
            where p.partrelid = 'realtime.messages'::regclass),
          'r:inserted_at', 'realtime.messages is range-partitioned on inserted_at');
select is((select count(*)::int from fsync.realtime_partition_status() where partition_name is not null), 2,
          'today''s and tomorrow''s partitions exist');
select results_eq($$select day, partition_name is null from fsync.realtime_partition_status(localtimestamp + interval '400 days')$$,
                  $$values ((localtimestamp + interval '400 days')::date, true), ((localtimestamp + interval '401 days')::date, true)$$,
                  'a day without a partition is reported as such');
select throws_ok($$insert into realtime.messages (topic, extension, inserted_at)
                   values ('project:x', 'broadcast', localtimestamp + interval '400 days')$$,
                 '23514', null, 'without its partition a message cannot be stored');
select tests.authenticate_as_service_role();
select is((select count(*)::int from fsync.realtime_partition_status()), 2, 'the service role may check the partitions');
select tests.authenticate_as('parity-user');
select throws_ok($$select * from fsync.realtime_partition_status()$$, '42501', null, 'a user may not');
select tests.clear_authentication();
select throws_ok($$select * from fsync.realtime_partition_status()$$, '42501', null, 'anon may not');
select tests.reset_authentication();

select * from finish();
rollback;
