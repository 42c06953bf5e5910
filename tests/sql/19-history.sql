-- History: restore_project (a project back to any earlier point, as one new
-- bulk:apply change; history kept) and diff_project (what differs between two
-- points). A seeded random build of writes, deletes, renames, bulks, binaries,
-- direct table writes and restores records the live files after every seq;
-- then the project is restored to every one of those seqs, in random order,
-- and each result is compared with the recorded state byte for byte; diffs of
-- many pairs of points are compared with the recorded states. Then known
-- cases, errors, and the role matrix of both RPCs.
begin;
create extension if not exists pgtap;
select plan(76);

-- The fs-sync flags as a fresh install seeds them: on a database fs-sync was adopted onto, the
-- operator's rollout (velocity's Phase-0 rows) would decide instead.
update public.feature_flags f
   set enabled = d.enabled, rollout_percentage = case when d.enabled then 100 else 0 end,
       target_user_ids = '{}', environments = '{}'
  from (values ('FSYNC_USE_RPC', true), ('FSYNC_SERVER_BROADCASTS', true), ('FSYNC_BULK_GENERATION', true),
               ('FSYNC_SNAPSHOT_HYDRATION', false), ('FSYNC_KEEP_CLIENT_BROADCAST', false)) as d(flag_key, enabled)
 where f.flag_key = d.flag_key;

select tests.create_supabase_user('alice');    -- owner of the projects
select tests.create_supabase_user('bob');      -- editor
select tests.create_supabase_user('carol');    -- viewer
select tests.create_supabase_user('mallory');  -- nobody in them

select tests.authenticate_as('alice');
select tests.remember('p1', fsync.create_project('p1'));   -- the property test
select tests.remember('p3', fsync.create_project('p3'));   -- known diffs
select tests.remember('p4', fsync.create_project('p4'));   -- errors and roles
select tests.remember('p5', fsync.create_project('p5'));   -- caps, conflicts, legacy
select fsync.set_project_member(tests.recall(p), tests.get_supabase_uid('bob'), 'editor') from unnest(array['p1', 'p4']) p;
select fsync.set_project_member(tests.recall('p4'), tests.get_supabase_uid('carol'), 'viewer');
select tests.reset_authentication();
-- The build and the restores write a few hundred times: no rate limit here (tested at the end).
update fsync.settings set value = 'false' where key = 'rate_limit.enabled';

-- Bookkeeping (as the session user): the live files after every seq.
create temp table points (seq bigint primary key, phase text not null) on commit drop;
create temp table expected (seq bigint, file_path text, version integer, content text, content_hash text,
                            storage_path text, size_bytes bigint, file_type text) on commit drop;
create temp table problems (phase text, seq bigint, what text) on commit drop;
create temp table ops (kind text, ok boolean) on commit drop;
create temp table restores (seq bigint, changed boolean) on commit drop;

-- The live heads of a project, as a state.
create function pg_temp.live(p uuid)
returns table (file_path text, version integer, content text, content_hash text, storage_path text,
               size_bytes bigint, file_type text)
language sql stable as $$
  select f.file_path, f.version, f.content, f.content_hash, f.storage_path, f.size_bytes, f.file_type
    from public.project_files f
   where f.project_id = p and f.is_current_version and not f.is_deleted
$$;

-- Records the project's state at its current seq (once per seq).
create function pg_temp.record_point(p uuid, p_phase text)
returns void language plpgsql as $$
declare
  v_seq bigint := (select last_seq from public.projects where id = p);
begin
  if not exists (select 1 from points where seq = v_seq) then
    insert into points values (v_seq, p_phase);
    insert into expected select v_seq, l.* from pg_temp.live(p) l;
  end if;
end
$$;

-- Whether the live files differ from the recorded state at s (everything but the version).
create function pg_temp.differs(p uuid, s bigint)
returns boolean language sql stable as $$
  select exists (select l.file_path, l.content, l.content_hash, l.storage_path, l.size_bytes, l.file_type from pg_temp.live(p) l
                 except
                 select e.file_path, e.content, e.content_hash, e.storage_path, e.size_bytes, e.file_type from expected e where e.seq = s)
      or exists (select e.file_path, e.content, e.content_hash, e.storage_path, e.size_bytes, e.file_type from expected e where e.seq = s
                 except
                 select l.file_path, l.content, l.content_hash, l.storage_path, l.size_bytes, l.file_type from pg_temp.live(p) l)
$$;

-- Legacy rows, from before the change log (no event names them): they are the state at seq 0.
-- Inserted by the table's owner, which the direct-write trigger lets through, as the upgrade did.
insert into public.project_files (project_id, file_path, content, file_type, version, content_hash,
                                  is_current_version, is_deleted, size_bytes)
select tests.recall('p1'), l.path, l.content, fsync.infer_file_type(l.path), l.version,
       case when l.content is not null then fsync.content_hash(l.content) end,
       l.head, l.content is null, coalesce(octet_length(l.content), 0)
  from (values ('legacy/keep.txt', 1, 'old', false), ('legacy/keep.txt', 2, 'kept', true),
               ('legacy/gone.txt', 1, 'x', false), ('legacy/gone.txt', 2, null, true),
               ('a.ts', 1, 'legacy a', true)) as l(path, version, content, head);
update public.projects set live_files = 2, live_bytes = octet_length('kept') + octet_length('legacy a')
 where id = tests.recall('p1');
select pg_temp.record_point(tests.recall('p1'), 'build');

