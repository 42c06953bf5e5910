-- RPC arguments: every public RPC takes the request body as one json argument
-- (what PostgREST passes a function with a single unnamed json parameter) and
-- checks it itself, so a bad argument is PT422 (HTTP 422) with DETAIL
-- {"param", "rule"} instead of a Postgres conversion error (22P05 for \u0000,
-- 22003/22P02 for numbers) or a silent coercion (a number stored as text).
-- The bodies below are JSON text, as sent: \u0000 is the JSON escape.
begin;
create extension if not exists pgtap;
select plan(12);

-- The fs-sync flags as a fresh install seeds them: on a database fs-sync was adopted onto, the
-- operator's rollout (velocity's Phase-0 rows) would decide instead.
update public.feature_flags f
   set enabled = d.enabled, rollout_percentage = case when d.enabled then 100 else 0 end,
       target_user_ids = '{}', environments = '{}'
  from (values ('FSYNC_USE_RPC', true), ('FSYNC_SERVER_BROADCASTS', true), ('FSYNC_BULK_GENERATION', true),
               ('FSYNC_SNAPSHOT_HYDRATION', false), ('FSYNC_KEEP_CLIENT_BROADCAST', false)) as d(flag_key, enabled)
 where f.flag_key = d.flag_key;

select tests.create_supabase_user('alice');
select tests.create_supabase_user('bob');
select tests.authenticate_as('alice');
select tests.remember('p1', fsync.create_project('p1'));
select fsync.upsert_project_file(tests.recall('p1'), 'old.ts', 'old');
select fsync.set_project_member(tests.recall('p1'), tests.get_supabase_uid('bob'), 'editor');
select tests.reset_authentication();

