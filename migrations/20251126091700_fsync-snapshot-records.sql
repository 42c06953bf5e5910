-- =====================================================================
-- fsync-snapshot-records: the last snapshot archive stored for each project,
-- so that a session for an unchanged project reuses it without reading the
-- project or the archive (docs/contracts.md "Snapshot" › "Reuse").
--
-- projects.last_seq moves on every change to a project's files, so an archive
-- cut at as_of_seq = last_seq holds exactly the project's current files. The
-- edge records each archive it stores (record_project_snapshot, after the
-- upload) with the archive's SHA-256 and size; find_project_snapshot answers,
-- in one call, what a POST /sessions needs before it can reuse one:
--   {project_id, last_seq, flag_enabled, snapshot: {snapshot_id, object_name,
--    as_of_seq, sha256, size_bytes, file_count} | null, cut}
-- and, when there is none to reuse, the cut to build one from (with the
-- contents, for a small project).
-- snapshot is given only when its as_of_seq is the project's last_seq and its
-- object is still in the project-snapshots bucket with the recorded size (a
-- pruned or replaced archive is never offered). One row per project: only the
-- newest archive can ever be current.
-- =====================================================================

create table fsync.project_snapshots (
  project_id uuid primary key references public.projects (id) on delete cascade,
  snapshot_id text not null,
  as_of_seq bigint not null,
  sha256 text not null,
  size_bytes bigint not null,
  file_count integer not null,
  recorded_at timestamptz not null default now(),
  constraint project_snapshots_snapshot_id_format check (snapshot_id ~ '^[0-9a-f]{64}$'),
  constraint project_snapshots_sha256_format check (sha256 ~ '^[0-9a-f]{64}$'),
  constraint project_snapshots_as_of_seq check (as_of_seq >= 0),
  constraint project_snapshots_size check (size_bytes > 0),
  constraint project_snapshots_file_count check (file_count >= 0)
);
comment on table fsync.project_snapshots is
  'The newest snapshot archive the edge stored for each project (project-snapshots/<project>/<snapshot_id>.zip), with its SHA-256: a session for an unchanged project reuses it without reading it.';
alter table fsync.project_snapshots enable row level security;
revoke all on fsync.project_snapshots from public, anon, authenticated, service_role;

-- SECURITY DEFINER: no API role has a privilege on fsync tables; the service
-- role alone may call it (require_service). A record for an older cut than
-- the one held is ignored, so racing builds leave the newest.
create function fsync.record_project_snapshot(p_project_id uuid, p_snapshot_id text, p_as_of_seq bigint,
                                              p_sha256 text, p_size_bytes bigint, p_file_count integer)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_recorded boolean;
begin
  perform fsync.require_service('record project snapshots');
  if p_snapshot_id is null or p_snapshot_id !~ '^[0-9a-f]{64}$' then
    perform fsync.raise_error('PT422', 'invalid snapshot_id: 64 lowercase hex digits expected',
                              jsonb_build_object('param', 'snapshot_id', 'rule', 'hex64'));
  end if;
  if p_sha256 is null or p_sha256 !~ '^[0-9a-f]{64}$' then
    perform fsync.raise_error('PT422', 'invalid sha256: 64 lowercase hex digits expected',
                              jsonb_build_object('param', 'sha256', 'rule', 'hex64'));
  end if;
  if not exists (select 1 from public.projects p where p.id = p_project_id) then
    perform fsync.raise_error('PT404', format('project %s not found', p_project_id),
                              jsonb_build_object('project_id', p_project_id));
  end if;
  insert into fsync.project_snapshots as s (project_id, snapshot_id, as_of_seq, sha256, size_bytes, file_count)
  values (p_project_id, p_snapshot_id, p_as_of_seq, p_sha256, p_size_bytes, p_file_count)
  on conflict (project_id) do update
     set snapshot_id = excluded.snapshot_id, as_of_seq = excluded.as_of_seq, sha256 = excluded.sha256,
         size_bytes = excluded.size_bytes, file_count = excluded.file_count, recorded_at = now()
   where s.as_of_seq <= excluded.as_of_seq
  returning true into v_recorded;
  return coalesce(v_recorded, false);
end
$$;
revoke all on function fsync.record_project_snapshot(uuid, text, bigint, text, bigint, integer) from public;
grant execute on function fsync.record_project_snapshot(uuid, text, bigint, text, bigint, integer) to service_role;