-- The build: 100 seeded random operations by the owner and the editor ------------------------
do $$
declare
  p uuid := tests.recall('p1');
  pool text[] := array['a.ts', 'b.ts', 'c.md', 'src/app.ts', 'src/util.ts', 'src/lib/x.ts', 'src/lib/y.ts', 'src',
                       'lib', 'lib/z.ts', 'assets/logo.png', 'assets/icon.png', 'docs/guide.md',
                       'notes/ünï cödé.md', 'big.txt', 'legacy/keep.txt', 'legacy/gone.txt'];
  contents text[] := array['v1', 'v2', 'v3', '', E'line 1\nline 2\r\n\ttabbed', 'ünïcödé € 😀', repeat('L', 70000),
                           'v1 ', 'kept', 'legacy a'];
  i integer;
  k integer;
  n integer;
  r float8;
  v_kind text;
  v_actor text;
  v_path text;
  v_live text;
  v_count integer;
  v_before bigint;
  v_after bigint;
  v_files jsonb;
  v_to bigint;
  v_ok boolean;
begin
  perform setseed(0.42);
  for i in 1 .. 100 loop
    select last_seq into v_before from public.projects where id = p;
    select count(*) into v_count from pg_temp.live(p);
    select l.file_path into v_live from pg_temp.live(p) l order by l.file_path collate "C"
     offset floor(random() * greatest(v_count, 1))::int limit 1;
    v_path := pool[1 + floor(random() * cardinality(pool))::int];
    v_actor := case when random() < 0.7 then 'alice' else 'bob' end;
    r := random();
    v_kind := case when r < 0.28 then 'upsert' when r < 0.40 then 'delete' when r < 0.52 then 'rename'
                   when r < 0.68 then 'bulk' when r < 0.80 then 'binary' when r < 0.88 then 'direct'
                   else 'restore' end;
    -- the arguments, drawn before acting so that every kind draws the same way
    k := 1 + floor(random() * 5)::int;
    n := 1 + floor(random() * 4)::int;
    v_files := '[]';
    for j in 1 .. n loop
      r := random();
      v_files := v_files || case
        when r < 0.45 then jsonb_build_object('file_path', pool[1 + floor(random() * cardinality(pool))::int],
                                              'content', contents[1 + floor(random() * cardinality(contents))::int])
        when r < 0.55 then jsonb_build_object('file_path', pool[1 + floor(random() * cardinality(pool))::int],
                                              'content', contents[1 + floor(random() * cardinality(contents))::int],
                                              'file_type', 'config')
        when r < 0.75 then jsonb_build_object('file_path', coalesce(v_live, 'none'), 'delete', true)
        else jsonb_build_object('file_path', pool[1 + floor(random() * cardinality(pool))::int],
                                'storage_path', format('project-assets/%s/blobs/b%s', p, j + k),
                                'content_hash', encode(sha256(convert_to('blob' || (j + k), 'UTF8')), 'hex'),
                                'size_bytes', 100 * (j + k)) end;
    end loop;
    v_to := floor(random() * (v_before + 1))::bigint;
    r := random();

    perform tests.authenticate_as(v_actor);
    v_ok := true;
    begin
      case v_kind
        when 'upsert' then
          perform fsync.upsert_project_file(p, v_path, contents[1 + floor(r * cardinality(contents))::int],
                                            case when k = 1 then 'markdown' when k = 2 then 'text' end);
        when 'delete' then
          perform fsync.delete_project_file(p, v_live);
        when 'rename' then
          perform fsync.rename_project_file(p, v_live, v_path);
        when 'bulk' then
          perform fsync.bulk_upsert_project_files(p, v_files);
        when 'binary' then
          perform fsync.register_binary_file(p, v_path, format('project-assets/%s/blobs/b%s', p, k),
                                             encode(sha256(convert_to('blob' || k, 'UTF8')), 'hex'), 100 * k);
        when 'direct' then  -- the legacy app's update, turned into a versioned write by the trigger
          update public.project_files f set content = contents[1 + floor(r * cardinality(contents))::int]
           where f.project_id = p and f.file_path = v_live and f.is_current_version;
        when 'restore' then
          perform fsync.restore_project(p, v_to, v_before);
      end case;
    exception when others then
      v_ok := false;
      -- Refusals the random arguments can earn: missing file, conflict, duplicate path in a bulk.
      if sqlstate not in ('PT404', 'PT409', 'PT422') or v_kind = 'restore' then
        perform tests.reset_authentication();
        insert into problems values ('build', v_before, format('%s raised %s: %s', v_kind, sqlstate, sqlerrm));
      end if;
    end;
    perform tests.reset_authentication();
    select last_seq into v_after from public.projects where id = p;
    insert into ops values (v_kind, v_ok and v_after > v_before);
    if v_after > v_before + 1 then
      insert into problems values ('build', v_after, format('%s took %s seqs', v_kind, v_after - v_before));
    end if;
    if v_kind = 'restore' and v_ok and pg_temp.differs(p, v_to) then
      insert into problems values ('build', v_after, format('restore to %s did not give the state at %s', v_to, v_to));
    end if;
    perform pg_temp.record_point(p, 'build');
  end loop;
end
$$;

select cmp_ok((select count(*) from points), '>=', 61::bigint, 'the build made at least 60 changes (seq 0 and one point per change)');
select is((select array_agg(kind order by kind) from (select kind from ops group by kind having bool_or(ok)) k),
          array['binary', 'bulk', 'delete', 'direct', 'rename', 'restore', 'upsert'],
          'every kind of write changed the project at least once');
select is((select array_agg(seq order by seq) from points),
          (select array_agg(s::bigint) from generate_series(0, (select last_seq from public.projects where id = tests.recall('p1'))::int) s),
          '… and the state after every seq was recorded');
select is_empty($$select * from problems where phase = 'build'$$,
                'the build: one seq per write at most, refusals only where the arguments earn them, restores give the recorded state');
select is((select count(*)::int from expected where seq = 0), 2, 'the state at seq 0 is the legacy files no event names');

