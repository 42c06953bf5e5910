-- upsert_project_file and register_binary_file: versions, no-op, expected_version,
-- validation and limits, the change log and the realtime message of each write.
begin;
create extension if not exists pgtap;
select plan(54);

-- The fs-sync flags as a fresh install seeds them: on a database fs-sync was adopted onto, the
-- operator's rollout (velocity's Phase-0 rows) would decide instead.
update public.feature_flags f
   set enabled = d.enabled, rollout_percentage = case when d.enabled then 100 else 0 end,
       target_user_ids = '{}', environments = '{}'
  from (values ('FSYNC_USE_RPC', true), ('FSYNC_SERVER_BROADCASTS', true), ('FSYNC_BULK_GENERATION', true),
               ('FSYNC_SNAPSHOT_HYDRATION', false), ('FSYNC_KEEP_CLIENT_BROADCAST', false)) as d(flag_key, enabled)
 where f.flag_key = d.flag_key;

select tests.create_supabase_user('alice');
select tests.authenticate_as('alice');
select tests.remember('p1', fsync.create_project('p1'));

-- First save, then a second, then a no-op -------------------------------------
select tests.remember('u', tests.get_supabase_uid('alice'));
select is(fsync.upsert_project_file(tests.recall('p1'), 'src/App.tsx', 'v1') - 'project_id',
          jsonb_build_object('file_path', 'src/App.tsx', 'version', 1,
                             'content_hash', encode(sha256('v1'::bytea), 'hex'), 'size_bytes', 2,
                             'file_type', 'typescript', 'storage_path', null, 'is_deleted', false,
                             'seq', 1, 'noop', false),
          'first save creates version 1 with seq 1; file_type inferred');
select is(fsync.upsert_project_file(tests.recall('p1'), 'src/App.tsx', 'v2') ->> 'version', '2', 'second save is version 2');
select is(fsync.upsert_project_file(tests.recall('p1'), 'src/App.tsx', 'v2') - 'project_id',
          jsonb_build_object('file_path', 'src/App.tsx', 'version', 2,
                             'content_hash', encode(sha256('v2'::bytea), 'hex'), 'size_bytes', 2,
                             'file_type', 'typescript', 'storage_path', null, 'is_deleted', false,
                             'seq', null, 'noop', true),
          'saving the head''s content again is a no-op returning the head');
select is((select count(*)::int from public.project_events), 2, 'the no-op wrote no event');
select is((select count(*)::int from public.project_files), 2, 'the no-op wrote no version');
select is((fsync.upsert_project_file(tests.recall('p1'), 'src/App.tsx', 'v2', null, 1)) ->> 'noop', 'true',
          'a retried save that already committed is a no-op, not a conflict');
select is(fsync.upsert_project_file(tests.recall('p1'), 'notes', '# x', 'markdown') ->> 'file_type', 'markdown',
          'an explicit file_type wins over inference');

-- expected_version ------------------------------------------------------------
select is(fsync.upsert_project_file(tests.recall('p1'), 'src/App.tsx', 'v3', null, 2) ->> 'version', '3',
          'expected_version equal to the head saves');
select throws_ok(format($$select fsync.upsert_project_file(%L, 'src/App.tsx', 'v4', null, 2)$$, tests.recall('p1')),
  'PT409', 'version conflict on "src/App.tsx": expected version 2, but the current version is 3', 'stale expected_version → PT409');
select is((tests.error_of(format($$select fsync.upsert_project_file(%L, 'src/App.tsx', 'v4', null, 2)$$, tests.recall('p1')))
           ->> 'detail')::jsonb,
          jsonb_build_object('path', 'src/App.tsx', 'expected_version', 2, 'current_version', 3,
                             'current_hash', encode(sha256('v3'::bytea), 'hex')),
          'PT409 DETAIL is {path, expected_version, current_version, current_hash}');
select throws_ok(format($$select fsync.upsert_project_file(%L, 'src/App.tsx', 'v4', null, 0)$$, tests.recall('p1')),
  'PT409', 'version conflict on "src/App.tsx": expected no file, but the current version is 3', 'expected_version 0 on an existing file → PT409');
select is(fsync.upsert_project_file(tests.recall('p1'), 'src/new.ts', 'n', null, 0) ->> 'version', '1',
          'expected_version 0 creates a new file');
select throws_ok(format($$select fsync.upsert_project_file(%L, 'src/missing.ts', 'x', null, 4)$$, tests.recall('p1')),
  'PT409', 'version conflict on "src/missing.ts": expected version 4, but the file does not exist', 'expected_version on a missing file → PT409');
