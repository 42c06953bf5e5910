-- Planner statistics keep up with project_files (migrations/*_fsync-planner-stats.sql):
-- once the table has grown to twice the pages its statistics describe (and past
-- 1 MiB), a write analyzes it, so the write RPCs' cached plans are rebuilt for
-- its size instead of scanning it on every save (quadratic seeding of a new
-- database); below that it analyzes nothing.
begin;
create extension if not exists pgtap;
select plan(4);

-- Bulk generation on, as a fresh install seeds it (an adopted database has the operator's flags).
update public.feature_flags f
   set enabled = true, rollout_percentage = 100, target_user_ids = '{}', environments = '{}'
 where f.flag_key = 'FSYNC_BULK_GENERATION';
-- The rate limit off: this file saves thousands of times in a row on purpose.
update fsync.settings set value = 'false' where key = 'rate_limit.enabled';

create function pg_temp.pages() returns bigint language sql volatile as $$
  select pg_catalog.pg_relation_size('public.project_files') / current_setting('block_size')::bigint
$$;
-- Explicit ANALYZEs of project_files so far, the trigger's (autovacuum's are counted apart); the
-- statistics snapshot is dropped first: it is cached per transaction.
create function pg_temp.analyzes() returns bigint language sql volatile as $$
  select pg_catalog.pg_stat_clear_snapshot();
  select s.analyze_count from pg_catalog.pg_stat_user_tables s
   where s.relid = 'public.project_files'::regclass
$$;
-- The size at which a write analyzes the table, as of now.
create function pg_temp.threshold() returns bigint language sql volatile as $$
  select greatest(2 * c.relpages::bigint, 128) from pg_catalog.pg_class c where c.oid = 'public.project_files'::regclass
$$;

create temp table state (key text primary key, value bigint);
create function pg_temp.keep(p_key text, p_value bigint) returns void language sql as $$
  insert into state values (p_key, p_value) on conflict (key) do update set value = excluded.value
$$;
create function pg_temp.kept(p_key text) returns bigint language sql stable as $$
  select value from state where key = p_key
$$;

select tests.create_supabase_user('alice');
select tests.authenticate_as('alice');
select tests.remember('p1', fsync.create_project('p1'));
select tests.reset_authentication();

-- Writes through the RPC in bulks of p_files small files (rows in the table itself, not TOASTed).
create function pg_temp.write(p_bulks integer, p_files integer, p_tag text) returns void language plpgsql as $$
begin
  perform tests.authenticate_as('alice');
  for b in 1 .. p_bulks loop
    perform public.bulk_upsert_project_files(json_build_object('project_uuid', tests.recall('p1'), 'files', (
      select jsonb_agg(jsonb_build_object('file_path', format('src/%s%s/f%s.ts', p_tag, b, i),
                                          'content', repeat(format('export const v%s = %s;', i, b), 8)))
        from generate_series(1, p_files) as i)));
  end loop;
  perform tests.reset_authentication();
end
$$;
-- Single saves through the RPC until project_files has grown past p_pages pages (10,000 at most).
create function pg_temp.save_until(p_pages bigint) returns void language plpgsql as $$
begin
  perform tests.authenticate_as('alice');
  for i in 1 .. 10000 loop
    exit when pg_temp.pages() > p_pages;
    perform public.upsert_project_file(json_build_object('project_uuid', tests.recall('p1'),
      'p_file_path', format('src/single/f%s.ts', i), 'p_content', repeat(format('export const s%s = 1;', i), 8)));
  end loop;
  perform tests.reset_authentication();
end
$$;

-- Writes while the table is below the threshold analyze nothing.
select pg_temp.keep('below', (pg_temp.threshold() - pg_temp.pages() >= 8)::int);
select pg_temp.keep('before', pg_temp.analyzes());
select pg_temp.write(1, 64, 'small') where pg_temp.kept('below') = 1;
select is(pg_temp.analyzes(), pg_temp.kept('before'),
          'writes that leave project_files below twice its analyzed pages do not analyze it')
  where pg_temp.kept('below') = 1;
select pass('… (project_files was at the threshold already: nothing to check)') where pg_temp.kept('below') = 0;

-- Growing past the threshold analyzes it, here by single saves (the common way to fill a project,
-- and the one where the stale plans cost most per file; bulks go through the same trigger). An
-- empty database goes from nothing to over 1 MiB. A database whose project_files is already large
-- (velocity's, adopted) is out of this file's reach: doubling it would take hundreds of thousands
-- of rows.
select pg_temp.keep('reach', (pg_temp.threshold() - pg_temp.pages() <= 150)::int);
select pg_temp.keep('before', pg_temp.analyzes());
select pg_temp.keep('target', pg_temp.threshold() + 8);
select pg_temp.save_until(pg_temp.kept('target')) where pg_temp.kept('reach') = 1;
select cmp_ok(pg_temp.pages(), '>', pg_temp.kept('target'), 'the saves grew project_files past the threshold')
  where pg_temp.kept('reach') = 1;
select cmp_ok(pg_temp.analyzes(), '>', pg_temp.kept('before'), '… and a save analyzed it')
  where pg_temp.kept('reach') = 1;
select skip('project_files is too large to double here (an adopted database)', 2) where pg_temp.kept('reach') = 0;
select ok(not has_function_privilege('anon', 'fsync.refresh_file_statistics()', 'execute'), 'anon may not call the trigger function');

select * from finish();
rollback;