-- History as it stands before the restores: every row must survive them unchanged.
create temp table history_before on commit drop as
  select f.id, f.file_path, f.version, f.content, f.content_hash, f.storage_path, f.size_bytes, f.file_type,
         f.is_deleted, f.created_at
    from public.project_files f where f.project_id = tests.recall('p1');

-- The property: restore to every recorded seq, in random order --------------------------------
do $$
declare
  p uuid := tests.recall('p1');
  s bigint;
  v_seqs bigint[];
  v_before bigint;
  v_after bigint;
  v_rows_before bigint;
  v_rows_after bigint;
  v_differs boolean;
  v_actor text;
  v_res jsonb;
  v_event public.project_events;
begin
  perform setseed(0.7);
  select array_agg(x.seq order by random()) into v_seqs from (select seq from points order by seq) x;
  foreach s in array v_seqs loop
    select last_seq into v_before from public.projects where id = p;
    select count(*) into v_rows_before from public.project_files where project_id = p;
    v_differs := pg_temp.differs(p, s);
    v_actor := case when random() < 0.5 then 'alice' else 'bob' end;
    perform tests.authenticate_as(v_actor);
    begin
      v_res := fsync.restore_project(p, s, v_before);
    exception when others then
      perform tests.reset_authentication();
      insert into problems values ('restore', s, format('raised %s: %s', sqlstate, sqlerrm));
      continue;
    end;
    perform tests.reset_authentication();
    select last_seq into v_after from public.projects where id = p;
    select count(*) into v_rows_after from public.project_files where project_id = p;
    insert into restores values (s, v_after > v_before);

    if pg_temp.differs(p, s) then
      insert into problems values ('restore', s, 'the live files differ from the state recorded at this seq');
    end if;
    if v_after - v_before <> (case when v_differs then 1 else 0 end) then
      insert into problems values ('restore', s, format('%s events (the state %s)', v_after - v_before,
                                                        case when v_differs then 'differed' else 'was already equal' end));
    end if;
    if (v_res ->> 'seq')::bigint is distinct from (case when v_differs then v_after end) then
      insert into problems values ('restore', s, format('returned seq %s, the project is at %s', v_res ->> 'seq', v_after));
    end if;
    if v_rows_after - v_rows_before <> jsonb_array_length(v_res -> 'files')
       or jsonb_array_length(v_res -> 'files') <> (v_res ->> 'restored')::int + (v_res ->> 'deleted')::int then
      insert into problems values ('restore', s, format('%s new rows for %s', v_rows_after - v_rows_before, v_res));
    end if;
    if (v_res ->> 'unchanged')::bigint <> (select count(*) from expected e where e.seq = s) - (v_res ->> 'restored')::int then
      insert into problems values ('restore', s, format('unchanged is %s', v_res ->> 'unchanged'));
    end if;
    if v_differs then
      select * into v_event from public.project_events e where e.project_id = p and e.seq = v_after;
      if v_event.event_type <> 'bulk:apply' or v_event.payload -> 'files' <> v_res -> 'files'
         or v_event.payload -> 'restore' <> jsonb_build_object('to_seq', s, 'partial', false)
         or v_event.actor <> tests.get_supabase_uid(v_actor) then
        insert into problems values ('restore', s, format('event %s', v_event.payload));
      end if;
      -- what changed is exactly what the restore wrote, and nothing separates the result from the target
      if exists (select d.file_path, d.change = 'deleted' from fsync.diff_project(p, v_before, v_after) d
                 except select f ->> 'file_path', (f ->> 'deleted')::boolean from jsonb_array_elements(v_res -> 'files') f)
         or exists (select f ->> 'file_path', (f ->> 'deleted')::boolean from jsonb_array_elements(v_res -> 'files') f
                    except select d.file_path, d.change = 'deleted' from fsync.diff_project(p, v_before, v_after) d) then
        insert into problems values ('restore', s, 'diff_project(before, after) is not what the restore wrote');
      end if;
      if exists (select from fsync.diff_project(p, s, v_after)) then
        insert into problems values ('restore', s, 'diff_project(to_seq, after) is not empty');
      end if;
    end if;
    if (select row(pr.live_files, pr.live_bytes) from public.projects pr where pr.id = p)
       is distinct from (select row(count(*), coalesce(sum(l.size_bytes), 0)::bigint) from pg_temp.live(p) l) then
      insert into problems values ('restore', s, 'live_files/live_bytes disagree with the live heads');
    end if;
    -- idempotent: the same point again changes nothing
    perform tests.authenticate_as(v_actor);
    v_res := fsync.restore_project(p, s, v_after);
    perform tests.reset_authentication();
    if v_res ->> 'seq' is not null or v_res -> 'files' <> '[]'
       or (select last_seq from public.projects where id = p) <> v_after then
      insert into problems values ('again', s, format('a second restore to the same point returned %s', v_res));
    end if;
    perform pg_temp.record_point(p, 'restore');
  end loop;
end
$$;

select is((select array_agg(seq order by seq) from restores), (select array_agg(seq order by seq) from points where phase = 'build'),
          'a writer restored the project to every seq of the build, once each');
select is_empty($$select * from problems where phase = 'again'$$,
                'a second restore to the same point changes nothing (no event, seq null)');
select is_empty($$select * from problems where phase = 'restore'$$,
                'restore to every seq: the live files equal the state recorded there (content, hash, storage_path, size, type), '
                'one bulk:apply event naming to_seq when something changed and none otherwise, one new version per changed file, '
                'running totals exact');
select is_empty($$select * from history_before except
                  select f.id, f.file_path, f.version, f.content, f.content_hash, f.storage_path, f.size_bytes, f.file_type,
                         f.is_deleted, f.created_at
                    from public.project_files f where f.project_id = tests.recall('p1')$$,
                'history is never rewritten: every version from before the restores is still there, unchanged');