select is((tests.error_of(format($$select fsync.upsert_project_file(%L, 'src/missing.ts', 'x', null, 4)$$, tests.recall('p1')))
           ->> 'detail')::jsonb,
          '{"path": "src/missing.ts", "expected_version": 4, "current_version": 0, "current_hash": null}'::jsonb,
          'PT409 DETAIL for a missing file has current_version 0');
select throws_ok(format($$select fsync.upsert_project_file(%L, 'src/App.tsx', 'x', null, -1)$$, tests.recall('p1')),
  'PT422', 'invalid expected_version -1: use 0 (must not exist) or a version >= 1', 'negative expected_version → PT422');

-- validation and limits -----------------------------------------------------------
select throws_ok(format($$select fsync.upsert_project_file(%L, '../etc/passwd', 'x')$$, tests.recall('p1')),
  'PT422', 'invalid path "../etc/passwd": dot_segment: "." and ".." segments are not allowed', 'invalid path → PT422');
select throws_ok(format($$select fsync.upsert_project_file(%L, '.fs-sync/manifest.json', 'x')$$, tests.recall('p1')),
  'PT422', 'invalid path ".fs-sync/manifest.json": reserved: the ".fs-sync" folder is reserved for fs-sync', 'reserved path → PT422');
select throws_ok(format($$select fsync.upsert_project_file(%L, 'a.ts', null)$$, tests.recall('p1')),
  'PT422', 'content must not be null: use delete_project_file to delete a file', 'null content → PT422');
select throws_ok(format($$select fsync.upsert_project_file(%L, 'a.ts', 'x', '')$$, tests.recall('p1')),
  'PT422', 'invalid file_type: use 1 to 64 characters', 'empty file_type → PT422');
select throws_ok(format($$select fsync.upsert_project_file(%L, 'big.txt', repeat('é', 2621441))$$, tests.recall('p1')),
  'PT413', 'file "big.txt" is too large: 5242882 bytes; the limit is 5242880 bytes', 'over 5 MiB (in bytes, not characters) → PT413');
select is((tests.error_of(format($$select fsync.upsert_project_file(%L, 'big.txt', repeat('x', 5242881))$$, tests.recall('p1')))
           ->> 'detail')::jsonb,
          '{"limit": 5242880, "actual": 5242881, "path": "big.txt"}'::jsonb, 'PT413 DETAIL is {limit, actual, path}');
select is(fsync.upsert_project_file(tests.recall('p1'), 'big.txt', repeat('x', 5242880)) ->> 'size_bytes', '5242880',
          'exactly 5 MiB is accepted');
select tests.reset_authentication();
update fsync.settings set value = '10' where key = 'limits.max_file_bytes';
select tests.authenticate_as('alice');
select throws_ok(format($$select fsync.upsert_project_file(%L, 'small.txt', repeat('x', 11))$$, tests.recall('p1')),
  'PT413', 'file "small.txt" is too large: 11 bytes; the limit is 10 bytes', 'the limit is configurable in fsync.settings');
select tests.reset_authentication();
update fsync.settings set value = '5242880' where key = 'limits.max_file_bytes';
select tests.authenticate_as('alice');

-- Failed writes leave nothing behind ---------------------------------------------------
select tests.reset_authentication();
select set_config('tests.seq_before', (select last_seq::text from public.projects where id = tests.recall('p1')), true);
select tests.authenticate_as('alice');
select throws_ok(format($$select fsync.upsert_project_file(%L, 'src/App.tsx', 'lost', null, 1)$$, tests.recall('p1')), 'PT409');
select tests.reset_authentication();
select is((select last_seq from public.projects where id = tests.recall('p1')),
          current_setting('tests.seq_before')::bigint, 'a refused write takes no seq');
select is((select count(*)::int from public.project_files where content = 'lost'), 0, 'a refused write leaves no row');
select is((select count(*)::int from realtime.messages where payload ->> 'content' = 'lost'), 0, 'a refused write sends nothing');

-- Invariants: versions, heads, seqs ----------------------------------------------------
select tests.authenticate_as('alice');
select fsync.upsert_project_file(tests.recall('p1'), 'loop/f' || (i % 7) || '.ts', 'content ' || i)
  from generate_series(1, 100) i;
