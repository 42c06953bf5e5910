-- =====================================================================
-- fsync-planner-stats: planner statistics that keep up with project_files
-- while a new deployment fills it, so writes stay linear.
--
-- The write RPCs are PL/pgSQL: each statement's plan is cached per connection,
-- and after five executions a generic plan built from the statistics of that
-- moment is kept until the table's statistics change. On a new database
-- project_files starts empty, so the kept plans scan the table, and until
-- autovacuum analyzes it (its first round comes up to a minute later, then
-- every 10% of growth) every write reads every row: 1,000-file bulks into one
-- project took 1.4, 2.9, 4.9, 6.6 s and then hit the 8 s statement timeout
-- (0.25-0.4 s each once analyzed); single saves went from 5.2 to 9.3 ms over
-- the first 3,000 files (a flat 2.7 ms once analyzed).
--
-- A trigger analyzes project_files when it has grown to twice the pages its
-- statistics describe (and to at least 1 MiB): a handful of analyzes while the
-- table grows from empty, none once autovacuum keeps up. ANALYZE's
-- invalidation makes every connection plan again. The check runs for about one
-- inserted row in 64 (chosen by a hash of the path, evaluated in the trigger's
-- WHEN without calling a function): checking on every insert cost 65 us of a
-- ~700 us save. It waits at most 50 ms for ANALYZE's lock (a running VACUUM
-- holds it) and otherwise leaves it to a later write or to autovacuum, so a
-- write never stalls behind maintenance; the ANALYZE itself runs inside the
-- write's transaction, a handful of times in a table's life.
-- =====================================================================

-- SECURITY DEFINER: ANALYZE needs the table's owner; it analyzes one fixed
-- table, and only when its statistics are out of date by a factor of two.
create function fsync.refresh_file_statistics()
returns trigger
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
    return null;
  end if;
  begin
    perform pg_catalog.set_config('lock_timeout', '50ms', true);
    analyze public.project_files;
    perform pg_catalog.set_config('lock_timeout', v_lock_timeout, true);
  exception when lock_not_available then
    null; -- the subtransaction's rollback restored lock_timeout
  end;
  return null;
end
$$;
comment on function fsync.refresh_file_statistics() is
  'Trigger: analyzes public.project_files when it has grown to twice the pages its statistics describe (at least 1 MiB), so cached generic plans are rebuilt for its size.';
revoke all on function fsync.refresh_file_statistics() from public;

create trigger fsync_refresh_statistics
  after insert on public.project_files
  for each row
  when (pg_catalog.hashtext(new.file_path) & 63 = 0)
  execute function fsync.refresh_file_statistics();