-- One row per refused call: the function, the body ($P: the project, $U: bob),
-- and the param and rule the refusal must name. Each body differs from a valid
-- one (see the end of the file) in one argument only.
create temp table cases (n int, rpc text, body text, param text, rule text) on commit drop;
insert into cases values
  -- upsert_project_file
  ( 1, 'upsert_project_file', '{"project_uuid": "$P", "p_file_path": "a\u0000b.ts", "p_content": "x"}', 'p_file_path', 'nul'),
  ( 2, 'upsert_project_file', '{"project_uuid": "$P", "p_file_path": "a.ts", "p_content": "x\u0000y"}', 'p_content', 'nul'),
  ( 3, 'upsert_project_file', '{"project_uuid": "$P", "p_file_path": "a.ts", "p_content": "\\\u0000"}', 'p_content', 'nul'),
  ( 4, 'upsert_project_file', '{"project_uuid": "$P", "p_file_path": "a.ts", "p_content": "x", "p_file_type": "t\u0000"}', 'p_file_type', 'nul'),
  ( 5, 'upsert_project_file', '{"project_uuid": "$P", "p_file_path": "a.ts", "p_content": "x\ud800y"}', 'p_content', 'surrogate'),
  ( 6, 'upsert_project_file', '{"project_uuid": "$P", "p_file_path": "a.ts", "p_content": "\udc00"}', 'p_content', 'surrogate'),
  ( 7, 'upsert_project_file', '{"project_uuid": "$P", "p_file_path": "a.ts", "p_content": 42}', 'p_content', 'string'),
  ( 8, 'upsert_project_file', '{"project_uuid": "$P", "p_file_path": "a.ts", "p_content": {"a": 1}}', 'p_content', 'string'),
  ( 9, 'upsert_project_file', '{"project_uuid": "$P", "p_file_path": "a.ts", "p_content": ["x"]}', 'p_content', 'string'),
  (10, 'upsert_project_file', '{"project_uuid": "$P", "p_file_path": "a.ts", "p_content": true}', 'p_content', 'string'),
  (11, 'upsert_project_file', '{"project_uuid": "$P", "p_file_path": "a.ts", "p_content": null}', 'p_content', 'required'),
  (12, 'upsert_project_file', '{"project_uuid": "$P", "p_file_path": "a.ts"}', 'p_content', 'required'),
  (13, 'upsert_project_file', '{"project_uuid": "$P", "p_file_path": 7, "p_content": "x"}', 'p_file_path', 'string'),
  (14, 'upsert_project_file', '{"project_uuid": "$P", "p_file_path": "a.ts", "p_content": "x", "p_file_type": 1}', 'p_file_type', 'string'),
  (15, 'upsert_project_file', '{"project_uuid": "$P", "p_file_path": "a.ts", "p_content": "x", "expected_version": 2147483648}', 'expected_version', 'integer'),
  (16, 'upsert_project_file', '{"project_uuid": "$P", "p_file_path": "a.ts", "p_content": "x", "expected_version": 1.5}', 'expected_version', 'integer'),
  (17, 'upsert_project_file', '{"project_uuid": "$P", "p_file_path": "a.ts", "p_content": "x", "expected_version": "abc"}', 'expected_version', 'integer'),
  (18, 'upsert_project_file', '{"project_uuid": "$P", "p_file_path": "a.ts", "p_content": "x", "expected_version": -1}', 'expected_version', 'integer'),
  (19, 'upsert_project_file', '{"project_uuid": "$P", "p_file_path": "a.ts", "p_content": "x", "expected_version": "1"}', 'expected_version', 'integer'),
  (20, 'upsert_project_file', '{"project_uuid": "$P", "p_file_path": "a.ts", "p_content": "x", "expected_version": 1e400}', 'expected_version', 'integer'),
  (21, 'upsert_project_file', '{"project_uuid": "abc", "p_file_path": "a.ts", "p_content": "x"}', 'project_uuid', 'uuid'),
  (22, 'upsert_project_file', '{"project_uuid": 42, "p_file_path": "a.ts", "p_content": "x"}', 'project_uuid', 'uuid'),
  (23, 'upsert_project_file', '{"project_uuid": "$P\u0000", "p_file_path": "a.ts", "p_content": "x"}', 'project_uuid', 'nul'),
  (24, 'upsert_project_file', '{"project_uuid": "$P", "p_path": "a.ts", "p_content": "x"}', 'p_path', 'unknown'),
  (25, 'upsert_project_file', '[{"project_uuid": "$P", "p_file_path": "a.ts", "p_content": "x"}]', null, 'object'),
  (26, 'upsert_project_file', '{"project_uuid": "$P", "p_file_path": "a.ts", "p_content": "x", "expected_version": 1e200000}', null, 'json'),
  -- register_binary_file
  (30, 'register_binary_file', '{"project_uuid": "$P", "p_file_path": "i\u0000.png", "p_storage_path": "project-assets/$P/i.png", "p_content_hash": "$H", "p_size_bytes": 1}', 'p_file_path', 'nul'),
  (31, 'register_binary_file', '{"project_uuid": "$P", "p_file_path": "i.png", "p_storage_path": 5, "p_content_hash": "$H", "p_size_bytes": 1}', 'p_storage_path', 'string'),
  (32, 'register_binary_file', '{"project_uuid": "$P", "p_file_path": "i.png", "p_storage_path": "project-assets/$P/i.png", "p_content_hash": ["$H"], "p_size_bytes": 1}', 'p_content_hash', 'string'),
  (33, 'register_binary_file', '{"project_uuid": "$P", "p_file_path": "i.png", "p_storage_path": "project-assets/$P/i.png", "p_content_hash": "$H", "p_size_bytes": 1.5}', 'p_size_bytes', 'integer'),
  (34, 'register_binary_file', '{"project_uuid": "$P", "p_file_path": "i.png", "p_storage_path": "project-assets/$P/i.png", "p_content_hash": "$H", "p_size_bytes": "1"}', 'p_size_bytes', 'integer'),
  (35, 'register_binary_file', '{"project_uuid": "$P", "p_file_path": "i.png", "p_storage_path": "project-assets/$P/i.png", "p_content_hash": "$H", "p_size_bytes": 9223372036854775808}', 'p_size_bytes', 'integer'),
  (36, 'register_binary_file', '{"project_uuid": "$P", "p_file_path": "i.png", "p_storage_path": "project-assets/$P/i.png", "p_content_hash": "$H", "p_size_bytes": 1, "expected_version": 2147483648}', 'expected_version', 'integer'),
  -- delete_project_file
  (40, 'delete_project_file', '{"project_uuid": "$P", "p_file_path": "old\u0000.ts"}', 'p_file_path', 'nul'),
  (41, 'delete_project_file', '{"project_uuid": "$P", "p_file_path": {"path": "old.ts"}}', 'p_file_path', 'string'),
  (42, 'delete_project_file', '{"project_uuid": "$P", "p_file_path": "old.ts", "expected_version": 1.5}', 'expected_version', 'integer'),
  (43, 'delete_project_file', '{"project_uuid": "$P", "p_file_path": "old.ts", "expected_version": -1}', 'expected_version', 'integer'),
  -- rename_project_file
  (50, 'rename_project_file', '{"project_uuid": "$P", "p_from_path": "old\u0000.ts", "p_to_path": "new.ts"}', 'p_from_path', 'nul'),
  (51, 'rename_project_file', '{"project_uuid": "$P", "p_from_path": "old.ts", "p_to_path": "new\u0000.ts"}', 'p_to_path', 'nul'),
  (52, 'rename_project_file', '{"project_uuid": "$P", "p_from_path": "old.ts", "p_to_path": false}', 'p_to_path', 'string'),
  (53, 'rename_project_file', '{"project_uuid": "$P", "p_from_path": "old.ts", "p_to_path": "new.ts", "expected_version": "abc"}', 'expected_version', 'integer'),
  (54, 'rename_project_file', '{"project_uuid": "$P", "p_from_path": "old.ts", "p_to_path": "new.ts", "expected_version": 2147483648}', 'expected_version', 'integer'),
  -- bulk_upsert_project_files
  (60, 'bulk_upsert_project_files', '{"project_uuid": "$P", "files": {"file_path": "a.ts", "content": "x"}}', 'files', 'array'),
  (61, 'bulk_upsert_project_files', '{"project_uuid": "$P", "files": "[]"}', 'files', 'array'),
  (62, 'bulk_upsert_project_files', '{"project_uuid": "$P", "files": null}', 'files', 'required'),
  (63, 'bulk_upsert_project_files', '{"project_uuid": "$P", "files": [{"file_path": "a.ts", "content": "x\u0000"}]}', 'files[0].content', 'nul'),
  (64, 'bulk_upsert_project_files', '{"project_uuid": "$P", "files": [{"file_path": "ok.ts", "content": "x"}, {"file_path": "\u0000", "content": "x"}]}', 'files[1].file_path', 'nul'),
  (65, 'bulk_upsert_project_files', '{"project_uuid": "$P", "files": [{"file_path": "a.ts", "content": 42}]}', 'files[0].content', 'bulk_format'),
  (66, 'bulk_upsert_project_files', '{"project_uuid": "$P", "files": [{"file_path": "a.ts", "content": {"x": 1}}]}', 'files[0].content', 'bulk_format'),
  (67, 'bulk_upsert_project_files', '{"project_uuid": "$P", "files": [{"file_path": "a.ts", "content": ["x"]}]}', 'files[0].content', 'bulk_format'),
  (68, 'bulk_upsert_project_files', '{"project_uuid": "$P", "files": [{"file_path": "a.ts", "content": true}]}', 'files[0].content', 'bulk_format'),
  (69, 'bulk_upsert_project_files', '{"project_uuid": "$P", "files": [{"file_path": "a.ts", "content": null}]}', 'files[0].content', 'bulk_format'),
  (70, 'bulk_upsert_project_files', '{"project_uuid": "$P", "files": [{"file_path": 1, "content": "x"}]}', 'files[0].file_path', 'bulk_format'),
  (71, 'bulk_upsert_project_files', '{"project_uuid": "$P", "files": [{"file_path": "a.ts", "content": "x", "expected_version": 2147483648}]}', 'files[0].expected_version', 'expected_version'),
  (72, 'bulk_upsert_project_files', '{"project_uuid": "$P", "files": [{"file_path": "a.ts", "content": "x", "expected_version": 1.5}]}', 'files[0].expected_version', 'expected_version'),
  (73, 'bulk_upsert_project_files', '{"project_uuid": "$P", "files": [{"file_path": "a.ts", "content": "x", "expected_version": "abc"}]}', 'files[0].expected_version', 'expected_version'),
  (74, 'bulk_upsert_project_files', '{"project_uuid": "$P", "files": [{"file_path": "a.ts", "content": "x", "expected_version": -1}]}', 'files[0].expected_version', 'expected_version'),
  (75, 'bulk_upsert_project_files', '{"project_uuid": "$P", "files": [{"file_path": "i.png", "storage_path": "project-assets/$P/i.png", "content_hash": "$H", "size_bytes": 1.5}]}', 'files[0].size_bytes', 'size_bytes'),
  (76, 'bulk_upsert_project_files', '{"project_uuid": "$P", "files": [{"file_path": "i.png", "storage_path": "project-assets/$P/i.png", "content_hash": "$H", "size_bytes": 1e30}]}', 'files[0].size_bytes', 'size_bytes'),
  (77, 'bulk_upsert_project_files', '{"project_uuid": "$P", "files": [{"file_path": "a.ts", "delete": "yes"}]}', 'files[0].delete', 'bulk_format'),
  (78, 'bulk_upsert_project_files', '{"project_uuid": "$P", "files": [{"file_path": "a.ts", "content": "x", "file_type": 3}]}', 'files[0].file_type', 'file_type'),
  -- reads
  (80, 'list_current_files', '{"project_uuid": "not-a-uuid"}', 'project_uuid', 'uuid'),
  (81, 'list_current_files', '{"project_uuid": "$P\u0000"}', 'project_uuid', 'nul'),
  (82, 'list_current_files', '{}', 'project_uuid', 'required'),
  (83, 'get_project_snapshot', '{"project_uuid": "$P", "include_content": "yes"}', 'include_content', 'boolean'),
  (84, 'get_project_snapshot', '{"project_uuid": "$P", "include_content": 1}', 'include_content', 'boolean'),
  (85, 'get_project_files', '{"project_uuid": "$P", "paths": ["old.ts", "a\u0000"]}', 'paths[1]', 'nul'),
  (86, 'get_project_files', '{"project_uuid": "$P", "paths": ["old.ts", 1]}', 'paths[1]', 'string'),
  (87, 'get_project_files', '{"project_uuid": "$P", "paths": "old.ts"}', 'paths', 'array'),
  (88, 'get_project_files', '{"project_uuid": "$P", "paths": ["old.ts"], "versions": [1.5]}', 'versions[0]', 'integer'),
  (89, 'get_project_files', '{"project_uuid": "$P", "paths": ["old.ts"], "versions": [2147483648]}', 'versions[0]', 'integer'),
  (90, 'get_project_files', '{"project_uuid": "$P", "paths": ["old.ts"], "versions": ["abc"]}', 'versions[0]', 'integer'),
  (91, 'get_project_files', '{"project_uuid": "$P", "paths": ["old.ts"], "versions": [-1]}', 'versions[0]', 'integer'),
  (92, 'list_project_events', '{"project_uuid": "$P", "after_seq": -1}', 'after_seq', 'integer'),
  (93, 'list_project_events', '{"project_uuid": "$P", "after_seq": 1.5}', 'after_seq', 'integer'),
  (94, 'list_project_events', '{"project_uuid": "$P", "after_seq": "abc"}', 'after_seq', 'integer'),
  (95, 'list_project_events', '{"project_uuid": "$P", "after_seq": 9223372036854775808}', 'after_seq', 'integer'),
  (96, 'list_project_events', '{"project_uuid": "$P", "max_events": 0}', 'max_events', 'integer'),
  (97, 'list_project_events', '{"project_uuid": "$P", "max_events": 2147483648}', 'max_events', 'integer'),
  (98, 'get_project_sync_state', '{"project_uuid": ["$P"]}', 'project_uuid', 'uuid'),
  -- projects and members
  (100, 'create_project', '{"p_name": "n\u0000"}', 'p_name', 'nul'),
  (101, 'create_project', '{"p_name": 42}', 'p_name', 'string'),
  (102, 'create_project', '{"p_name": "n", "p_owner_id": "x"}', 'p_owner_id', 'uuid'),
  (103, 'add_project_member', '{"project_uuid": "$P", "p_user_id": "$U", "p_role": "viewer\u0000"}', 'p_role', 'nul'),
  (104, 'add_project_member', '{"project_uuid": "$P", "p_user_id": "$U", "p_role": 1}', 'p_role', 'string'),
  (105, 'add_project_member', '{"project_uuid": "$P", "p_user_id": 1, "p_role": "viewer"}', 'p_user_id', 'uuid'),
  (106, 'remove_project_member', '{"project_uuid": "$P", "p_user_id": "$U", "extra": 1}', 'extra', 'unknown');
