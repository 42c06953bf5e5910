-- Reverses 20251126091600_fsync-retention.sql: no pruning, no policies (the
-- per-project policies are dropped: fs-sync's own settings, as fsync.settings'
-- retention.* rows), the nightly job unscheduled, and list_project_events as
-- fsync-rpcs wrote it. What was pruned stays pruned: history before the oldest
-- event held still answers PT410 in restore and diff.
do $$
begin
  if exists (select 1 from pg_catalog.pg_extension x where x.extname = 'pg_cron') then
    execute 'select cron.unschedule(j.jobid) from cron.job j where j.jobname = $1' using 'fsync-prune';
  end if;
end
$$;
drop function if exists fsync.schedule_prune(text);
drop function if exists public.set_retention_policy(json);
drop function if exists fsync.set_retention_policy(uuid, jsonb);
drop function if exists public.prune_project_history(json);
drop function if exists fsync.prune_project_history(uuid, boolean, timestamptz, bigint, uuid);
drop function if exists fsync.prune_project(uuid, boolean, timestamptz, bigint);
drop function if exists fsync.prunable_snapshots(uuid, integer);
drop function if exists fsync.arg_timestamptz(jsonb, text);
drop function if exists fsync.policy_json(uuid);
drop function if exists fsync.retention_policy(uuid);
drop table if exists fsync.retention_policies;
delete from fsync.settings where key in ('retention.version_days', 'retention.keep_versions', 'retention.log_days',
                                         'retention.keep_snapshots', 'retention.batch_rows');

create or replace function fsync.list_project_events(p_project_id uuid, p_after_seq bigint default 0,
                                                     p_max_events integer default 1000)
returns setof jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  perform fsync.authorize(p_project_id, false);
  if p_after_seq < 0 then
    perform fsync.raise_error('PT422', 'after_seq must be >= 0', jsonb_build_object('rule', 'after_seq'));
  end if;
  if p_max_events is null or p_max_events < 1 then
    perform fsync.raise_error('PT422', 'max_events must be between 1 and 1000', jsonb_build_object('rule', 'max_events'));
  end if;
  return query
    select case when f.content is not null and f.size_bytes <= 65536
                then e.payload || jsonb_build_object('content', f.content)
                else e.payload end
      from public.project_events e
      left join public.project_files f
        on e.event_type in ('file:update', 'file:rename')
       and f.project_id = e.project_id
       and f.file_path = e.payload ->> 'file_path'
       and f.version = (e.payload ->> 'version')::integer
     where e.project_id = p_project_id and e.seq > coalesce(p_after_seq, 0)
     order by e.seq
     limit least(p_max_events, 1000);
end
$$;