select is((select array_agg(seq order by seq) from public.project_events where project_id = tests.recall('p1')),
          (select array_agg(s::bigint) from generate_series(1, (select last_seq from public.projects where id = tests.recall('p1'))::int) s),
          'the change log stays gapless');
select is_empty($$
  select file_path from public.project_files where project_id = tests.recall('p1') group by file_path
  having not (min(version) = 1 and max(version) = count(*) and count(distinct version) = count(*))
      or count(*) filter (where is_current_version) <> 1
$$, 'versions stay gapless with one head per path');
select is_empty($$
  select a.file_path from public.project_files a join public.project_files b
    on b.project_id = a.project_id and starts_with(b.file_path, a.file_path || '/')
   where a.project_id = tests.recall('p1') and a.is_current_version and not a.is_deleted and b.is_current_version and not b.is_deleted
$$, 'no file is also a folder after all the restores');

-- The diff property: diff_project(a, b) is the difference of the recorded states ------------
create temp table pairs (a bigint, b bigint) on commit drop;
insert into pairs
  select x.seq, y.seq from (select seq, lead(seq) over (order by seq) as nxt from points) x
    join points y on y.seq = x.nxt
  union
  select y.seq, x.seq from (select seq, lead(seq) over (order by seq) as nxt from points) x
    join points y on y.seq = x.nxt;
select setseed(0.3);
insert into pairs
  select x.s[1 + floor(random() * cardinality(x.s))::int], x.s[1 + floor(random() * cardinality(x.s))::int]
    from (select array_agg(seq order by seq) as s from points) x, generate_series(1, 300) g;
create temp table diff_rows on commit drop as
  select pr.a, pr.b, d.*
    from (select distinct a, b from pairs) pr, lateral fsync.diff_project(tests.recall('p1'), pr.a, pr.b) d;
create temp table diff_expected on commit drop as
  select pr.a, pr.b, coalesce(j.x_path, j.y_path) as file_path,
         case when j.x_path is null then 'added' when j.y_path is null then 'deleted' else 'modified' end as change,
         j.x_version as from_version, j.y_version as to_version, j.x_hash as from_hash, j.y_hash as to_hash
    from (select distinct a, b from pairs) pr
    cross join lateral (
      select x.file_path as x_path, x.version as x_version, x.content_hash as x_hash, x.storage_path as x_storage,
             x.file_type as x_type,
             y.file_path as y_path, y.version as y_version, y.content_hash as y_hash, y.storage_path as y_storage,
             y.file_type as y_type
        from (select * from expected e where e.seq = pr.a) x
        full join (select * from expected e where e.seq = pr.b) y on y.file_path = x.file_path) j
   where j.x_path is null or j.y_path is null
      or (j.x_hash, j.x_storage, j.x_type) is distinct from (j.y_hash, j.y_storage, j.y_type);
select cmp_ok((select count(*) from (select distinct a, b from pairs) x), '>=', 300::bigint, 'diffs of at least 300 pairs of points');
select cmp_ok((select count(*) from diff_rows where change = 'renamed'), '>', 0::bigint, '… some of which hold renames');
select is_empty($$
  (select a, b, file_path, change, from_version, to_version, from_hash, to_hash from diff_rows where change <> 'renamed'
   union all
   select a, b, from_path, 'deleted', from_version, null, from_hash, null from diff_rows where change = 'renamed'
   union all
   select a, b, file_path, 'added', null, to_version, null, to_hash from diff_rows where change = 'renamed')
  except all
  select a, b, file_path, change, from_version, to_version, from_hash, to_hash from diff_expected
$$, 'diff_project lists only differences of the recorded states (a rename as its deleted and added paths)');
select is_empty($$
  select a, b, file_path, change, from_version, to_version, from_hash, to_hash from diff_expected
  except all
  (select a, b, file_path, change, from_version, to_version, from_hash, to_hash from diff_rows where change <> 'renamed'
   union all
   select a, b, from_path, 'deleted', from_version, null, from_hash, null from diff_rows where change = 'renamed'
   union all
   select a, b, file_path, 'added', null, to_version, null, to_hash from diff_rows where change = 'renamed')
$$, '… and every one of them');
select is_empty($$select * from diff_rows where change = 'renamed' and from_hash is distinct from to_hash$$,
                'a rename keeps the content');

-- Known diffs ---------------------------------------------------------------------------------
select tests.authenticate_as('alice');
select set_config('tests.asset', 'project-assets/' || tests.recall('p3') || '/', true);
select fsync.upsert_project_file(tests.recall('p3'), 'keep.ts', 'k');                       -- 1
select fsync.upsert_project_file(tests.recall('p3'), 'mod.ts', 'm1');                       -- 2
select fsync.upsert_project_file(tests.recall('p3'), 'del.ts', 'd');                        -- 3
select fsync.upsert_project_file(tests.recall('p3'), 'ren/a.ts', 'r');                      -- 4
select fsync.register_binary_file(tests.recall('p3'), 'img/logo.png', current_setting('tests.asset') || 'logo-1.png',
                                  repeat('ab', 32), 1234, 'image');                          -- 5
