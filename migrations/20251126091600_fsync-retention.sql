-- =====================================================================
-- fsync-retention: how long history is kept, and pruning what is older
-- (docs/contracts.md "Retention").
--
-- Policy, per project (fsync.retention_policies; a column left null, or a
-- project without a row, takes the default in fsync.settings):
--   version_days   (30) keep every version younger than this …
--   keep_versions  (10) … and at least the newest N versions of each path
--                       (the head included);
--   log_days       (30) keep the change log's events younger than this;
--   keep_snapshots  (3) keep the newest K snapshot archives in Storage.
-- The service role changes a project's policy with set_retention_policy.
--
-- Pruning (prune_project_history; service role only; pg_cron nightly when the
-- extension is there, `npm run prune` otherwise):
--   * the log: a prefix (seq <= n), every event of it older than log_days,
--     never the newest event (seq keeps counting from projects.last_seq, and a
--     snapshot cut at the project's seq can always be followed). n + 1 is then
--     the oldest event held and n the oldest point of history: restore and
--     diff (fsync.check_point) answer PT410 {oldest_seq} before it, and so
--     does list_project_events from a position before it (below);
--   * versions: a non-head version goes when it is older than version_days, is
--     not among the path's newest keep_versions, AND no point the log still
--     holds needs it. The state at point s of a path is the version before the
--     first version an event after s names (fsync-history), so the points >= n
--     need exactly the versions >= (the smallest version the held events name)
--     - 1 of each path, or the head alone for a path no held event names.
--     Whatever the policy, restore and diff to every point >= n stay exact;
--     the log's window decides how far back history reaches;
--   * snapshots: project-snapshots/<project>/<snapshot_id>.zip objects beyond
--     the newest keep_snapshots (by created_at) that no live session uses
--     (fsync.sessions.snapshot_id, fsync.session_live) are listed; Storage
--     objects are deleted through the Storage API by the caller (hosted Supabase
--     refuses direct deletes on storage.objects). No other bucket is read, and
--     binaries in project-assets stay (a version's object may be shared);
--   * sessions: fsync.sessions rows that stopped being live (ended, or reached
--     expires_at) more than log_days before now and are not live by the clock
--     (a `now` in the future never removes a live session). Their tokens
--     expired long before; the row was only a record.
-- Batches: one call deletes at most max_rows rows (events first, then
-- versions, then sessions; default retention.batch_rows = 5000) and says
-- whether it finished (complete; else resume_from, the project to continue
-- at); the caller repeats, one transaction each. A project's deletes run under the project
-- lock (fsync.lock_project), taken only when there is something to delete:
-- writers and restores of that project wait at most one batch, and a restore
-- never reads history half-pruned. Events go before versions, and versions
-- are chosen against the log as it is after the deletes, so a partial prune
-- leaves every point the log holds restorable.
-- =====================================================================

insert into fsync.settings (key, value, description) values
  ('retention.version_days', '30', 'Default: keep every file version younger than this many days.'),
  ('retention.keep_versions', '10', 'Default: keep at least the newest N versions of each path (the head included).'),
  ('retention.log_days', '30', 'Default: keep the change log''s events younger than this many days (never the newest).'),
  ('retention.keep_snapshots', '3', 'Default: keep the newest K snapshot archives of a project in Storage.'),
  ('retention.batch_rows', '5000', 'Most rows (events, versions and sessions) one prune_project_history call deletes.')
on conflict (key) do nothing;

create table fsync.retention_policies (
  project_id uuid primary key references public.projects (id) on delete cascade,
  version_days integer check (version_days between 0 and 36500),
  keep_versions integer check (keep_versions between 1 and 1000000),
  log_days integer check (log_days between 0 and 36500),
  keep_snapshots integer check (keep_snapshots between 1 and 1000),
  updated_at timestamptz not null default now()
);
comment on table fsync.retention_policies is
  'Per-project retention; a null column takes the default retention.* setting. Change with set_retention_policy.';
alter table fsync.retention_policies enable row level security;
revoke all on fsync.retention_policies from public, anon, authenticated, service_role;

-- ---------------------------------------------------------------------
-- Helpers
-- ---------------------------------------------------------------------

-- The project's effective policy.
create function fsync.retention_policy(p_project_id uuid,
  out version_days integer, out keep_versions integer, out log_days integer, out keep_snapshots integer)
language sql
stable
set search_path = ''
as $$
  select coalesce(r.version_days, fsync.setting_bigint('retention.version_days', 30))::integer,
         coalesce(r.keep_versions, fsync.setting_bigint('retention.keep_versions', 10))::integer,
         coalesce(r.log_days, fsync.setting_bigint('retention.log_days', 30))::integer,
         coalesce(r.keep_snapshots, fsync.setting_bigint('retention.keep_snapshots', 3))::integer
    from (select 1) as one
    left join fsync.retention_policies r on r.project_id = p_project_id
$$;
revoke all on function fsync.retention_policy(uuid) from public;

create function fsync.policy_json(p_project_id uuid)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_build_object('version_days', p.version_days, 'keep_versions', p.keep_versions,
                            'log_days', p.log_days, 'keep_snapshots', p.keep_snapshots)
    from fsync.retention_policy(p_project_id) as p
$$;
revoke all on function fsync.policy_json(uuid) from public;

-- A timestamp argument (an RFC 3339 string).
create function fsync.arg_timestamptz(p_args jsonb, p_param text)
returns timestamptz
language plpgsql
stable
set search_path = ''
as $$
declare
  v text := fsync.arg_text(p_args, p_param);
begin
  return v::timestamptz;
exception when invalid_datetime_format or datetime_field_overflow or invalid_parameter_value then
  perform fsync.refuse_arg(p_param, 'timestamp', 'an RFC 3339 timestamp', p_args -> p_param);
end
$$;
revoke all on function fsync.arg_timestamptz(jsonb, text) from public;
grant execute on function fsync.arg_timestamptz(jsonb, text) to service_role;

-- The snapshot archives of a project that pruning would delete: beyond the
-- newest p_keep (by created_at) and used by no live session. Names are object
-- names in the project-snapshots bucket ('<project>/<snapshot_id>.zip').
create function fsync.prunable_snapshots(p_project_id uuid, p_keep integer)
returns table (name text, bytes bigint)
language sql
stable
set search_path = ''
as $$
  select o.name, coalesce((o.metadata ->> 'size')::bigint, 0)
    from (select o.name, o.metadata,
                 row_number() over (order by o.created_at desc, o.name desc) as rank
            from storage.objects o
           where o.bucket_id = 'project-snapshots'
             and o.name ~ ('^' || p_project_id::text || '/[0-9a-f]+\.zip$')) as o
   where o.rank > p_keep
     and not exists (select 1 from fsync.sessions s
                      where s.project_id = p_project_id
                        and o.name = p_project_id::text || '/' || s.snapshot_id || '.zip'
                        and fsync.session_live(s.session_id, p_project_id))
   order by o.name
$$;
revoke all on function fsync.prunable_snapshots(uuid, integer) from public;

-- One project's prune, deleting at most p_budget rows (nothing with p_dry_run).
-- See the header. The project lock is taken only before a delete, so a
-- project with nothing to remove never makes its writers wait. What is chosen
-- before the lock stays right under it: writers only append events and add
-- versions above the heads, and a restore holding the lock has finished.
-- Returns the project's summary; rows_deleted is what it used of the budget.
create function fsync.prune_project(p_project_id uuid, p_dry_run boolean, p_now timestamptz, p_budget bigint,
                                    out summary jsonb, out rows_deleted bigint)
language plpgsql
set search_path = ''
as $$
declare
  v_policy record := fsync.retention_policy(p_project_id);
  v_last bigint;
  v_held bigint;       -- the oldest point held before this call
  v_cut bigint;        -- the oldest point the policy asks for
  v_oldest bigint;     -- the oldest point held after this call
  v_events bigint := 0;
  v_event_bytes bigint := 0;
  v_versions bigint := 0;
  v_version_bytes bigint := 0;
  v_sessions bigint := 0;
  v_session_bytes bigint := 0;
  v_ids uuid[];
  v_left bigint := p_budget;
  v_snapshots text[];
  v_snapshot_bytes bigint;
begin
  select p.last_seq into v_last from public.projects p where p.id = p_project_id;
  select coalesce(min(e.seq) - 1, v_last) into v_held from public.project_events e where e.project_id = p_project_id;
  -- The newest event older than the window with only older events before it
  -- (created_at grows with seq: fsync.append_event); never the newest.
  select coalesce((select e.seq from public.project_events e
                    where e.project_id = p_project_id
                      and e.created_at >= p_now - make_interval(days => v_policy.log_days)
                    order by e.seq
                    limit 1), v_last + 1) - 1
    into v_cut;
  v_cut := greatest(least(v_cut, v_last - 1), v_held);

  if p_dry_run then
    select count(*), coalesce(sum(pg_column_size(e.*)), 0) into v_events, v_event_bytes
      from public.project_events e
     where e.project_id = p_project_id and e.seq > v_held and e.seq <= v_cut;
    v_oldest := v_cut;
  elsif v_cut > v_held then
    perform fsync.lock_project(p_project_id);
    with gone as (
      delete from public.project_events e
       where e.project_id = p_project_id and e.seq > v_held and e.seq <= least(v_cut, v_held + v_left)
      returning pg_column_size(e.*) as bytes)
    select count(*), coalesce(sum(g.bytes), 0) into v_events, v_event_bytes from gone g;
    v_left := v_left - v_events;
    v_oldest := v_held + v_events;  -- the log is gapless and pruned as a prefix
  else
    v_oldest := v_held;
  end if;

  if p_dry_run or v_left > 0 then
    with needed as (
      -- Per path, the oldest version a point >= v_oldest needs (absent: the head alone).
      select w.file_path, min(w.version) - 1 as version
        from fsync.event_files(p_project_id, v_oldest) as w
       group by w.file_path)
    select count(*), coalesce(sum(c.bytes), 0), array_agg(c.id) filter (where not p_dry_run)
      into v_versions, v_version_bytes, v_ids
      from (select f.id, pg_column_size(f.*) as bytes
              from public.project_files f
              join public.project_files h
                on h.project_id = f.project_id and h.file_path = f.file_path and h.is_current_version
              left join needed n on n.file_path = f.file_path
             where f.project_id = p_project_id
               and not f.is_current_version
               and f.version < coalesce(n.version, h.version)
               and f.version <= h.version - v_policy.keep_versions
               and f.created_at < p_now - make_interval(days => v_policy.version_days)
             limit case when p_dry_run then null else v_left end) as c;
    if not p_dry_run and v_versions > 0 then
      perform fsync.lock_project(p_project_id);
      with gone as (
        delete from public.project_files f
         where f.id = any (v_ids) and not f.is_current_version
        returning pg_column_size(f.*) as bytes)
      select count(*), coalesce(sum(g.bytes), 0) into v_versions, v_version_bytes from gone g;
      v_left := v_left - v_versions;
    end if;
  end if;

  -- Sessions no longer live (least ignores a null ended_at) since before the log's window, and
  -- not live now whatever p_now says. No project lock: sessions are not history.
  if p_dry_run then
    select count(*), coalesce(sum(pg_column_size(s.*)), 0) into v_sessions, v_session_bytes
      from fsync.sessions s
     where s.project_id = p_project_id
       and least(s.ended_at, s.expires_at) < p_now - make_interval(days => v_policy.log_days)
       and least(s.ended_at, s.expires_at) <= now();
  elsif v_left > 0 then
    with gone as (
      delete from fsync.sessions s
       where s.session_id in (select o.session_id from fsync.sessions o
                               where o.project_id = p_project_id
                                 and least(o.ended_at, o.expires_at) < p_now - make_interval(days => v_policy.log_days)
                                 and least(o.ended_at, o.expires_at) <= now()
                               limit v_left)
      returning pg_column_size(s.*) as bytes)
    select count(*), coalesce(sum(g.bytes), 0) into v_sessions, v_session_bytes from gone g;
    v_left := v_left - v_sessions;
  end if;

  select coalesce(array_agg(s.name order by s.name), '{}'), coalesce(sum(s.bytes), 0)
    into v_snapshots, v_snapshot_bytes
    from fsync.prunable_snapshots(p_project_id, v_policy.keep_snapshots) as s;

  rows_deleted := case when p_dry_run then 0 else v_events + v_versions + v_sessions end;
  summary := jsonb_build_object(
    'project_id', p_project_id,
    'policy', fsync.policy_json(p_project_id),
    'events_removed', v_events,
    'versions_removed', v_versions,
    'sessions_removed', v_sessions,
    'bytes_freed', v_event_bytes + v_version_bytes + v_session_bytes,
    'oldest_seq', v_oldest,
    'last_seq', v_last,
    -- Finished: the log is cut where the policy says, and the batch was not used up.
    'complete', p_dry_run or (v_oldest >= v_cut and v_left > 0),
    'snapshots', to_jsonb(v_snapshots),
    'snapshot_bytes', v_snapshot_bytes);
end
$$;
revoke all on function fsync.prune_project(uuid, boolean, timestamptz, bigint) from public;

-- ---------------------------------------------------------------------
-- Public API (service role only)
-- ---------------------------------------------------------------------

-- SECURITY DEFINER: deletes from the log, the versions and fsync.sessions (no API
-- role may) and reads storage.objects; only the service role may call it.
-- p_project_id null: every project in id order, from p_from_project on, until
-- the batch is used up; resume_from then names the project the next call
-- starts at (so a long prune does not re-check the projects it finished).
create function fsync.prune_project_history(p_project_id uuid default null, p_dry_run boolean default false,
                                            p_now timestamptz default null, p_max_rows bigint default null,
                                            p_from_project uuid default null)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, now());
  v_budget bigint := coalesce(p_max_rows, fsync.setting_bigint('retention.batch_rows', 5000));
  v_left bigint := v_budget;
  v_project uuid;
  v_res record;
  v_projects jsonb := '[]';
  v_checked integer := 0;
  v_resume uuid;
begin
  if (fsync.current_caller()).kind <> 'service' then
    perform fsync.raise_error('42501', 'only the service role may prune project history');
  end if;
  if v_budget < 1 then
    perform fsync.raise_error('PT422', 'max_rows must be at least 1', jsonb_build_object('param', 'max_rows', 'rule', 'integer'));
  end if;
  if p_project_id is not null and not exists (select 1 from public.projects p where p.id = p_project_id) then
    perform fsync.raise_error('PT404', format('project %s not found', p_project_id),
                              jsonb_build_object('project_id', p_project_id));
  end if;
  for v_project in
    select p.id from public.projects p
     where (p_project_id is null or p.id = p_project_id) and (p_from_project is null or p.id >= p_from_project)
     order by p.id
  loop
    if not p_dry_run and v_left <= 0 then
      v_resume := v_project;
      exit;
    end if;
    select * into v_res from fsync.prune_project(v_project, p_dry_run, v_now, v_left);
    v_left := v_left - v_res.rows_deleted;
    v_checked := v_checked + 1;
    -- All projects: only those with something to remove; one project: always.
    if p_project_id is not null
       or (v_res.summary ->> 'events_removed')::bigint > 0 or (v_res.summary ->> 'versions_removed')::bigint > 0
       or (v_res.summary ->> 'sessions_removed')::bigint > 0
       or jsonb_array_length(v_res.summary -> 'snapshots') > 0 then
      v_projects := v_projects || v_res.summary;
    end if;
    if not (v_res.summary ->> 'complete')::boolean then
      v_resume := v_project;
      exit;
    end if;
  end loop;
  return jsonb_build_object('dry_run', p_dry_run, 'now', v_now, 'max_rows', v_budget,
                            'complete', v_resume is null, 'resume_from', v_resume,
                            'projects_checked', v_checked, 'projects', v_projects);
end
$$;
revoke all on function fsync.prune_project_history(uuid, boolean, timestamptz, bigint, uuid) from public;
grant execute on function fsync.prune_project_history(uuid, boolean, timestamptz, bigint, uuid) to service_role;

create function public.prune_project_history(json)
returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select fsync.prune_project_history(fsync.arg_uuid(a, 'project_uuid'),
                                     coalesce(fsync.arg_bool(a, 'dry_run'), false),
                                     fsync.arg_timestamptz(a, 'now'),
                                     fsync.arg_int(a, 'max_rows', 1, 1000000),
                                     fsync.arg_uuid(a, 'from_project'))
    from fsync.rpc_args('prune_project_history', $1,
                        array['project_uuid', 'dry_run', 'now', 'max_rows', 'from_project'], '{}') as a
$$;
comment on function public.prune_project_history(json) is
  'Prunes old non-head versions, old change-log events and sessions that ended (or expired) longer ago than the log is kept, by each project''s retention policy, at most max_rows rows per call (repeat with from_project = resume_from until complete), and lists the snapshot archives to delete through the Storage API. Service role only. Returns {dry_run, now, max_rows, complete, resume_from, projects_checked, projects:[{project_id, policy, events_removed, versions_removed, sessions_removed, bytes_freed, oldest_seq, last_seq, complete, snapshots, snapshot_bytes}]}. Arguments: one JSON object {project_uuid?, dry_run?, now?, max_rows?, from_project?}.';
revoke all on function public.prune_project_history(json) from public, anon, authenticated;
grant execute on function public.prune_project_history(json) to service_role;

-- SECURITY DEFINER: writes fsync.retention_policies (no API role may); only the
-- service role may call it. p_policy: the keys given change (null: back to
-- the default), the others stay.
create function fsync.set_retention_policy(p_project_id uuid, p_policy jsonb)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_keys text[] := array['version_days', 'keep_versions', 'log_days', 'keep_snapshots'];
  v_min integer[] := array[0, 1, 0, 1];
  v_max integer[] := array[36500, 1000000, 36500, 1000];
  v_row fsync.retention_policies;
begin
  if (fsync.current_caller()).kind <> 'service' then
    perform fsync.raise_error('42501', 'only the service role may change retention policies');
  end if;
  if p_project_id is null then
    perform fsync.raise_error('PT422', 'missing project_uuid', jsonb_build_object('param', 'project_uuid', 'rule', 'required'));
  end if;
  if not exists (select 1 from public.projects p where p.id = p_project_id) then
    perform fsync.raise_error('PT404', format('project %s not found', p_project_id),
                              jsonb_build_object('project_id', p_project_id));
  end if;
  for i in 1 .. cardinality(v_keys) loop
    perform fsync.arg_int(p_policy, v_keys[i], v_min[i], v_max[i]);
  end loop;
  select * into v_row from fsync.retention_policies r where r.project_id = p_project_id;
  v_row.project_id := p_project_id;
  if p_policy ? 'version_days' then v_row.version_days := (p_policy ->> 'version_days')::integer; end if;
  if p_policy ? 'keep_versions' then v_row.keep_versions := (p_policy ->> 'keep_versions')::integer; end if;
  if p_policy ? 'log_days' then v_row.log_days := (p_policy ->> 'log_days')::integer; end if;
  if p_policy ? 'keep_snapshots' then v_row.keep_snapshots := (p_policy ->> 'keep_snapshots')::integer; end if;
  v_row.updated_at := now();
  insert into fsync.retention_policies values (v_row.*)
  on conflict (project_id) do update
    set version_days = excluded.version_days, keep_versions = excluded.keep_versions,
        log_days = excluded.log_days, keep_snapshots = excluded.keep_snapshots, updated_at = excluded.updated_at;
  return jsonb_build_object('project_id', p_project_id) || fsync.policy_json(p_project_id);
end
$$;
revoke all on function fsync.set_retention_policy(uuid, jsonb) from public;
grant execute on function fsync.set_retention_policy(uuid, jsonb) to service_role;

create function public.set_retention_policy(json)
returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select fsync.set_retention_policy(fsync.arg_uuid(a, 'project_uuid'), a)
    from fsync.rpc_args('set_retention_policy', $1,
                        array['project_uuid', 'version_days', 'keep_versions', 'log_days', 'keep_snapshots'],
                        array['project_uuid']) as a
$$;
comment on function public.set_retention_policy(json) is
  'Changes a project''s retention policy: each key given is set (null: back to the default), the others stay; with project_uuid alone it only reads. Service role only. Returns {project_id, version_days, keep_versions, log_days, keep_snapshots}. Arguments: one JSON object {project_uuid, version_days?, keep_versions?, log_days?, keep_snapshots?}.';
revoke all on function public.set_retention_policy(json) from public, anon, authenticated;
grant execute on function public.set_retention_policy(json) to service_role;

-- ---------------------------------------------------------------------
-- Following the log: a position before the oldest event held is PT410
-- ---------------------------------------------------------------------

-- As in fsync-rpcs, plus: after_seq before the oldest point the log holds is
-- PT410 {"param": "after_seq", "oldest_seq"} (the follower re-hydrates),
-- where a page would otherwise silently start past the position.
create or replace function fsync.list_project_events(p_project_id uuid, p_after_seq bigint default 0,
                                                     p_max_events integer default 1000)
returns setof jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_oldest bigint;
begin
  perform fsync.authorize(p_project_id, false);
  if p_after_seq < 0 then
    perform fsync.raise_error('PT422', 'after_seq must be >= 0', jsonb_build_object('rule', 'after_seq'));
  end if;
  if p_max_events is null or p_max_events < 1 then
    perform fsync.raise_error('PT422', 'max_events must be between 1 and 1000', jsonb_build_object('rule', 'max_events'));
  end if;
  select coalesce(min(e.seq) - 1, (select p.last_seq from public.projects p where p.id = p_project_id)) into v_oldest
    from public.project_events e where e.project_id = p_project_id;
  if coalesce(p_after_seq, 0) < v_oldest then
    perform fsync.raise_error('PT410',
      format('seq %s is no longer in the project''s log: the oldest position available is seq %s; re-hydrate from a fresh snapshot',
             coalesce(p_after_seq, 0), v_oldest),
      jsonb_build_object('param', 'after_seq', 'oldest_seq', v_oldest));
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

-- ---------------------------------------------------------------------
-- Schedule (pg_cron)
-- ---------------------------------------------------------------------

-- Schedules the nightly prune as job 'fsync-prune' when pg_cron is installed
-- (cron.schedule with a job name replaces that job: idempotent); returns the
-- job id, or null without pg_cron. The job prunes every project in batches of
-- retention.batch_rows rows, each batch its own transaction. Run it again
-- after enabling pg_cron (docs/contracts.md "Retention").
create function fsync.schedule_prune(p_schedule text default '17 3 * * *')
returns bigint
language plpgsql
set search_path = ''
as $fn$
declare
  v_job bigint;
begin
  if not exists (select 1 from pg_catalog.pg_extension x where x.extname = 'pg_cron') then
    return null;
  end if;
  execute 'select cron.schedule($1, $2, $3)' into v_job
    using 'fsync-prune', p_schedule,
          $cmd$do $do$ declare r jsonb := '{}'; begin loop r := public.prune_project_history(json_build_object('from_project', r -> 'resume_from')); exit when (r ->> 'complete')::boolean; commit; end loop; end $do$$cmd$;
  return v_job;
end
$fn$;
revoke all on function fsync.schedule_prune(text) from public;

select fsync.schedule_prune();
