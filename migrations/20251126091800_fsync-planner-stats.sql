-- =====================================================================
-- fsync-planner-stats: planner statistics that keep up with project_files
-- while a new deployment fills it, so bulk writes stay linear.
--
-- The write RPCs are PL/pgSQL: each statement's plan is cached per connection,
-- and after five executions a generic plan built from the statistics of that
-- moment is kept until the table's statistics change. On a new database
-- project_files starts empty, so the kept plans scan the table, and until
-- autovacuum analyzes it (its first round comes up to a minute later, then
-- every 10% of growth) every row a bulk writes reads every row: 1,000-file
-- bulks into one project took 1.4, 2.9, 4.9, 6.6 s and then hit the 8 s
-- statement timeout; analyzed, each takes 0.25-0.4 s (bench/e2e.mjs seeding).
--
-- bulk_upsert_project_files first analyzes project_files when it has grown to
-- twice the pages its statistics describe (and to at least 1 MiB): a handful
-- of analyzes while the table grows from empty, none once autovacuum keeps up.
-- ANALYZE's invalidation makes every connection plan again. It waits at most
-- 50 ms for its lock (a running VACUUM holds it) and otherwise leaves it to
-- the next bulk or to autovacuum: a write never stalls behind maintenance.
-- Single saves do not check (a per-statement check cost 65 us of a save's
-- ~700 us in sql_bench): a project is filled by bulks.
-- =====================================================================

-- SECURITY DEFINER: ANALYZE needs the table's owner. Any caller that may write
-- files may run it: it analyzes one fixed table, and only when its statistics
-- are out of date by a factor of two.
create function fsync.refresh_file_statistics()
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_pages bigint := pg_catalog.pg_relation_size('public.project_files')
                    / pg_catalog.current_setting('block_size')::bigint;
  v_known integer;
  v_lock_timeout text := pg_catalog.current_setting('lock_timeout');
begin
  select c.relpages into v_known from pg_catalog.pg_class c where c.oid = 'public.project_files'::regclass;
  if v_pages < greatest(2 * v_known, 128) then
    return false;
  end if;
  begin
    perform pg_catalog.set_config('lock_timeout', '50ms', true);
    analyze public.project_files;
    perform pg_catalog.set_config('lock_timeout', v_lock_timeout, true);
  exception when lock_not_available then
    return false; -- the subtransaction's rollback restored lock_timeout
  end;
  return true;
end
$$;
comment on function fsync.refresh_file_statistics() is
  'Analyzes public.project_files when it has grown to twice the pages its statistics describe (at least 1 MiB), so cached generic plans are rebuilt for its size. Returns whether it did.';
revoke all on function fsync.refresh_file_statistics() from public;
grant execute on function fsync.refresh_file_statistics() to authenticated, service_role;

create or replace function public.bulk_upsert_project_files(json)
returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
declare
  a jsonb := fsync.rpc_args('bulk_upsert_project_files', $1,
                            array['project_uuid', 'files'],
                            array['project_uuid', 'files']);
begin
  perform fsync.refresh_file_statistics();
  return fsync.bulk_upsert_project_files(fsync.arg_uuid(a, 'project_uuid'), fsync.arg_array(a, 'files'));
end
$$;