update cases set body = replace(replace(replace(body, '$P', tests.recall('p1')::text), '$U', tests.get_supabase_uid('bob')::text),
                                '$H', repeat('ab', 32));
grant select on cases to public;

create temp table before on commit drop as
select (select count(*) from public.project_files) as files, (select count(*) from public.project_events) as events,
       (select count(*) from public.projects) as projects, (select count(*) from public.project_members) as members,
       (select count(*) from realtime.messages) as messages;

select tests.authenticate_as('alice');
create temp table outcomes on commit drop as
select c.n, c.rpc, c.param, c.rule, e
  from cases c
  cross join lateral tests.error_of(format('select * from public.%I(%L::json)', c.rpc, c.body)) as e;
select tests.reset_authentication();

select is_empty($$select n, rpc, e from outcomes where e is null$$, 'every case is refused');
select is_empty($$select n, rpc, e ->> 'code', e ->> 'message' from outcomes where e ->> 'code' <> 'PT422'$$,
                'every refusal is PT422 (HTTP 422), never a Postgres conversion error');
select is_empty($$select n, rpc, param, rule, e ->> 'detail' from outcomes
                   where (e ->> 'detail')::jsonb ->> 'param' is distinct from param
                      or (e ->> 'detail')::jsonb ->> 'rule' is distinct from rule$$,
                'DETAIL names the parameter and the rule');