select tests.reset_authentication();
select is_empty($$
  select file_path from public.project_files
   group by project_id, file_path
  having not (min(version) = 1 and max(version) = count(*) and count(distinct version) = count(*))
$$, 'versions per path are 1, 2, 3 … without gaps');
select is_empty($$
  select file_path from public.project_files group by project_id, file_path
  having count(*) filter (where is_current_version) <> 1
      or max(version) <> max(version) filter (where is_current_version)
$$, 'exactly one head per path, and it is the latest version');
select is((select array_agg(seq order by seq) from public.project_events where project_id = tests.recall('p1')),
          (select array_agg(s) from generate_series(1, (select last_seq from public.projects where id = tests.recall('p1'))::int) s)::bigint[],
          'event seqs are 1 … last_seq without gaps');
select is((select count(*)::int from public.project_events where project_id = tests.recall('p1')),
          (select count(*)::int from public.project_files where project_id = tests.recall('p1')),
          'one event per version written');

-- Event payload and the realtime message --------------------------------------------------
select is((select payload - 'timestamp' from public.project_events where project_id = tests.recall('p1') and seq = 1),
          jsonb_build_object('v', 1, 'seq', 1, 'type', 'file:update', 'project_id', tests.recall('p1'),
                             'file_path', 'src/App.tsx', 'version', 1, 'content_hash', encode(sha256('v1'::bytea), 'hex'),
                             'size', 2, 'file_type', 'typescript', 'actor', tests.recall('u')),
          'stored event payload (content is re-attached on read)');
select matches((select payload ->> 'timestamp' from public.project_events where project_id = tests.recall('p1') and seq = 1),
               '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$', 'timestamp is RFC 3339 UTC');
