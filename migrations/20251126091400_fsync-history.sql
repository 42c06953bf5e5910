-- =====================================================================
-- fsync-history: restore a project to an earlier point, and list what changed
-- between two points (docs/contracts.md "History").
--
-- A point is a seq of the project's change log: the state right after that
-- event (0: before the first event). The state at a point is derived from the
-- log and the versions table, never stored:
--   * every version a write creates is named by exactly one event: file:update
--     and file:delete by file_path/version, file:rename by file_path/version
--     (the new head) and from_path/from_version (the tombstone at the source),
--     bulk:apply by files[].file_path/version;
--   * so the versions written after point s are exactly those the events with
--     seq > s name, and a path's version at s is the one before the first of
--     them: (the smallest version events after s name) - 1, version 0 meaning
--     the path did not exist yet. A path no event after s names is at s what
--     its head is now;
--   * versions that no event names (rows from before the log, as
--     fsync-legacy-upgrade left them) therefore count as existing at seq 0.
-- Only the events after the older point are read (not the whole log), so
-- restoring or comparing recent points is cheap whatever the history's length.
--
-- Retention (20251126091600_fsync-retention.sql, prune_project_history) prunes
-- the log as a prefix (seq <= n) and never the versions a held point needs.
-- A point before n (the oldest seq held - 1) can then no longer be rebuilt:
-- PT410 with DETAIL {"param", "oldest_seq"}.
--
-- restore_project(project, to_seq, expected_seq, paths?) — writers (owner,
-- editor, service role), under the project lock, one rate-limit token:
--   * expected_seq must be the project's seq (PT409 {"expected_seq",
--     "current_seq"}): the caller restores over exactly the changes it has seen;
--   * to_seq in [0, seq] (PT422 {"param": "to_seq", "rule": "seq_range"});
--   * paths, when given, limits the restore to those paths (undoing one change:
--     the paths it touched; at most limits.max_bulk_files of them, PT413, as
--     get_project_files); every other path is left as it is. Omitted: all;
--   * each path whose state differs from its state at to_seq gets ONE new
--     version (history is never rewritten): the old content (text), the old
--     Storage object (binary: storage_path, content_hash, size_bytes), the old
--     file_type, or a tombstone for a path that did not exist then. A path whose
--     head already equals its state at to_seq (content_hash, storage_path,
--     file_type) is left alone;
--   * tombstones are written first, then the files, each group in byte order
--     of path: so a folder that becomes a file (or the reverse) never meets its
--     old self, and the bulk:apply event lists the changes in an order in which
--     a consumer can apply them one by one;
--   * one bulk:apply event with {"files": [{file_path, version, content_hash,
--     deleted}], "restore": {"to_seq", "partial"}} (partial: paths was given):
--     every consumer already applies a bulk
--     (contents fetched by path and version). No change: no event, seq null;
--   * what the single-file writes check still holds: the path rules and
--     limits.max_file_bytes for a path made live (a legacy path breaking the
--     rules cannot be restored), the binary rules, the file/folder rule
--     (PT409 path_conflict, from fsync.put_version), and the project caps on
--     the net change (PT413, fsync.add_project_usage). The bulk's request
--     limits (limits.max_bulk_files/bytes) do not apply: no content crosses the
--     wire, and the project caps bound what a restore can write;
--   * not gated by FSYNC_BULK_GENERATION: a restore is not a generation.
-- The writes go through fsync.put_version, fsync.add_project_usage and
-- fsync.append_event, as fsync.apply_bulk's do; only the choice of what to
-- write (from history, not from a request) is the restore's own.
--
-- diff_project(project, from_seq, to_seq) — members and the service role (not
-- container tokens: a follower applies the log and has no use for it; the
-- container's surface stays the follow API). The paths whose state differs
-- between the two points (either order), each {file_path, change, from_path,
-- from_version, to_version, from_hash, to_hash}, no contents, ordered by path
-- (byte order). change: added, deleted, modified (content_hash, storage_path
-- or file_type differ), or renamed: a path deleted and a path added are one
-- rename when file:rename events between the points chain the first to the
-- second (a→b, then b→c, in the diff's direction) and the content is unchanged
-- (same content_hash and storage_path); a renamed and edited file is a delete
-- and an add. Hash matching alone is not used: equal contents (empty files,
-- copies) would pair unrelated paths.
-- =====================================================================

-- ---------------------------------------------------------------------
-- Helpers
-- ---------------------------------------------------------------------

-- The versions the events after p_after_seq wrote: (seq, file_path, version).
-- See the header for which payload fields name a version.
create function fsync.event_files(p_project_id uuid, p_after_seq bigint)
returns table (seq bigint, file_path text, version integer)
language sql
stable
set search_path = ''
as $$
  select e.seq, w.file_path, w.version
    from public.project_events e
   cross join lateral (
     select e.payload ->> 'file_path', (e.payload ->> 'version')::integer
      where jsonb_typeof(e.payload -> 'file_path') = 'string' and jsonb_typeof(e.payload -> 'version') = 'number'
     union all
     select e.payload ->> 'from_path', (e.payload ->> 'from_version')::integer
      where jsonb_typeof(e.payload -> 'from_path') = 'string' and jsonb_typeof(e.payload -> 'from_version') = 'number'
     union all
     select f.value ->> 'file_path', (f.value ->> 'version')::integer
       from jsonb_array_elements(case when jsonb_typeof(e.payload -> 'files') = 'array'
                                      then e.payload -> 'files' end) as f
   ) as w(file_path, version)
   where e.project_id = p_project_id and e.seq > p_after_seq
$$;
revoke all on function fsync.event_files(uuid, bigint) from public;

-- Every path whose state may differ between points p_a and p_b, with its
-- version at each (0 or null: it did not exist; the version may be a
-- tombstone). Paths no event between the two points names are the same at both
-- and are left out.
create function fsync.versions_between(p_project_id uuid, p_a bigint, p_b bigint)
returns table (file_path text, a_version integer, b_version integer)
language sql
stable
set search_path = ''
as $$
  select w.file_path,
         coalesce(min(w.version) filter (where w.seq > p_a) - 1, h.version),
         coalesce(min(w.version) filter (where w.seq > p_b) - 1, h.version)
    from fsync.event_files(p_project_id, least(p_a, p_b)) as w
    left join public.project_files h
      on h.project_id = p_project_id and h.file_path = w.file_path and h.is_current_version
   group by w.file_path, h.version
  having min(w.seq) <= greatest(p_a, p_b)
$$;
revoke all on function fsync.versions_between(uuid, bigint, bigint) from public;

-- Refuses a point the project's history cannot give: outside [0, p_last]
-- (PT422), or before the oldest point the log still holds (PT410). The oldest
-- point is the seq before the oldest event held; with no event held, the
-- project's seq (everything was pruned) or 0 (nothing was ever written).
create function fsync.check_point(p_project_id uuid, p_param text, p_seq bigint, p_last bigint)
returns void
language plpgsql
stable
set search_path = ''
as $$
declare
  v_oldest bigint;
begin
  if p_seq is null or p_seq < 0 or p_seq > p_last then
    perform fsync.raise_error('PT422',
      format('invalid %s %s: the project''s history runs from seq 0 to seq %s', p_param, coalesce(p_seq::text, 'null'), p_last),
      jsonb_build_object('param', p_param, 'rule', 'seq_range', 'min', 0, 'max', p_last));
  end if;
  select coalesce(min(e.seq) - 1, p_last) into v_oldest
    from public.project_events e where e.project_id = p_project_id;
  if p_seq < v_oldest then
    perform fsync.raise_error('PT410',
      format('seq %s is no longer in the project''s history: the oldest point available is seq %s', p_seq, v_oldest),
      jsonb_build_object('param', p_param, 'oldest_seq', v_oldest));
  end if;
end
$$;
revoke all on function fsync.check_point(uuid, text, bigint, bigint) from public;

-- ---------------------------------------------------------------------
-- Public API: restore (owner, editor, service role)
-- ---------------------------------------------------------------------

-- SECURITY DEFINER: as fsync.upsert_project_file (fsync-rpcs).
create function fsync.restore_project(p_project_id uuid, p_to_seq bigint, p_expected_seq bigint,
                                      p_paths text[] default null)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_caller fsync.caller := fsync.authorize(p_project_id, true);
  v_max_paths bigint := fsync.setting_bigint('limits.max_bulk_files', 5000);
  v_last bigint;
  v_plan record;
  v_res record;
  v_changed jsonb[] := '{}';
  v_restored integer := 0;
  v_deleted integer := 0;
  v_live_files bigint := 0;
  v_live_bytes bigint := 0;
  v_unchanged bigint;
  v_seq bigint;
begin
  if p_to_seq is null then
    perform fsync.raise_error('PT422', 'missing to_seq: restore_project needs project_uuid, to_seq, expected_seq',
                              jsonb_build_object('param', 'to_seq', 'rule', 'required'));
  end if;
  if p_expected_seq is null then
    perform fsync.raise_error('PT422', 'missing expected_seq: restore_project needs project_uuid, to_seq, expected_seq',
                              jsonb_build_object('param', 'expected_seq', 'rule', 'required'));
  end if;
  if cardinality(p_paths) > v_max_paths then
    perform fsync.raise_error('PT413', format('too many paths in one restore: %s; the limit is %s', cardinality(p_paths), v_max_paths),
                              jsonb_build_object('limit', v_max_paths, 'actual', cardinality(p_paths), 'what', 'paths'));
  end if;
  if array_position(p_paths, null) is not null then
    perform fsync.raise_error('PT422', 'paths must not hold null',
                              jsonb_build_object('param', 'paths', 'rule', 'string'));
  end if;
  perform fsync.consume_rate_limit(v_caller, p_project_id);
  perform fsync.lock_project(p_project_id);

  select p.last_seq into v_last from public.projects p where p.id = p_project_id;
  if p_expected_seq <> v_last then
    perform fsync.raise_error('PT409',
      format('the project changed: expected seq %s, but it is at seq %s; review the newer changes and retry',
             p_expected_seq, v_last),
      jsonb_build_object('expected_seq', p_expected_seq, 'current_seq', v_last));
  end if;
  perform fsync.check_point(p_project_id, 'to_seq', p_to_seq, v_last);

  -- Point a is now (the heads), point b is to_seq. Tombstones first, then files.
  for v_plan in
    select v.file_path, t.id is not null as live, t.content, t.storage_path, t.content_hash, t.size_bytes, t.file_type
      from fsync.versions_between(p_project_id, v_last, p_to_seq) as v
      left join public.project_files h
        on h.project_id = p_project_id and h.file_path = v.file_path and h.version = v.a_version and not h.is_deleted
      left join public.project_files t
        on t.project_id = p_project_id and t.file_path = v.file_path and t.version = v.b_version and not t.is_deleted
     where (p_paths is null or v.file_path = any (p_paths))
       and ((h.id is null) <> (t.id is null)
            or (t.id is not null
                and (h.content_hash, h.storage_path, h.file_type) is distinct from (t.content_hash, t.storage_path, t.file_type)))
     order by t.id is not null, v.file_path collate "C"
  loop
    if v_plan.live then
      perform fsync.validate_path(v_plan.file_path);
      perform fsync.check_write_args(v_plan.file_type, null);
      if v_plan.storage_path is not null then
        perform fsync.check_binary_args(p_project_id, v_plan.storage_path, v_plan.content_hash, v_plan.size_bytes);
      else
        perform fsync.check_text_size(v_plan.file_path, v_plan.size_bytes);
      end if;
    end if;
    select * into v_res
      from fsync.put_version(p_project_id, v_plan.file_path, not v_plan.live, v_plan.content, v_plan.storage_path,
                             v_plan.content_hash, coalesce(v_plan.size_bytes, 0), v_plan.file_type, null,
                             v_caller.user_id);
    v_live_files := v_live_files + v_res.live_files;
    v_live_bytes := v_live_bytes + v_res.live_bytes;
    if not v_res.noop then
      if v_plan.live then
        v_restored := v_restored + 1;
      else
        v_deleted := v_deleted + 1;
      end if;
      v_changed := v_changed || jsonb_build_object(
        'file_path', (v_res.file).file_path, 'version', (v_res.file).version,
        'content_hash', (v_res.file).content_hash, 'deleted', (v_res.file).is_deleted);
    end if;
  end loop;
  perform fsync.add_project_usage(p_project_id, v_live_files, v_live_bytes);

  if cardinality(v_changed) > 0 then
    v_seq := fsync.append_event(p_project_id, 'bulk:apply',
                                jsonb_build_object('files', to_jsonb(v_changed),
                                                   'restore', jsonb_build_object('to_seq', p_to_seq,
                                                                                 'partial', p_paths is not null)),
                                null, v_caller.user_id);
  end if;
  -- The live files the restore left as they were: the files of the state at
  -- to_seq (among paths, when given) it did not have to write.
  if p_paths is null then
    select p.live_files - v_restored into v_unchanged from public.projects p where p.id = p_project_id;
  else
    select count(*) - v_restored into v_unchanged
      from public.project_files f
     where f.project_id = p_project_id and f.file_path = any (p_paths) and f.is_current_version and not f.is_deleted;
  end if;
  return jsonb_build_object(
    'project_id', p_project_id,
    'seq', v_seq,
    'to_seq', p_to_seq,
    'restored', v_restored,
    'deleted', v_deleted,
    'unchanged', v_unchanged,
    'files', to_jsonb(v_changed));
end
$$;
revoke all on function fsync.restore_project(uuid, bigint, bigint, text[]) from public;
grant execute on function fsync.restore_project(uuid, bigint, bigint, text[]) to authenticated, service_role;

create function public.restore_project(json)
returns jsonb
language sql
security invoker
set search_path = ''
as $$
  select fsync.restore_project(fsync.arg_uuid(a, 'project_uuid'),
                               fsync.arg_int(a, 'to_seq', 0, 9223372036854775807),
                               fsync.arg_int(a, 'expected_seq', 0, 9223372036854775807),
                               fsync.arg_text_array(a, 'paths'))
    from fsync.rpc_args('restore_project', $1,
                        array['project_uuid', 'to_seq', 'expected_seq', 'paths'],
                        array['project_uuid', 'to_seq', 'expected_seq']) as a
$$;
comment on function public.restore_project(json) is
  'Makes the project''s files what they were right after to_seq, as one bulk:apply change of new versions (history is kept); expected_seq must be the project''s current seq; paths (optional) limits it to those paths. Owner/editor. Returns {project_id, seq, to_seq, restored, deleted, unchanged, files:[{file_path, version, content_hash, deleted}]} (seq null when nothing changed). Arguments: one JSON object {project_uuid, to_seq, expected_seq, paths?}.';
revoke all on function public.restore_project(json) from public, anon;
grant execute on function public.restore_project(json) to authenticated, service_role;

-- ---------------------------------------------------------------------
-- Public API: diff (members, service role)
-- ---------------------------------------------------------------------

-- SECURITY DEFINER: as the reads of fsync-rpcs (fsync.authorize decides).
create function fsync.diff_project(p_project_id uuid, p_from_seq bigint, p_to_seq bigint)
returns table (file_path text, change text, from_path text, from_version integer, to_version integer,
               from_hash text, to_hash text)
language plpgsql
stable
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  v_last bigint;
begin
  perform fsync.authorize(p_project_id, false);
  if p_from_seq is null then
    perform fsync.raise_error('PT422', 'missing from_seq: diff_project needs project_uuid, from_seq, to_seq',
                              jsonb_build_object('param', 'from_seq', 'rule', 'required'));
  end if;
  if p_to_seq is null then
    perform fsync.raise_error('PT422', 'missing to_seq: diff_project needs project_uuid, from_seq, to_seq',
                              jsonb_build_object('param', 'to_seq', 'rule', 'required'));
  end if;
  select p.last_seq into v_last from public.projects p where p.id = p_project_id;
  perform fsync.check_point(p_project_id, 'from_seq', p_from_seq, v_last);
  perform fsync.check_point(p_project_id, 'to_seq', p_to_seq, v_last);

  -- A stable function reads one snapshot: the log and the versions agree.
  return query
    with recursive
      states as (
        select v.file_path,
               a.version as a_version, a.content_hash as a_hash, a.storage_path as a_storage, a.file_type as a_type,
               b.version as b_version, b.content_hash as b_hash, b.storage_path as b_storage, b.file_type as b_type
          from fsync.versions_between(p_project_id, p_from_seq, p_to_seq) as v
          left join public.project_files a
            on a.project_id = p_project_id and a.file_path = v.file_path and a.version = v.a_version and not a.is_deleted
          left join public.project_files b
            on b.project_id = p_project_id and b.file_path = v.file_path and b.version = v.b_version and not b.is_deleted),
      changes as (
        select s.file_path,
               case when s.a_version is null then 'added'
                    when s.b_version is null then 'deleted'
                    else 'modified' end as change,
               s.a_version, s.b_version, s.a_hash, s.b_hash, s.a_storage, s.b_storage
          from states s
         where (s.a_version is null) <> (s.b_version is null)
            or (s.a_version is not null
                and (s.a_hash, s.a_storage, s.a_type) is distinct from (s.b_hash, s.b_storage, s.b_type))),
      -- file:rename events between the points, in the diff's direction.
      edges as (
        select case when p_from_seq <= p_to_seq then e.payload ->> 'from_path' else e.payload ->> 'file_path' end as src,
               case when p_from_seq <= p_to_seq then e.payload ->> 'file_path' else e.payload ->> 'from_path' end as dst,
               case when p_from_seq <= p_to_seq then e.seq else -e.seq end as ord
          from public.project_events e
         where e.project_id = p_project_id and e.event_type = 'file:rename'
           and e.seq > least(p_from_seq, p_to_seq) and e.seq <= greatest(p_from_seq, p_to_seq)),
      chains (start_path, dst, start_ord, ord) as (
        select ed.src, ed.dst, ed.ord, ed.ord
          from edges ed
          join changes c on c.file_path = ed.src and c.change = 'deleted'
        union all
        select ch.start_path, ed.dst, ch.start_ord, ed.ord
          from chains ch
          join edges ed on ed.src = ch.dst and ed.ord > ch.ord),
      matched as (
        select d.file_path as old_path, a.file_path as new_path, ch.start_ord, ch.ord
          from chains ch
          join changes d on d.file_path = ch.start_path and d.change = 'deleted'
          join changes a on a.file_path = ch.dst and a.change = 'added'
                        and a.b_hash = d.a_hash and a.b_storage is not distinct from d.a_storage),
      -- One partner each: a deleted path's earliest chain, then an added path's earliest match.
      by_old as (
        select distinct on (m.old_path) m.old_path, m.new_path, m.start_ord, m.ord
          from matched m
         order by m.old_path, m.start_ord, m.ord),
      renames as (
        select distinct on (o.new_path) o.old_path, o.new_path
          from by_old o
         order by o.new_path, o.start_ord, o.ord)
    select u.file_path, u.change, u.from_path, u.from_version, u.to_version, u.from_hash, u.to_hash
      from (select r.new_path as file_path, 'renamed' as change, r.old_path as from_path, d.a_version as from_version,
                   a.b_version as to_version, d.a_hash as from_hash, a.b_hash as to_hash
              from renames r
              join changes d on d.file_path = r.old_path
              join changes a on a.file_path = r.new_path
            union all
            select c.file_path, c.change, null::text, c.a_version, c.b_version, c.a_hash, c.b_hash
              from changes c
             where not exists (select 1 from renames r where r.old_path = c.file_path or r.new_path = c.file_path)) as u
     order by u.file_path collate "C";
end
$$;
revoke all on function fsync.diff_project(uuid, bigint, bigint) from public;
grant execute on function fsync.diff_project(uuid, bigint, bigint) to authenticated, service_role;

create function public.diff_project(json)
returns table (file_path text, change text, from_path text, from_version integer, to_version integer,
               from_hash text, to_hash text)
language sql
stable
security invoker
set search_path = ''
as $$
  select r.*
    from fsync.rpc_args('diff_project', $1,
                        array['project_uuid', 'from_seq', 'to_seq'],
                        array['project_uuid', 'from_seq', 'to_seq']) as a,
         lateral fsync.diff_project(fsync.arg_uuid(a, 'project_uuid'),
                                    fsync.arg_int(a, 'from_seq', 0, 9223372036854775807),
                                    fsync.arg_int(a, 'to_seq', 0, 9223372036854775807)) as r
$$;
comment on function public.diff_project(json) is
  'The paths whose state differs between two points of the change log (either order), without contents: [{file_path, change: added|deleted|modified|renamed, from_path (renamed only), from_version, to_version, from_hash, to_hash}] ordered by path. Members. Arguments: one JSON object {project_uuid, from_seq, to_seq}.';
revoke all on function public.diff_project(json) from public, anon;
grant execute on function public.diff_project(json) to authenticated, service_role;
