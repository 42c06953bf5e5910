-- =====================================================================
-- fsync-realtime-partitions: whether broadcasts can be stored today and
-- tomorrow.
--
-- On hosted Supabase realtime.messages is partitioned by day (range on
-- inserted_at) and the Realtime server creates the partitions ahead. On a day
-- without a partition every insert into realtime.messages fails, and
-- realtime.send turns that into a WARNING: the write that called it commits,
-- its change-log event is kept, and the broadcast is lost without an error.
-- Containers still converge through their position checks, but slowly; an
-- operator should see it first:
--
--   select * from fsync.realtime_partition_status() where partition_name is null;
--
-- returns no row when today's and tomorrow's inserts have a partition.
-- =====================================================================

-- One row for p_at's day and one for the next day, each with the partition of
-- realtime.messages that holds the whole day (a DEFAULT partition holds any),
-- or null. Days are those of inserted_at's default, now() in the session's
-- time zone (UTC on hosted Supabase). Bounds are read from the catalog, so any
-- partition layout counts, not only Realtime's messages_YYYY_MM_DD names.
create function fsync.realtime_partition_status(p_at timestamp default localtimestamp)
returns table (day date, partition_name text)
language sql
stable
set search_path = ''
as $$
  select d.day,
         (select c.oid::regclass::text
            from pg_catalog.pg_inherits i
            join pg_catalog.pg_class c on c.oid = i.inhrelid
            cross join lateral (select pg_catalog.pg_get_expr(c.relpartbound, c.oid) as expr) b
            cross join lateral (select pg_catalog.regexp_match(b.expr, '^FOR VALUES FROM \((.*)\) TO \((.*)\)$') as m) r
           where i.inhparent = 'realtime.messages'::regclass
             and (b.expr = 'DEFAULT'
                  or (case when r.m[1] = 'MINVALUE' then '-infinity'::timestamp
                           else pg_catalog.btrim(r.m[1], '''')::timestamp end <= d.day
                      and case when r.m[2] = 'MAXVALUE' then 'infinity'::timestamp
                               else pg_catalog.btrim(r.m[2], '''')::timestamp end >= d.day + 1))
           order by b.expr = 'DEFAULT', c.relname
           limit 1)
    from (values (realtime_partition_status.p_at::date), (realtime_partition_status.p_at::date + 1)) as d(day)
$$;
revoke all on function fsync.realtime_partition_status(timestamp) from public;
grant execute on function fsync.realtime_partition_status(timestamp) to service_role;