-- (scoped to p1: a database in use has other projects' events and messages)
select is((select count(*)::int from realtime.messages where topic = 'project:' || tests.recall('p1')),
          (select count(*)::int from public.project_events where project_id = tests.recall('p1')),
          'one realtime message per event');
select is_empty($$
  select e.seq from public.project_events e
   where e.project_id = tests.recall('p1') and not exists (
     select 1 from realtime.messages m
      where m.topic = 'project:' || e.project_id and m.event = e.event_type and m.private
        and m.extension = 'broadcast' and (m.payload ->> 'seq')::bigint = e.seq
        and (m.payload - 'id' - 'content') = e.payload)
$$, 'each event was sent privately on project:<id>, event name = type, same payload');
select ok((select bool_and(m.payload ? 'id') from realtime.messages m), 'realtime.send added an id to each payload');
select is((select payload ->> 'content' from realtime.messages
            where topic = 'project:' || tests.recall('p1') and (payload ->> 'seq')::int = 1), 'v1',
          'small content is sent inline');
select tests.authenticate_as('alice');
select fsync.upsert_project_file(tests.recall('p1'), 'edge/64k.txt', repeat('a', 65536));
select fsync.upsert_project_file(tests.recall('p1'), 'edge/64k+1.txt', repeat('a', 65537));
select tests.reset_authentication();
select is((select length(payload ->> 'content') from realtime.messages where payload ->> 'file_path' = 'edge/64k.txt'), 65536,
          'content of exactly 64 KiB is sent inline');
select is((select payload -> 'content_omitted' from realtime.messages where payload ->> 'file_path' = 'edge/64k+1.txt'),
          'true'::jsonb, 'content over 64 KiB is omitted and flagged');
select ok((select not (payload ? 'content') from realtime.messages where payload ->> 'file_path' = 'edge/64k+1.txt'),
          'omitted content is not in the payload');

-- Binaries ------------------------------------------------------------------------------
-- storage_path is exactly 'project-assets/<project_id>/<path>' (<path> obeying the path rules):
-- fs-sync-edge reads it with the service role, so a project must not name anything else.
select tests.create_supabase_user('mallory');
select tests.authenticate_as('mallory');
select tests.remember('p2', fsync.create_project('p2'));
select tests.authenticate_as('alice');
select set_config('tests.asset', 'project-assets/' || tests.recall('p1') || '/blobs/ab12', true);
select is(fsync.register_binary_file(tests.recall('p1'), 'img/logo.png', current_setting('tests.asset'), repeat('ab', 32), 2048)
            - 'project_id' - 'seq',
          jsonb_build_object('file_path', 'img/logo.png', 'version', 1, 'content_hash', repeat('ab', 32), 'size_bytes', 2048,
                             'file_type', 'binary', 'storage_path', current_setting('tests.asset'),
                             'is_deleted', false, 'noop', false),
          'register_binary_file records a binary version');
select is(fsync.register_binary_file(tests.recall('p1'), 'img/logo.png', current_setting('tests.asset'), repeat('ab', 32), 2048)
            ->> 'noop', 'true', 'registering the same object again is a no-op');
select throws_ok(format($$select fsync.register_binary_file(%1$L, 'img/x.png', 'project-assets/%1$s/x', 'ABC', 1)$$, tests.recall('p1')),
  'PT422', 'invalid content_hash: use the lowercase hex SHA-256 of the object (64 characters)', 'bad content_hash → PT422');
select throws_ok(format($$select fsync.register_binary_file(%L, 'img/x.png', '', repeat('ab', 32), 1)$$, tests.recall('p1')),
  'PT422', format('invalid storage_path: upload binaries to the project-assets bucket under the project''s folder: '
                  'the storage_path must start with "project-assets/%s/"', tests.recall('p1')), 'empty storage_path → PT422');
select is((tests.error_of(format($$select fsync.register_binary_file(%1$L, 'img/x.png', '%1$s/logo.png', repeat('ab', 32), 1)$$,
                                 tests.recall('p1'))) ->> 'detail')::jsonb,
          jsonb_build_object('rule', 'storage_path', 'expected_prefix', 'project-assets/' || tests.recall('p1') || '/'),
          'the old "<project>/<path>" form (no bucket) → PT422 storage_path, DETAIL names the expected prefix');
select is(tests.error_of(format($$select fsync.register_binary_file(%L, 'img/x.png', 'project-snapshots/%s/snap.zip', repeat('ab', 32), 1)$$,
                                tests.recall('p1'), tests.recall('p1'))) ->> 'code',
          'PT422', 'another bucket (even under the project''s folder) → PT422');
select is(tests.error_of(format($$select fsync.register_binary_file(%L, 'img/x.png', 'project-assets/%s/secret.png', repeat('ab', 32), 1)$$,
                                tests.recall('p1'), tests.recall('p2'))) ->> 'code',
          'PT422', 'another project''s folder → PT422 (no confused deputy through the edge''s service role)');
select is(tests.error_of(format($$select fsync.register_binary_file(%L, 'img/x.png', 'project-assets/%s/secret.png', repeat('ab', 32), 1)$$,
                                tests.recall('p1'), upper(tests.recall('p1')::text))) ->> 'code',
          'PT422', 'the project id must be written exactly (lowercase)');
select throws_ok(format($$select fsync.register_binary_file(%1$L, 'img/x.png', 'project-assets/%1$s/../%2$s/secret.png', repeat('ab', 32), 1)$$,
                        tests.recall('p1'), tests.recall('p2')),
  'PT422', format('invalid storage_path: the object path after "project-assets/%s/" breaks the path rules (dot_segment)', tests.recall('p1')),
  '".." out of the project''s folder → PT422 naming the path rule');
select is((tests.error_of(format($$select fsync.register_binary_file(%1$L, 'img/x.png', 'project-assets/%1$s/a//b.png', repeat('ab', 32), 1)$$,
                                 tests.recall('p1'))) ->> 'detail')::jsonb,
          jsonb_build_object('rule', 'storage_path', 'expected_prefix', 'project-assets/' || tests.recall('p1') || '/',
                             'path_rule', 'empty_segment'),
          'the part after the prefix obeys every path rule (DETAIL path_rule)');
select is(tests.error_of(format($$select fsync.register_binary_file(%1$L, 'img/x.png', 'project-assets/%1$s/', repeat('ab', 32), 1)$$,
                                tests.recall('p1'))) ->> 'detail',
          jsonb_build_object('rule', 'storage_path', 'expected_prefix', 'project-assets/' || tests.recall('p1') || '/',
                             'path_rule', 'empty')::text,
          'the prefix alone names no object → PT422');
select tests.reset_authentication();
select is((select payload - 'v' - 'seq' - 'type' - 'project_id' - 'timestamp' - 'actor' - 'id' from realtime.messages
            where payload ->> 'file_path' = 'img/logo.png'),
          jsonb_build_object('file_path', 'img/logo.png', 'version', 1, 'content_hash', repeat('ab', 32), 'size', 2048,
                             'file_type', 'binary', 'storage_path', current_setting('tests.asset'), 'content_omitted', true),
          'a binary event carries storage_path and content_omitted');
select is((select content is null and storage_path is not null from public.project_files where file_path = 'img/logo.png'), true,
          'binaries have no content in the table');
select is((select count(*)::int from public.project_files where file_path = 'img/x.png'), 0, 'refused binaries left no row');

select * from finish();
rollback;