select fsync.upsert_project_file(tests.recall('p3'), 'mod.ts', 'm2');                       -- 6
select fsync.delete_project_file(tests.recall('p3'), 'del.ts');                             -- 7
select fsync.rename_project_file(tests.recall('p3'), 'ren/a.ts', 'ren/b.ts');               -- 8
select fsync.rename_project_file(tests.recall('p3'), 'ren/b.ts', 'ren/c.ts');               -- 9
select fsync.upsert_project_file(tests.recall('p3'), 'new.ts', 'n');                        -- 10
select fsync.rename_project_file(tests.recall('p3'), 'img/logo.png', 'img/brand.png');      -- 11
select fsync.upsert_project_file(tests.recall('p3'), 'edit/x.ts', 'x1');                    -- 12
select fsync.rename_project_file(tests.recall('p3'), 'edit/x.ts', 'edit/y.ts');             -- 13
select fsync.upsert_project_file(tests.recall('p3'), 'edit/y.ts', 'x2');                    -- 14
select fsync.upsert_project_file(tests.recall('p3'), 'copy.ts', 'r');                       -- 15: ren/a.ts's content, not a rename
create function pg_temp.h(t text) returns text language sql immutable as $$ select encode(sha256(convert_to(t, 'UTF8')), 'hex') $$;

select results_eq(format($$select * from fsync.diff_project(%L, 5, 15)$$, tests.recall('p3')),
  $$values ('copy.ts', 'added', null, null, 1, null, pg_temp.h('r')),
           ('del.ts', 'deleted', null, 1, null, pg_temp.h('d'), null),
           ('edit/y.ts', 'added', null, null, 2, null, pg_temp.h('x2')),
           ('img/brand.png', 'renamed', 'img/logo.png', 1, 1, repeat('ab', 32), repeat('ab', 32)),
           ('mod.ts', 'modified', null, 1, 2, pg_temp.h('m1'), pg_temp.h('m2')),
           ('new.ts', 'added', null, null, 1, null, pg_temp.h('n')),
           ('ren/c.ts', 'renamed', 'ren/a.ts', 1, 1, pg_temp.h('r'), pg_temp.h('r'))$$,
  'diff 5 → 15: added, deleted, modified; renames followed through a chain (a → b → c) and for binaries; '
  'an added copy of a deleted file''s content is not a rename');
select results_eq(format($$select * from fsync.diff_project(%L, 15, 5)$$, tests.recall('p3')),
  $$values ('copy.ts', 'deleted', null, 1, null, pg_temp.h('r'), null),
           ('del.ts', 'added', null, null, 1, null, pg_temp.h('d')),
           ('edit/y.ts', 'deleted', null, 2, null, pg_temp.h('x2'), null),
           ('img/logo.png', 'renamed', 'img/brand.png', 1, 1, repeat('ab', 32), repeat('ab', 32)),
           ('mod.ts', 'modified', null, 2, 1, pg_temp.h('m2'), pg_temp.h('m1')),
           ('new.ts', 'deleted', null, 1, null, pg_temp.h('n'), null),
           ('ren/a.ts', 'renamed', 'ren/c.ts', 1, 1, pg_temp.h('r'), pg_temp.h('r'))$$,
  'diff 15 → 5 is the same difference backwards');
select results_eq(format($$select file_path, change, from_path from fsync.diff_project(%L, 12, 13)$$, tests.recall('p3')),
  $$values ('edit/y.ts', 'renamed', 'edit/x.ts')$$, 'a rename alone');
select results_eq(format($$select * from fsync.diff_project(%L, 12, 14)$$, tests.recall('p3')),
  $$values ('edit/x.ts', 'deleted', null, 1, null, pg_temp.h('x1'), null),
           ('edit/y.ts', 'added', null, null, 2, null, pg_temp.h('x2'))$$,
  'a renamed and edited file is a delete and an add');
select results_eq(format($$select file_path, change, to_version from fsync.diff_project(%L, 0, 2)$$, tests.recall('p3')),
  $$values ('keep.ts', 'added', 1), ('mod.ts', 'added', 1)$$, 'from seq 0: everything is added');
select is_empty(format($$select * from fsync.diff_project(%L, 7, 7)$$, tests.recall('p3')), 'a point does not differ from itself');
select is_empty(format($$select * from fsync.diff_project(%L, 1, 2) where file_path = 'keep.ts'$$, tests.recall('p3')),
                'paths untouched between the points are not listed');

-- A known restore: back to seq 5, with the binary -------------------------------------------------
select is(fsync.restore_project(tests.recall('p3'), 5, 15) - 'project_id',
  jsonb_build_object('seq', 16, 'to_seq', 5, 'restored', 4, 'deleted', 5, 'unchanged', 1, 'files', jsonb_build_array(
    jsonb_build_object('file_path', 'copy.ts', 'version', 2, 'content_hash', null, 'deleted', true),
    jsonb_build_object('file_path', 'edit/y.ts', 'version', 3, 'content_hash', null, 'deleted', true),
    jsonb_build_object('file_path', 'img/brand.png', 'version', 2, 'content_hash', null, 'deleted', true),
    jsonb_build_object('file_path', 'new.ts', 'version', 2, 'content_hash', null, 'deleted', true),
    jsonb_build_object('file_path', 'ren/c.ts', 'version', 2, 'content_hash', null, 'deleted', true),
    jsonb_build_object('file_path', 'del.ts', 'version', 3, 'content_hash', pg_temp.h('d'), 'deleted', false),
    jsonb_build_object('file_path', 'img/logo.png', 'version', 3, 'content_hash', repeat('ab', 32), 'deleted', false),
    jsonb_build_object('file_path', 'mod.ts', 'version', 3, 'content_hash', pg_temp.h('m1'), 'deleted', false),
    jsonb_build_object('file_path', 'ren/a.ts', 'version', 3, 'content_hash', pg_temp.h('r'), 'deleted', false))),
  'restore to 5: tombstones first, then the old contents as new versions, each group by path; keep.ts left alone');