select is_empty($$select n, rpc, e ->> 'message' from outcomes
                   where param is not null and strpos(e ->> 'message', split_part(param, '.', 1)) = 0$$,
                'the message names the parameter too');
select is_empty($$select n, e ->> 'message' from outcomes where e ->> 'message' ~ '[\u0001-\u001f\ufdd0\ufdd1]'$$,
                'no message holds a control character or the markers that stand in for \u0000 and surrogates');
select results_eq($$select files, events, projects, members, messages from before$$,
                  $$select (select count(*) from public.project_files), (select count(*) from public.project_events),
                           (select count(*) from public.projects), (select count(*) from public.project_members),
                           (select count(*) from realtime.messages)$$,
                  'nothing is stored by a refused call');
select is((select e ->> 'message' from outcomes where n = 15),
          'invalid expected_version: must be an integer from 0 to 2147483647; got 2147483648',
          'a message says what the argument must be and what it got');
select is((select e ->> 'message' from outcomes where n = 2),
          'invalid p_content: text must not contain the NUL character (U+0000)', 'the NUL message');
select is((select e ->> 'message' from outcomes where n = 24),
          'unknown parameter "p_path" for upsert_project_file: it takes project_uuid, p_file_path, p_content, p_file_type, expected_version',
          'an unknown parameter is named with the ones the function takes');