create function public.record_project_snapshot(json)
returns boolean
language sql
security invoker
set search_path = ''
as $$
  select fsync.record_project_snapshot(fsync.arg_uuid(a, 'project_uuid'), fsync.arg_text(a, 'snapshot_id'),
                                       fsync.arg_int(a, 'as_of_seq', 0, 9223372036854775807),
                                       fsync.arg_text(a, 'sha256'), fsync.arg_int(a, 'size_bytes', 1, 9223372036854775807),
                                       fsync.arg_int(a, 'file_count', 0, 2147483647)::integer)
    from fsync.rpc_args('record_project_snapshot', $1,
                        array['project_uuid', 'snapshot_id', 'as_of_seq', 'sha256', 'size_bytes', 'file_count'],
                        array['project_uuid', 'snapshot_id', 'as_of_seq', 'sha256', 'size_bytes', 'file_count']) as a
$$;
comment on function public.record_project_snapshot(json) is
  'Records the snapshot archive the edge stored for a project (kept unless a newer cut is recorded). Service role only. Arguments: one JSON object {project_uuid, snapshot_id, as_of_seq, sha256, size_bytes, file_count}. Returns whether it is now the project''s record.';
revoke all on function public.record_project_snapshot(json) from public, anon, authenticated;
grant execute on function public.record_project_snapshot(json) to service_role;

-- SECURITY DEFINER: as above, plus it reads storage.objects (the archive must
-- still be there, at the recorded size). null when the project does not
-- exist. flag_enabled is fsync.is_feature_enabled_for_project(flag_key), or
-- null without a flag_key. With p_cut, when no current archive is recorded
-- (and the flag, if asked, is on), `cut` is get_project_snapshot's answer from
-- the same snapshot as last_seq: with the files' contents when the project
-- holds at most p_content_max_bytes, so a small project's build needs no other
-- read of the database.
create function fsync.find_project_snapshot(p_project_id uuid, p_flag_key text default null,
                                            p_cut boolean default false, p_content_max_bytes bigint default 0)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_project public.projects;
  v_flag boolean;
  v_snapshot jsonb;
begin
  perform fsync.require_service('look up stored snapshots');
  select * into v_project from public.projects p where p.id = p_project_id;
  if not found then
    return null;
  end if;
  if p_flag_key is not null then
    v_flag := fsync.is_feature_enabled_for_project(p_flag_key, p_project_id);
  end if;
  select jsonb_build_object('snapshot_id', s.snapshot_id, 'object_name', o.name, 'as_of_seq', s.as_of_seq,
                            'sha256', s.sha256, 'size_bytes', s.size_bytes, 'file_count', s.file_count)
    into v_snapshot
    from fsync.project_snapshots s
    join storage.objects o
      on o.bucket_id = 'project-snapshots'
     and o.name = s.project_id::text || '/' || s.snapshot_id || '.zip'
   where s.project_id = p_project_id
     and s.as_of_seq = v_project.last_seq
     and coalesce((o.metadata ->> 'size')::bigint, s.size_bytes) = s.size_bytes;
  return jsonb_build_object(
    'project_id', p_project_id,
    'last_seq', v_project.last_seq,
    'flag_enabled', v_flag,
    'snapshot', v_snapshot,
    'cut', case when coalesce(p_cut, false) and v_snapshot is null and coalesce(v_flag, true)
                then fsync.get_project_snapshot(p_project_id,
                                                v_project.live_bytes <= coalesce(p_content_max_bytes, 0)) end);
end
$$;
revoke all on function fsync.find_project_snapshot(uuid, text, boolean, bigint) from public;
grant execute on function fsync.find_project_snapshot(uuid, text, boolean, bigint) to service_role;

create function public.find_project_snapshot(json)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select fsync.find_project_snapshot(fsync.arg_uuid(a, 'project_uuid'), fsync.arg_text(a, 'flag_key'),
                                     fsync.arg_bool(a, 'cut'),
                                     fsync.arg_int(a, 'content_max_bytes', 0, 9223372036854775807))
    from fsync.rpc_args('find_project_snapshot', $1, array['project_uuid', 'flag_key', 'cut', 'content_max_bytes'],
                        array['project_uuid']) as a
$$;
comment on function public.find_project_snapshot(json) is
  'The project''s last_seq, a flag''s value for its owner, and its stored snapshot archive when that is current (as_of_seq = last_seq, object present at the recorded size), else snapshot null and, with cut: true, get_project_snapshot''s cut (with contents when the project holds at most content_max_bytes); null when the project does not exist. Service role only. Arguments: one JSON object {project_uuid, flag_key?, cut?, content_max_bytes?}.';
revoke all on function public.find_project_snapshot(json) from public, anon, authenticated;
grant execute on function public.find_project_snapshot(json) to service_role;