select results_eq(format($$select file_path, version, content, content_hash, storage_path, size_bytes, file_type
                             from pg_temp.live(%L) order by file_path$$, tests.recall('p3')),
  format($$values ('del.ts', 3, 'd', pg_temp.h('d'), null, 1::bigint, 'typescript'),
                  ('img/logo.png', 3, null, repeat('ab', 32), '%slogo-1.png', 1234::bigint, 'image'),
                  ('keep.ts', 1, 'k', pg_temp.h('k'), null, 1::bigint, 'typescript'),
                  ('mod.ts', 3, 'm1', pg_temp.h('m1'), null, 2::bigint, 'typescript'),
                  ('ren/a.ts', 3, 'r', pg_temp.h('r'), null, 1::bigint, 'typescript')$$, current_setting('tests.asset')),
  'the binary is back with its storage_path, hash, size and type; texts with their content');
select tests.reset_authentication();
select is((select payload - 'timestamp' - 'project_id' from public.project_events where project_id = tests.recall('p3') and seq = 16),
          jsonb_build_object('v', 1, 'seq', 16, 'type', 'bulk:apply', 'actor', tests.get_supabase_uid('alice'),
                             'restore', jsonb_build_object('to_seq', 5, 'partial', false),
                             'files', (select payload -> 'files' from public.project_events where project_id = tests.recall('p3') and seq = 16)),
          'one bulk:apply event: the files without contents, and restore.to_seq');
select is((select count(*)::int from realtime.messages where topic = 'project:' || tests.recall('p3') and event = 'bulk:apply'
              and payload -> 'restore' ->> 'to_seq' = '5'), 1, 'broadcast like any bulk');
select tests.authenticate_as('alice');
select ok((select e ->> 'actor' = tests.get_supabase_uid('alice')::text
                  and (e ->> 'timestamp') ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$'
             from fsync.list_project_events(tests.recall('p3'), 15, 1) e),
          'list_project_events gives a history view the actor and the time of each change');
select is(fsync.restore_project(tests.recall('p3'), 16, 16) - 'project_id',
          '{"seq": null, "to_seq": 16, "restored": 0, "deleted": 0, "unchanged": 5, "files": []}'::jsonb,
          'a restore that changes nothing: seq null, no event');
select is(fsync.restore_project(tests.recall('p3'), 5, 16) ->> 'seq', null,
          '… also when the state at to_seq is already the live one');
select tests.reset_authentication();
select is((select last_seq from public.projects where id = tests.recall('p3')), 16::bigint, '… so the seq did not move');

-- Errors ------------------------------------------------------------------------------------------
select tests.authenticate_as('alice');
select fsync.upsert_project_file(tests.recall('p4'), 'a.ts', 'a1');   -- 1
select fsync.upsert_project_file(tests.recall('p4'), 'b.ts', 'b1');   -- 2
select fsync.upsert_project_file(tests.recall('p4'), 'a.ts', 'a2');   -- 3
select throws_ok(format($$select fsync.restore_project(%L, 1, 2)$$, tests.recall('p4')),
  'PT409', 'the project changed: expected seq 2, but it is at seq 3; review the newer changes and retry',
  'expected_seq behind the project → PT409');
select is((tests.error_of(format($$select fsync.restore_project(%L, 1, 2)$$, tests.recall('p4'))) ->> 'detail')::jsonb,
          '{"expected_seq": 2, "current_seq": 3}'::jsonb, 'PT409 DETAIL {expected_seq, current_seq}');
select throws_ok(format($$select fsync.restore_project(%L, 4, 3)$$, tests.recall('p4')),
  'PT422', 'invalid to_seq 4: the project''s history runs from seq 0 to seq 3', 'to_seq after the project''s seq → PT422');
select is((tests.error_of(format($$select fsync.restore_project(%L, 4, 3)$$, tests.recall('p4'))) ->> 'detail')::jsonb,
          '{"param": "to_seq", "rule": "seq_range", "min": 0, "max": 3}'::jsonb, 'PT422 DETAIL names the range');
select throws_ok(format($$select public.restore_project(json_build_object('project_uuid', %L, 'to_seq', -1, 'expected_seq', 3))$$, tests.recall('p4')),
  'PT422', 'invalid to_seq: must be an integer from 0 to 9223372036854775807; got -1', 'a negative to_seq → PT422');
select throws_ok(format($$select public.restore_project(json_build_object('project_uuid', %L, 'to_seq', 1))$$, tests.recall('p4')),
  'PT422', 'missing expected_seq: restore_project needs project_uuid, to_seq, expected_seq', 'expected_seq is required');
select is((tests.error_of(format($$select public.restore_project(json_build_object('project_uuid', %L, 'to_seq', 1, 'expected_seq', 3, 'force', true))$$,
                                 tests.recall('p4'))) ->> 'detail')::jsonb,
          '{"param": "force", "rule": "unknown"}'::jsonb, 'an unknown argument → PT422 naming it');
select is((tests.error_of(format($$select * from public.diff_project(json_build_object('project_uuid', %L, 'from_seq', '1', 'to_seq', 3))$$,
                                 tests.recall('p4'))) ->> 'detail')::jsonb,
          '{"param": "from_seq", "rule": "integer"}'::jsonb, 'a seq given as a string → PT422 naming it');
select throws_ok(format($$select * from public.diff_project(json_build_object('project_uuid', %L, 'from_seq', 0, 'to_seq', 9))$$, tests.recall('p4')),
  'PT422', 'invalid to_seq 9: the project''s history runs from seq 0 to seq 3', 'diff: a point after the project''s seq → PT422');
select tests.reset_authentication();
select results_eq(format($$select last_seq, (select count(*) from public.project_files f where f.project_id = p.id)
                             from public.projects p where p.id = %L$$, tests.recall('p4')),
                  $$values (3::bigint, 3::bigint)$$, 'refused restores changed nothing');