-- The valid bodies the cases were made from: each call works ------------------------------
select tests.authenticate_as('alice');
select is_empty(format($$
  select rpc, e from (values
    ('upsert_project_file', '{"project_uuid": "%1$s", "p_file_path": "a.ts", "p_content": "x", "p_file_type": null, "expected_version": 0}'),
    ('register_binary_file', '{"project_uuid": "%1$s", "p_file_path": "i.png", "p_storage_path": "project-assets/%1$s/i.png", "p_content_hash": "%2$s", "p_size_bytes": 1, "expected_version": null}'),
    ('rename_project_file', '{"project_uuid": "%1$s", "p_from_path": "old.ts", "p_to_path": "new.ts", "expected_version": 1}'),
    ('delete_project_file', '{"project_uuid": "%1$s", "p_file_path": "new.ts", "expected_version": 1}'),
    ('bulk_upsert_project_files', '{"project_uuid": "%1$s", "files": [{"file_path": "b.ts", "content": "x", "expected_version": 0}, {"file_path": "j.png", "storage_path": "project-assets/%1$s/j.png", "content_hash": "%2$s", "size_bytes": 1}]}'),
    ('list_current_files', '{"project_uuid": "%1$s"}'),
    ('get_project_snapshot', '{"project_uuid": "%1$s", "include_content": false}'),
    ('get_project_files', '{"project_uuid": "%1$s", "paths": ["old.ts", "a.ts"], "versions": [1, null]}'),
    ('list_project_events', '{"project_uuid": "%1$s", "after_seq": 0, "max_events": 10}'),
    ('get_project_sync_state', '{"project_uuid": "%1$s"}'),
    ('create_project', '{"p_name": "n", "p_owner_id": null}'),
    ('add_project_member', '{"project_uuid": "%1$s", "p_user_id": "%3$s", "p_role": "viewer"}'),
    ('remove_project_member', '{"project_uuid": "%1$s", "p_user_id": "%3$s"}')
  ) as v(rpc, body), lateral tests.error_of(format('select * from public.%%I(%%L::json)', rpc, body)) as e
  where e is not null
$$, tests.recall('p1'), repeat('ab', 32), tests.get_supabase_uid('bob')), 'the valid body of every RPC is accepted');
select is(public.upsert_project_file(format('{"project_uuid": "%s", "p_file_path": "esc.ts", "p_content": "\\u0000 \ud83d\ude80 \\\\"}',
                                            tests.recall('p1'))::json) ->> 'size_bytes', '14',
          'escaped text is not NUL: the characters \u0000, a surrogate pair and \\ are stored as sent');
select is((select content from fsync.get_project_files(tests.recall('p1'), array['esc.ts'])), E'\\u0000 🚀 \\\\',
          '… exactly');
select tests.reset_authentication();

select * from finish();
rollback;