-- Not a generation: FSYNC_BULK_GENERATION off still lets a writer restore.
update public.feature_flags set enabled = false where flag_key = 'FSYNC_BULK_GENERATION';
select tests.authenticate_as('alice');
select throws_ok(format($$select fsync.bulk_upsert_project_files(%L, '[]')$$, tests.recall('p4')),
  'PT403', 'bulk generation is off for this user (FSYNC_BULK_GENERATION)', 'with FSYNC_BULK_GENERATION off the bulk is refused …');
select is(fsync.restore_project(tests.recall('p4'), 2, 3) ->> 'seq', '4', '… but a restore is not a generation');
select tests.reset_authentication();
update public.feature_flags set enabled = true where flag_key = 'FSYNC_BULK_GENERATION';

-- Retention: once the log's oldest events are pruned, older points are gone (PT410).
delete from public.project_events where project_id = tests.recall('p4') and seq <= 1;
select tests.authenticate_as('alice');
select throws_ok(format($$select fsync.restore_project(%L, 0, 4)$$, tests.recall('p4')),
  'PT410', 'seq 0 is no longer in the project''s history: the oldest point available is seq 1', 'a point before the log → PT410');
select is((tests.error_of(format($$select fsync.restore_project(%L, 0, 4)$$, tests.recall('p4'))) ->> 'detail')::jsonb,
          '{"param": "to_seq", "oldest_seq": 1}'::jsonb, 'PT410 DETAIL names the oldest point');
select throws_ok(format($$select * from fsync.diff_project(%L, 0, 4)$$, tests.recall('p4')),
  'PT410', 'seq 0 is no longer in the project''s history: the oldest point available is seq 1', '… for diffs too');
select is(fsync.restore_project(tests.recall('p4'), 1, 4) ->> 'deleted', '1', 'the oldest point itself can be restored …');
select results_eq(format($$select file_path, content from pg_temp.live(%L)$$, tests.recall('p4')), $$values ('a.ts', 'a1')$$,
                  '… to what it was');

-- Caps, file/folder changes, legacy conflicts (p5) -----------------------------------------------
select fsync.upsert_project_file(tests.recall('p5'), 'src', 'a file');   -- 1
select fsync.delete_project_file(tests.recall('p5'), 'src');             -- 2
select fsync.upsert_project_file(tests.recall('p5'), 'src/a.ts', 'a');   -- 3
select fsync.upsert_project_file(tests.recall('p5'), 'src/b.ts', 'b');   -- 4
select is(fsync.restore_project(tests.recall('p5'), 1, 4) ->> 'restored', '1', 'a folder becomes the file it was …');
select is(fsync.restore_project(tests.recall('p5'), 4, 5) ->> 'restored', '2', '… and back (tombstones are written first)');
select fsync.delete_project_file(tests.recall('p5'), 'src/a.ts');        -- 7
select fsync.delete_project_file(tests.recall('p5'), 'src/b.ts');        -- 8
select tests.reset_authentication();
update fsync.settings set value = '1' where key = 'limits.max_project_files';
select tests.authenticate_as('alice');
select throws_ok(format($$select fsync.restore_project(%L, 4, 8)$$, tests.recall('p5')),
  'PT413', format('project %s is full: this write would take it from 0 to 2 files; the limit is 1 files', tests.recall('p5')),
  'a restore past the project caps → PT413');
select tests.reset_authentication();
update fsync.settings set value = '65534' where key = 'limits.max_project_files';
-- Legacy rows holding a file and a folder of the same name (a conflict fs-sync no longer
-- accepts), deleted since: restoring them would recreate the conflict.
insert into public.project_files (project_id, file_path, content, file_type, version, content_hash, is_current_version,
                                  is_deleted, size_bytes)
values (tests.recall('p5'), 'x', 'x', 'text', 1, pg_temp.h('x'), true, false, 1),
       (tests.recall('p5'), 'x/y', 'y', 'text', 1, pg_temp.h('y'), true, false, 1);
update public.projects set live_files = live_files + 2, live_bytes = live_bytes + 2 where id = tests.recall('p5');
select tests.authenticate_as('alice');
select fsync.delete_project_file(tests.recall('p5'), 'x');     -- 9
select fsync.delete_project_file(tests.recall('p5'), 'x/y');   -- 10
select is((tests.error_of(format($$select fsync.restore_project(%L, 8, 10)$$, tests.recall('p5'))) ->> 'detail')::jsonb,
          '{"path": "x/y", "conflicting_path": "x", "rule": "path_conflict"}'::jsonb,
          'a restore is refused where the bulk would be: a file and a folder of one name (PT409 path_conflict)');
select fsync.upsert_project_file(tests.recall('p5'), 'cfg.txt', 'same');                 -- 11
select fsync.upsert_project_file(tests.recall('p5'), 'cfg.txt', 'same', 'config');       -- 12: only the type changes
select is(fsync.restore_project(tests.recall('p5'), 11, 12) ->> 'restored', '1',
          'the file_type is part of the state: a type-only change is restored too …');
select is((select file_type from pg_temp.live(tests.recall('p5')) where file_path = 'cfg.txt'), 'text', '… to the type it had');

-- Undo one change: paths limits the restore to the paths that change touched (what the store's undo sends).
select fsync.bulk_upsert_project_files(tests.recall('p5'),
  '[{"file_path": "gen/a.ts", "content": "ga"}, {"file_path": "gen/b.ts", "content": "gb"}, {"file_path": "cfg.txt", "content": "gen"}]');  -- 14
select fsync.upsert_project_file(tests.recall('p5'), 'gen/b.ts', 'edited by hand');   -- 15: overlaps the generation
select fsync.upsert_project_file(tests.recall('p5'), 'other.ts', 'o');                -- 16
select is(fsync.restore_project(tests.recall('p5'), 13, 16, array['gen/a.ts', 'cfg.txt']) - 'project_id' - 'files',
          '{"seq": 17, "to_seq": 13, "restored": 1, "deleted": 1, "unchanged": 0}'::jsonb,
          'restore with paths: only those paths go back (undo of change 14 without its overlapped path)');
select results_eq(format($$select file_path, content from pg_temp.live(%L) order by file_path$$, tests.recall('p5')),
                  $$values ('cfg.txt', 'same'), ('gen/b.ts', 'edited by hand'), ('other.ts', 'o')$$,
                  '… the later edit and the other paths are left as they are');
select is(fsync.restore_project(tests.recall('p5'), 13, 17, array[]::text[]) ->> 'seq', null, 'no paths: nothing to do');
select is((tests.error_of(format($$select public.restore_project(json_build_object('project_uuid', %L, 'to_seq', 13, 'expected_seq', 17, 'paths', 'cfg.txt'))$$,
                                 tests.recall('p5'))) ->> 'detail')::jsonb ->> 'param', 'paths', 'paths must be an array of strings (PT422)');
select tests.reset_authentication();
select is((select payload -> 'restore' from public.project_events where project_id = tests.recall('p5') and seq = 17),
          '{"to_seq": 13, "partial": true}'::jsonb, 'the event says the restore was partial');
select tests.authenticate_as('alice');

-- Role matrix (the JSON RPCs, as PostgREST calls them) ------------------------------------------
select tests.clear_authentication();
select throws_ok(format($$select public.restore_project(json_build_object('project_uuid', %L, 'to_seq', 0, 'expected_seq', 5))$$, tests.recall('p4')),
  '42501', 'permission denied for function restore_project', 'anon cannot restore');
select throws_ok(format($$select * from public.diff_project(json_build_object('project_uuid', %L, 'from_seq', 2, 'to_seq', 5))$$, tests.recall('p4')),
  '42501', 'permission denied for function diff_project', 'anon cannot diff');
select tests.authenticate_as('carol');
select throws_ok(format($$select public.restore_project(json_build_object('project_uuid', %L, 'to_seq', 2, 'expected_seq', 5))$$, tests.recall('p4')),
  '42501', format('access denied: viewers cannot change files of project %s', tests.recall('p4')), 'a viewer cannot restore');
select is((select count(*)::int from public.diff_project(json_build_object('project_uuid', tests.recall('p4'), 'from_seq', 2, 'to_seq', 5))),
          1, 'a viewer reads diffs');
select tests.authenticate_as('mallory');
select throws_ok(format($$select public.restore_project(json_build_object('project_uuid', %L, 'to_seq', 2, 'expected_seq', 5))$$, tests.recall('p4')),
  '42501', format('access denied: you are not a member of project %s', tests.recall('p4')), 'a non-member cannot restore');
select throws_ok(format($$select * from public.diff_project(json_build_object('project_uuid', %L, 'from_seq', 2, 'to_seq', 5))$$, tests.recall('p4')),
  '42501', format('access denied: you are not a member of project %s', tests.recall('p4')), 'a non-member cannot diff');
select tests.authenticate_as_container(tests.recall('p4'));
select throws_ok(format($$select public.restore_project(json_build_object('project_uuid', %L, 'to_seq', 2, 'expected_seq', 5))$$, tests.recall('p4')),
  '42501', 'permission denied for function restore_project', 'a container token cannot restore');
select throws_ok(format($$select fsync.restore_project(%L, 2, 5)$$, tests.recall('p4')),
  '42501', 'permission denied for function restore_project', '… nor call the implementation');
select throws_ok(format($$select * from public.diff_project(json_build_object('project_uuid', %L, 'from_seq', 2, 'to_seq', 5))$$, tests.recall('p4')),
  '42501', 'permission denied for function diff_project', 'a container token cannot diff (it follows the log)');
select tests.authenticate_as('bob');
select is(public.restore_project(json_build_object('project_uuid', tests.recall('p4'), 'to_seq', 3, 'expected_seq', 5)) ->> 'seq',
          '6', 'an editor restores');
select is((select count(*)::int from public.diff_project(json_build_object('project_uuid', tests.recall('p4'), 'from_seq', 5, 'to_seq', 6))),
          2, 'an editor diffs');
select tests.authenticate_as('alice');
select is(public.restore_project(json_build_object('project_uuid', tests.recall('p4'), 'to_seq', 5, 'expected_seq', 6)) ->> 'seq',
          '7', 'the owner restores');
select tests.authenticate_as_service_role();
select is(public.restore_project(json_build_object('project_uuid', tests.recall('p4'), 'to_seq', 6, 'expected_seq', 7)) ->> 'seq',
          '8', 'the service role restores');
select is((select count(*)::int from public.diff_project(json_build_object('project_uuid', tests.recall('p4'), 'from_seq', 7, 'to_seq', 8))),
          2, 'the service role diffs');

-- Rate limit: one token per restore, like a bulk.
select tests.reset_authentication();
update fsync.settings set value = 'true' where key = 'rate_limit.enabled';
update fsync.settings set value = '1' where key = 'rate_limit.capacity';
update fsync.settings set value = '0.001' where key = 'rate_limit.refill_per_second';
select tests.authenticate_as('bob');
select lives_ok(format($$select fsync.restore_project(%L, 5, 8)$$, tests.recall('p4')), 'a restore takes the one token …');
select throws_ok(format($$select fsync.restore_project(%L, 6, 9)$$, tests.recall('p4')),
  'PT429', 'too many writes to this project: wait a moment and retry', '… and the next is rate limited');

select tests.reset_authentication();
select * from finish();
rollback;
