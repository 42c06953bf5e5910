-- =====================================================================
-- fsync-rpcs: the file API of docs/contracts.md. Implementations are SECURITY DEFINER
-- functions in `fsync` (clients have no write privilege on any table but
-- project_files, whose direct writes fsync-legacy-writes turns into calls of
-- these functions; these functions do their own access check via
-- fsync.authorize first); the public
-- functions are thin SECURITY INVOKER wrappers. Each public function takes one
-- unnamed json argument, which PostgREST fills with the whole request body: the
-- body is an object of named arguments with the seed's parameter names
-- ({"project_uuid": …, "p_file_path": …}), checked by fsync.rpc_args and the
-- fsync.arg_* helpers (PT422 {"param", "rule"}; see fsync-setup), so that no
-- argument fails or is coerced in a type conversion before the function runs.
-- SQL callers call the typed fsync.* implementations, which have the seed's
-- defaults.
--
-- Every write, in one transaction:
--   authorize (owner/editor/service; viewer, anon, container → 42501)
--   → validate path, content, limits (PT422, PT413)
--   → rate limit (PT429)
--   → whether the project's events are broadcast (fsync.server_broadcasts)
--   → lock the project row (serialises writers; seq order = commit order)
--   → read the head → no-op if the content hash (and file_type, storage_path)
--     equal the live head's: return the head, write nothing, no event
--   → check expected_version (PT409, DETAIL {"path","expected_version",
--     "current_version","current_hash"})
--   → flip the head, insert the new version (tombstone for deletes)
--   → add the change in live files and bytes to the project's running totals
--     and refuse a write that grows them past limits.max_project_files/bytes
--     (PT413, DETAIL {"limit","actual","current","what"})
--   → append one event and realtime.send it on private topic project:<id>.
--
-- Decisions:
--   * expected_version is compared with the path's latest version INCLUDING a
--     tombstone. 0 means "no live head": a path that never existed, or whose head
--     is a tombstone, may be created with 0; a tombstoned path may also be
--     re-created with its tombstone's version. Negative → PT422.
--   * The no-op check runs before the expected_version check, so retrying a
--     save that already committed returns the head instead of PT409.
--   * Deleting a path whose head is already a tombstone is a no-op (retry-safe);
--     deleting a path that never existed is PT404.
--   * A file and a folder cannot share a name (the project could not be written
--     to disk). A write that makes a path live (create, re-create, binary,
--     rename's destination, bulk entry) is refused with PT409, DETAIL {"path",
--     "conflicting_path", "rule": "path_conflict"}, when a folder of the path
--     is a live file ("src" for "src/a.ts") or live files exist under the path
--     ("src/a.ts" for "src"). Tombstones do not conflict. Bulk entries apply in
--     order, so a bulk may delete "src" and then create "src/a.ts", and a bulk
--     holding both "a" and "a/b" fails whole. Saving a path that is already live
--     adds no name and is not checked, so a conflict left by legacy data never
--     blocks saving; resolve it by deleting or renaming one side.
--   * delete and rename's source path need only a live head with exactly that
--     path; they do not apply the path rules, so a legacy path that breaks them
--     can still be renamed to a valid path or deleted. Every path written (the
--     rename destination included) is validated.
--   * Binaries live in the private bucket project-assets: storage_path is
--     exactly 'project-assets/<project_id>/<path>', <path> obeying the path
--     rules, else PT422 rule storage_path. fs-sync-edge fetches these objects
--     with the service role, so a project can only name its own objects.
--   * Renaming keeps content, hash, size and storage_path; file_type is
--     re-inferred from the new path (binaries keep theirs). One file:rename event
--     carries from_path and from_version (the tombstone written at from_path).
--   * Payload "content" is included when the file is text and size <= 65536
--     bytes, else "content_omitted": true (always for binaries, which also carry
--     "storage_path").
--   * Project caps: a container must be able to hold every project, so the
--     live files (count, and the sum of size_bytes, binaries included) are
--     capped per project. projects.live_files/live_bytes are running totals
--     updated under the project lock (no scan per write); a write that does not
--     grow a total is never refused by it, so a project over a lowered cap can
--     still shrink. A bulk and a rename are checked on their net change.
--   * Write results are jsonb objects: {project_id, file_path, version,
--     content_hash, size_bytes, file_type, storage_path, is_deleted, seq, noop}
--     (seq null for a no-op).
-- =====================================================================

-- ---------------------------------------------------------------------
-- Helpers
-- ---------------------------------------------------------------------

-- Locks the project row until commit: every writer of one project queues here.
create function fsync.lock_project(p_project_id uuid)
returns void
language plpgsql
set search_path = ''
as $$
begin
  perform 1 from public.projects p where p.id = p_project_id for no key update;
  if not found then
    perform fsync.raise_error('PT404', format('project %s not found', p_project_id),
                              jsonb_build_object('project_id', p_project_id));
  end if;
end
$$;
revoke all on function fsync.lock_project(uuid) from public;

create function fsync.check_write_args(p_file_type text, p_expected_version integer)
returns void
language plpgsql
immutable
set search_path = ''
as $$
begin
  if p_file_type is not null and char_length(p_file_type) not between 1 and 64 then
    perform fsync.raise_error('PT422', 'invalid file_type: use 1 to 64 characters',
                              jsonb_build_object('rule', 'file_type'));
  end if;
  if p_expected_version < 0 then
    perform fsync.raise_error('PT422', format('invalid expected_version %s: use 0 (must not exist) or a version >= 1',
                                              p_expected_version),
                              jsonb_build_object('rule', 'expected_version'));
  end if;
end
$$;
revoke all on function fsync.check_write_args(text, integer) from public;

create function fsync.check_text_size(p_path text, p_size bigint)
returns void
language plpgsql
stable
set search_path = ''
as $$
declare
  v_limit bigint := fsync.setting_bigint('limits.max_file_bytes', 5242880);
begin
  if p_size > v_limit then
    perform fsync.raise_error('PT413',
      format('file "%s" is too large: %s bytes; the limit is %s bytes', p_path, p_size, v_limit),
      jsonb_build_object('limit', v_limit, 'actual', p_size, 'path', p_path));
  end if;
end
$$;
revoke all on function fsync.check_text_size(text, bigint) from public;

-- The per-project caps; the defaults are fs-sync-core's MAX_PROJECT_BYTES and
-- MAX_PROJECT_FILES (crates/pg/tests/contracts.rs pins both).
create function fsync.project_caps(out max_bytes bigint, out max_files bigint)
language plpgsql
stable
set search_path = ''
as $$
begin
  max_bytes := fsync.setting_bigint('limits.max_project_bytes', 1073741824);
  max_files := fsync.setting_bigint('limits.max_project_files', 65534);
end
$$;
revoke all on function fsync.project_caps() from public;

-- Adds a write's change in live files and bytes to the project's running totals
-- and refuses (PT413) a change that grows a total past its cap. Caller holds the
-- project lock, so the totals cannot move underneath.
create function fsync.add_project_usage(p_project_id uuid, p_files bigint, p_bytes bigint)
returns void
language plpgsql
set search_path = ''
as $$
declare
  v_caps record;
  v_files bigint;
  v_bytes bigint;
begin
  if p_files = 0 and p_bytes = 0 then
    return;
  end if;
  update public.projects p
     set live_files = p.live_files + p_files, live_bytes = p.live_bytes + p_bytes
   where p.id = p_project_id
  returning p.live_files, p.live_bytes into v_files, v_bytes;
  -- The caps are read only for a write that grows a total: most saves do not.
  if p_files <= 0 and p_bytes <= 0 then
    return;
  end if;
  v_caps := fsync.project_caps();
  if p_files > 0 and v_files > v_caps.max_files then
    perform fsync.raise_error('PT413',
      format('project %s is full: this write would take it from %s to %s files; the limit is %s files',
             p_project_id, v_files - p_files, v_files, v_caps.max_files),
      jsonb_build_object('limit', v_caps.max_files, 'actual', v_files, 'current', v_files - p_files,
                         'what', 'project_files'));
  end if;
  if p_bytes > 0 and v_bytes > v_caps.max_bytes then
    perform fsync.raise_error('PT413',
      format('project %s is full: this write would take its files from %s to %s bytes; the limit is %s bytes',
             p_project_id, v_bytes - p_bytes, v_bytes, v_caps.max_bytes),
      jsonb_build_object('limit', v_caps.max_bytes, 'actual', v_bytes, 'current', v_bytes - p_bytes,
                         'what', 'project_bytes'));
  end if;
end
$$;
revoke all on function fsync.add_project_usage(uuid, bigint, bigint) from public;

-- A path as messages show it: unvalidated paths (delete, rename's source) may
-- hold control characters or be long; no raw control character reaches a log
-- or UI and at most 200 characters are shown. Valid paths are shown unchanged.
create function fsync.display_path(p_path text)
returns text
language sql
immutable
parallel safe
set search_path = ''
as $$
  select case when char_length(q.p) > 200 then left(q.p, 200) || '…' else q.p end
    from (select regexp_replace(coalesce(display_path.p_path, ''), '[\u0001-\u001f\u007f-\u009f]', '?', 'g') as p) q
$$;
revoke all on function fsync.display_path(text) from public;

-- Binaries are objects of the private bucket project-assets under the project's
-- folder: storage_path = 'project-assets/<project_id>/<path>', <path> obeying the
-- path rules (so no "..", no empty segment, no control character).
create function fsync.check_binary_args(p_project_id uuid, p_storage_path text, p_content_hash text, p_size_bytes bigint)
returns void
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_prefix text := 'project-assets/' || p_project_id::text || '/';
  v_check record;
begin
  if p_storage_path is null or left(p_storage_path, char_length(v_prefix)) <> v_prefix then
    perform fsync.raise_error('PT422',
      format('invalid storage_path: upload binaries to the project-assets bucket under the project''s folder: '
             'the storage_path must start with "%s"', v_prefix),
      jsonb_build_object('rule', 'storage_path', 'expected_prefix', v_prefix));
  end if;
  v_check := fsync.check_path(substr(p_storage_path, char_length(v_prefix) + 1));
  if v_check.rule is not null then
    perform fsync.raise_error('PT422',
      format('invalid storage_path: the object path after "%s" breaks the path rules (%s)', v_prefix, v_check.rule),
      jsonb_build_object('rule', 'storage_path', 'expected_prefix', v_prefix, 'path_rule', v_check.rule));
  end if;
  if p_content_hash is null or p_content_hash !~ '^[0-9a-f]{64}$' then
    perform fsync.raise_error('PT422', 'invalid content_hash: use the lowercase hex SHA-256 of the object (64 characters)',
                              jsonb_build_object('rule', 'content_hash'));
  end if;
  if p_size_bytes is null or p_size_bytes < 0 then
    perform fsync.raise_error('PT422', 'invalid size_bytes: use the object size in bytes (>= 0)',
                              jsonb_build_object('rule', 'size_bytes'));
  end if;
end
$$;
revoke all on function fsync.check_binary_args(uuid, text, text, bigint) from public;

-- The one place a version row is written. Caller holds the project lock.
-- Returns the new head, or the unchanged head with noop = true, and the change
-- in the project's live files and bytes, for fsync.add_project_usage.
create function fsync.put_version(
  p_project_id uuid,
  p_path text,
  p_delete boolean,
  p_content text,
  p_storage_path text,
  p_hash text,
  p_size bigint,
  p_file_type text,
  p_expected_version integer,
  p_actor uuid,
  out file public.project_files,
  out noop boolean,
  out live_files bigint,
  out live_bytes bigint)
language plpgsql
set search_path = ''
as $$
declare
  v_head public.project_files;
  v_exists boolean;
  v_live boolean;
  v_conflict text;
  v_parts text[];
  v_i integer;
  v_folder_deleted boolean;
  v_at timestamptz;
begin
  select * into v_head
    from public.project_files f
   where f.project_id = p_project_id and f.file_path = p_path and f.is_current_version;
  v_exists := found;
  v_live := v_exists and not v_head.is_deleted;
  live_files := 0;
  live_bytes := 0;

  if p_delete then
    if not v_exists then
      perform fsync.raise_error('PT404', format('file "%s" not found', fsync.display_path(p_path)), jsonb_build_object('path', p_path));
    end if;
    if not v_live then
      file := v_head;
      noop := true;
      return;
    end if;
  elsif v_live
        and v_head.content_hash = p_hash
        and v_head.storage_path is not distinct from p_storage_path
        and (p_file_type is null or p_file_type = v_head.file_type) then
    file := v_head;
    noop := true;
    return;
  end if;

  if p_expected_version is not null
     and ((p_expected_version = 0 and v_live)
          or (p_expected_version <> 0 and p_expected_version is distinct from v_head.version)) then
    perform fsync.raise_error('PT409',
      format('version conflict on "%s": expected %s, but %s', fsync.display_path(p_path),
             case when p_expected_version = 0 then 'no file' else 'version ' || p_expected_version end,
             case when not v_exists then 'the file does not exist'
                  when not v_live then format('it was deleted at version %s', v_head.version)
                  else format('the current version is %s', v_head.version) end),
      jsonb_build_object('path', p_path,
                         'expected_version', p_expected_version,
                         'current_version', coalesce(v_head.version, 0),
                         'current_hash', v_head.content_hash));
  end if;

  -- A file and a folder cannot share a name (see the header). Only a write that
  -- makes the path live can create a conflict. Both probes are index lookups,
  -- whatever the project's size and even before the table has statistics:
  --   * each folder of the path ("a", then "a/b" for "a/b/c"): the head lookup
  --     above, by equality on project_files_one_head_idx (is_deleted is tested
  --     outside the query so that no other partial index qualifies);
  --   * the live files under the path: the byte range [path || '/', path || '0')
  --     of project_files_live_path_idx, which holds the live heads in collation
  --     "C" whatever the database's collation. The range is exact: '0' is the
  --     byte after '/', so a stored path q is in it iff starts_with(q, path || '/')
  --     (never LIKE: paths may contain % and _). No starts_with() recheck in the
  --     query: with it the plan cache keeps replanning the statement on every call.
  if not p_delete and not v_live then
    v_parts := string_to_array(p_path, '/');
    for v_i in 1 .. cardinality(v_parts) - 1 loop
      select f.is_deleted into v_folder_deleted
        from public.project_files f
       where f.project_id = p_project_id
         and f.file_path = array_to_string(v_parts[1:v_i], '/')
         and f.is_current_version;
      if found and not v_folder_deleted then
        v_conflict := array_to_string(v_parts[1:v_i], '/');
        exit;
      end if;
    end loop;
    if v_conflict is not null then
      perform fsync.raise_error('PT409',
        format('path conflict: cannot create "%s" because "%s" is a file; a file and a folder cannot have the same name',
               fsync.display_path(p_path), fsync.display_path(v_conflict)),
        jsonb_build_object('path', p_path, 'conflicting_path', v_conflict, 'rule', 'path_conflict'));
    end if;
    select f.file_path into v_conflict
      from public.project_files f
     where f.project_id = p_project_id
       and f.is_current_version and not f.is_deleted
       and f.file_path collate "C" >= p_path || '/'
       and f.file_path collate "C" < p_path || '0'
     order by f.file_path collate "C"
     limit 1;
    if v_conflict is not null then
      perform fsync.raise_error('PT409',
        format('path conflict: cannot create "%s" because it is a folder ("%s" exists); a file and a folder cannot have the same name',
               fsync.display_path(p_path), fsync.display_path(v_conflict)),
        jsonb_build_object('path', p_path, 'conflicting_path', v_conflict, 'rule', 'path_conflict'));
    end if;
  end if;

  if v_exists then
    update public.project_files f set is_current_version = false where f.id = v_head.id;
  end if;

  -- created_at/updated_at from the clock under the project lock, not now() (the
  -- transaction's start, before it queued for the lock), so that they increase
  -- with the version like the change log's timestamps.
  v_at := clock_timestamp();
  insert into public.project_files (
    project_id, file_path, content, file_type, version, content_hash, created_by,
    is_current_version, metadata, is_deleted, size_bytes, storage_path, created_at, updated_at)
  values (
    p_project_id, p_path,
    case when p_delete then null else p_content end,
    case when p_delete then v_head.file_type else coalesce(p_file_type, fsync.infer_file_type(p_path)) end,
    coalesce(v_head.version, 0) + 1,
    case when p_delete then null else p_hash end,
    p_actor, true, '{}'::jsonb, p_delete,
    case when p_delete then 0 else p_size end,
    case when p_delete then null else p_storage_path end,
    v_at, v_at)
  returning * into file;
  noop := false;
  live_files := (case when p_delete then 0 else 1 end) - (case when v_live then 1 else 0 end);
  live_bytes := (case when p_delete then 0 else p_size end) - (case when v_live then v_head.size_bytes else 0 end);
end
$$;
revoke all on function fsync.put_version(uuid, text, boolean, text, text, text, bigint, text, integer, uuid) from public;

-- Event fields describing a live version (docs/contracts.md "Event payload"), without content.
create function fsync.file_payload(p_file public.project_files)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
begin
  return jsonb_build_object(
           'file_path', (p_file).file_path,
           'version', (p_file).version,
           'content_hash', (p_file).content_hash,
           'size', (p_file).size_bytes,
           'file_type', (p_file).file_type)
         || case when (p_file).storage_path is not null
                 then jsonb_build_object('storage_path', (p_file).storage_path) else '{}'::jsonb end
         || case when (p_file).content is null or (p_file).size_bytes > 65536
                 then '{"content_omitted": true}'::jsonb else '{}'::jsonb end;
end
$$;
revoke all on function fsync.file_payload(public.project_files) from public;

-- The content an event carries inline: text up to 64 KiB, else null.
create function fsync.inline_content(p_file public.project_files)
returns text
language plpgsql
immutable
set search_path = ''
as $$
begin
  return case when (p_file).size_bytes <= 65536 then (p_file).content end;
end
$$;
revoke all on function fsync.inline_content(public.project_files) from public;

create function fsync.file_result(p_file public.project_files, p_seq bigint, p_noop boolean)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
begin
  return jsonb_build_object(
    'project_id', (p_file).project_id,
    'file_path', (p_file).file_path,
    'version', (p_file).version,
    'content_hash', (p_file).content_hash,
    'size_bytes', (p_file).size_bytes,
    'file_type', (p_file).file_type,
    'storage_path', (p_file).storage_path,
    'is_deleted', (p_file).is_deleted,
    'seq', p_seq,
    'noop', p_noop);
end
$$;
revoke all on function fsync.file_result(public.project_files, bigint, boolean) from public;

-- ---------------------------------------------------------------------
-- Public API: writes
-- ---------------------------------------------------------------------

-- SECURITY DEFINER: clients have no write privilege on project_files,
-- project_events, projects or realtime.messages; this function checks access
-- itself (fsync.authorize) and writes as the owner, which also guarantees the
-- realtime.send insert cannot be silently refused by RLS.
create function fsync.upsert_project_file(
  p_project_id uuid, p_file_path text, p_content text, p_file_type text default null,
  p_expected_version integer default null)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_caller fsync.caller := fsync.authorize(p_project_id, true);
  v_new public.project_files;
  v_payload jsonb;
  v_inline text;
  v_res record;
  v_seq bigint;
  v_broadcast boolean;
begin
  perform fsync.validate_path(p_file_path);
  perform fsync.check_write_args(p_file_type, p_expected_version);
  if p_content is null then
    perform fsync.raise_error('PT422', 'content must not be null: use delete_project_file to delete a file',
                              jsonb_build_object('rule', 'content'));
  end if;
  v_new.file_path := p_file_path;
  v_new.content := p_content;
  v_new.size_bytes := octet_length(p_content);
  perform fsync.check_text_size(p_file_path, v_new.size_bytes);
  v_new.content_hash := fsync.content_hash(p_content);
  v_new.file_type := coalesce(p_file_type, fsync.infer_file_type(p_file_path));
  perform fsync.consume_rate_limit(v_caller, p_project_id);
  -- The event's payload but its version, its inline content and whether it is
  -- broadcast, before the lock: writers of the project queue behind it until
  -- commit, so it covers only the head read, the version write, the seq and the
  -- event. The payload is what file_payload gives for the new head.
  v_payload := fsync.file_payload(v_new);
  v_inline := fsync.inline_content(v_new);
  v_broadcast := fsync.server_broadcasts(p_project_id);
  perform fsync.lock_project(p_project_id);

  select * into v_res
    from fsync.put_version(p_project_id, p_file_path, false, p_content, null, v_new.content_hash,
                           v_new.size_bytes, p_file_type, p_expected_version, v_caller.user_id);
  perform fsync.add_project_usage(p_project_id, v_res.live_files, v_res.live_bytes);
  if not v_res.noop then
    v_seq := fsync.append_event(p_project_id, 'file:update',
                                v_payload || jsonb_build_object('version', (v_res.file).version),
                                v_inline, v_caller.user_id, v_broadcast);
  end if;
  return fsync.file_result(v_res.file, v_seq, v_res.noop);
end
$$;
revoke all on function fsync.upsert_project_file(uuid, text, text, text, integer) from public;
grant execute on function fsync.upsert_project_file(uuid, text, text, text, integer) to authenticated, service_role;

-- The public wrappers of the writes are PL/pgSQL for the reason given at
-- fsync.setting (fsync-setup): called as a statement, a SQL function is planned
-- again on every call.
create function public.upsert_project_file(json)
returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
declare
  a jsonb := fsync.rpc_args('upsert_project_file', $1,
                            array['project_uuid', 'p_file_path', 'p_content', 'p_file_type', 'expected_version'],
                            array['project_uuid', 'p_file_path', 'p_content']);
begin
  return fsync.upsert_project_file(fsync.arg_uuid(a, 'project_uuid'), fsync.arg_text(a, 'p_file_path'),
                                   fsync.arg_text(a, 'p_content'), fsync.arg_text(a, 'p_file_type'),
                                   fsync.arg_int(a, 'expected_version', 0, 2147483647)::integer);
end
$$;
comment on function public.upsert_project_file(json) is
  'Saves a text file as a new version (no-op when the content is unchanged). Owner/editor. Returns the head as jsonb. Arguments: one JSON object {project_uuid, p_file_path, p_content, p_file_type?, expected_version?}.';
revoke all on function public.upsert_project_file(json) from public, anon;
grant execute on function public.upsert_project_file(json) to authenticated, service_role;

-- SECURITY DEFINER: as fsync.upsert_project_file.
create function fsync.register_binary_file(
  p_project_id uuid, p_file_path text, p_storage_path text, p_content_hash text, p_size_bytes bigint,
  p_file_type text default null, p_expected_version integer default null)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_caller fsync.caller := fsync.authorize(p_project_id, true);
  v_res record;
  v_seq bigint;
  v_broadcast boolean;
begin
  perform fsync.validate_path(p_file_path);
  perform fsync.check_write_args(p_file_type, p_expected_version);
  perform fsync.check_binary_args(p_project_id, p_storage_path, p_content_hash, p_size_bytes);
  perform fsync.consume_rate_limit(v_caller, p_project_id);
  v_broadcast := fsync.server_broadcasts(p_project_id);
  perform fsync.lock_project(p_project_id);

  select * into v_res
    from fsync.put_version(p_project_id, p_file_path, false, null, p_storage_path, p_content_hash,
                           p_size_bytes, p_file_type, p_expected_version, v_caller.user_id);
  perform fsync.add_project_usage(p_project_id, v_res.live_files, v_res.live_bytes);
  if not v_res.noop then
    v_seq := fsync.append_event(p_project_id, 'file:update', fsync.file_payload(v_res.file), null, v_caller.user_id, v_broadcast);
  end if;
  return fsync.file_result(v_res.file, v_seq, v_res.noop);
end
$$;
revoke all on function fsync.register_binary_file(uuid, text, text, text, bigint, text, integer) from public;
grant execute on function fsync.register_binary_file(uuid, text, text, text, bigint, text, integer) to authenticated, service_role;

create function public.register_binary_file(json)
returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
declare
  a jsonb := fsync.rpc_args('register_binary_file', $1,
                            array['project_uuid', 'p_file_path', 'p_storage_path', 'p_content_hash', 'p_size_bytes',
                                  'p_file_type', 'expected_version'],
                            array['project_uuid', 'p_file_path', 'p_storage_path', 'p_content_hash',
                                  'p_size_bytes']);
begin
  return fsync.register_binary_file(fsync.arg_uuid(a, 'project_uuid'), fsync.arg_text(a, 'p_file_path'),
                                    fsync.arg_text(a, 'p_storage_path'), fsync.arg_text(a, 'p_content_hash'),
                                    fsync.arg_int(a, 'p_size_bytes', 0, 9223372036854775807),
                                    fsync.arg_text(a, 'p_file_type'),
                                    fsync.arg_int(a, 'expected_version', 0, 2147483647)::integer);
end
$$;
comment on function public.register_binary_file(json) is
  'Records a binary already uploaded to Storage at project-assets/<project_id>/<path> as a new version (content NULL, storage_path set). Owner/editor. Arguments: one JSON object {project_uuid, p_file_path, p_storage_path, p_content_hash, p_size_bytes, p_file_type?, expected_version?}.';
revoke all on function public.register_binary_file(json) from public, anon;
grant execute on function public.register_binary_file(json) to authenticated, service_role;

-- SECURITY DEFINER: as fsync.upsert_project_file.
create function fsync.delete_project_file(p_project_id uuid, p_file_path text, p_expected_version integer default null)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_caller fsync.caller := fsync.authorize(p_project_id, true);
  v_res record;
  v_seq bigint;
  v_broadcast boolean;
begin
  -- No path rules here: deleting needs only a head with exactly this path, so a
  -- legacy path that breaks the rules can still be deleted.
  perform fsync.check_write_args(null, p_expected_version);
  perform fsync.consume_rate_limit(v_caller, p_project_id);
  v_broadcast := fsync.server_broadcasts(p_project_id);
  perform fsync.lock_project(p_project_id);

  select * into v_res
    from fsync.put_version(p_project_id, p_file_path, true, null, null, null, 0, null,
                           p_expected_version, v_caller.user_id);
  perform fsync.add_project_usage(p_project_id, v_res.live_files, v_res.live_bytes);
  if not v_res.noop then
    v_seq := fsync.append_event(p_project_id, 'file:delete',
                                jsonb_build_object('file_path', (v_res.file).file_path,
                                                   'version', (v_res.file).version),
                                null, v_caller.user_id, v_broadcast);
  end if;
  return fsync.file_result(v_res.file, v_seq, v_res.noop);
end
$$;
revoke all on function fsync.delete_project_file(uuid, text, integer) from public;
grant execute on function fsync.delete_project_file(uuid, text, integer) to authenticated, service_role;

create function public.delete_project_file(json)
returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
declare
  a jsonb := fsync.rpc_args('delete_project_file', $1,
                            array['project_uuid', 'p_file_path', 'expected_version'],
                            array['project_uuid', 'p_file_path']);
begin
  return fsync.delete_project_file(fsync.arg_uuid(a, 'project_uuid'), fsync.arg_text(a, 'p_file_path'),
                                   fsync.arg_int(a, 'expected_version', 0, 2147483647)::integer);
end
$$;
comment on function public.delete_project_file(json) is
  'Deletes a file by writing a tombstone version (no-op if already deleted). Owner/editor. Arguments: one JSON object {project_uuid, p_file_path, expected_version?}.';
revoke all on function public.delete_project_file(json) from public, anon;
grant execute on function public.delete_project_file(json) to authenticated, service_role;

-- SECURITY DEFINER: as fsync.upsert_project_file.
create function fsync.rename_project_file(
  p_project_id uuid, p_from_path text, p_to_path text, p_expected_version integer default null)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_caller fsync.caller := fsync.authorize(p_project_id, true);
  v_from public.project_files;
  v_to public.project_files;
  v_del record;
  v_new record;
  v_seq bigint;
  v_broadcast boolean;
begin
  -- The source needs only a live head with exactly this path (no path rules, so a
  -- legacy path that breaks them can be renamed to a valid one); the target is validated.
  perform fsync.validate_path(p_to_path);
  perform fsync.check_write_args(null, p_expected_version);
  if p_from_path = p_to_path then
    perform fsync.raise_error('PT422', format('cannot rename "%s" to itself', p_from_path),
                              jsonb_build_object('rule', 'same_path', 'path', p_from_path));
  end if;
  perform fsync.consume_rate_limit(v_caller, p_project_id);
  v_broadcast := fsync.server_broadcasts(p_project_id);
  perform fsync.lock_project(p_project_id);

  select * into v_from from public.project_files f
   where f.project_id = p_project_id and f.file_path = p_from_path and f.is_current_version;
  if not found or v_from.is_deleted then
    perform fsync.raise_error('PT404', format('file "%s" not found', fsync.display_path(p_from_path)),
                              jsonb_build_object('path', p_from_path));
  end if;
  select * into v_to from public.project_files f
   where f.project_id = p_project_id and f.file_path = p_to_path and f.is_current_version;
  if found and not v_to.is_deleted then
    perform fsync.raise_error('PT409',
      format('cannot rename "%s" to "%s": "%s" already exists at version %s',
             fsync.display_path(p_from_path), p_to_path, p_to_path, v_to.version),
      jsonb_build_object('path', p_to_path, 'expected_version', 0,
                         'current_version', v_to.version, 'current_hash', v_to.content_hash));
  end if;

  select * into v_del
    from fsync.put_version(p_project_id, p_from_path, true, null, null, null, 0, null,
                           p_expected_version, v_caller.user_id);
  select * into v_new
    from fsync.put_version(p_project_id, p_to_path, false, v_from.content, v_from.storage_path,
                           v_from.content_hash, v_from.size_bytes,
                           case when v_from.storage_path is not null then v_from.file_type
                                else fsync.infer_file_type(p_to_path) end,
                           null, v_caller.user_id);
  perform fsync.add_project_usage(p_project_id, v_del.live_files + v_new.live_files,
                                  v_del.live_bytes + v_new.live_bytes);
  v_seq := fsync.append_event(p_project_id, 'file:rename',
                              fsync.file_payload(v_new.file)
                              || jsonb_build_object('from_path', p_from_path,
                                                    'from_version', (v_del.file).version),
                              fsync.inline_content(v_new.file), v_caller.user_id, v_broadcast);
  return fsync.file_result(v_new.file, v_seq, false)
         || jsonb_build_object('from_path', p_from_path, 'from_version', (v_del.file).version);
end
$$;
revoke all on function fsync.rename_project_file(uuid, text, text, integer) from public;
grant execute on function fsync.rename_project_file(uuid, text, text, integer) to authenticated, service_role;

create function public.rename_project_file(json)
returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
declare
  a jsonb := fsync.rpc_args('rename_project_file', $1,
                            array['project_uuid', 'p_from_path', 'p_to_path', 'expected_version'],
                            array['project_uuid', 'p_from_path', 'p_to_path']);
begin
  return fsync.rename_project_file(fsync.arg_uuid(a, 'project_uuid'), fsync.arg_text(a, 'p_from_path'),
                                   fsync.arg_text(a, 'p_to_path'),
                                   fsync.arg_int(a, 'expected_version', 0, 2147483647)::integer);
end
$$;
comment on function public.rename_project_file(json) is
  'Moves a file: tombstone at the old path, new version at the new path, one file:rename event. expected_version applies to the old path. Owner/editor. Arguments: one JSON object {project_uuid, p_from_path, p_to_path, expected_version?}.';
revoke all on function public.rename_project_file(json) from public, anon;
grant execute on function public.rename_project_file(json) to authenticated, service_role;

-- SECURITY DEFINER: as fsync.upsert_project_file.
-- files: [{file_path, content, file_type?, expected_version?, delete?}
--         | {file_path, storage_path, content_hash, size_bytes, file_type?, expected_version?}]
-- All or nothing; one bulk:apply event listing the changed files (no contents).
-- Entries are validated first (pass 1), then applied in order (pass 2): the
-- version and path-conflict checks of entry n see entries 1..n-1.
create function fsync.bulk_upsert_project_files(p_project_id uuid, p_files jsonb)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_caller fsync.caller := fsync.authorize(p_project_id, true);
  v_max_files bigint := fsync.setting_bigint('limits.max_bulk_files', 5000);
  v_max_bytes bigint := fsync.setting_bigint('limits.max_bulk_bytes', 52428800);
  v_count integer;
  v_total bigint := 0;
  v_entry jsonb;
  v_index integer;
  v_check record;
  v_path text;
  v_delete boolean;
  v_expected integer;
  v_file_type text;
  v_paths text[] := '{}';
  v_hashes text[] := '{}';
  v_sizes bigint[] := '{}';
  v_deletes boolean[] := '{}';
  v_expecteds integer[] := '{}';
  v_types text[] := '{}';
  v_storage text[] := '{}';
  v_dup text;
  v_res record;
  v_changed jsonb[] := '{}';
  v_results jsonb[] := '{}';
  v_live_files bigint := 0;
  v_live_bytes bigint := 0;
  v_seq bigint;
  v_broadcast boolean;
begin
  if p_files is null or jsonb_typeof(p_files) <> 'array' then
    perform fsync.raise_error('PT422', 'files must be a JSON array of {file_path, content, …} objects',
                              jsonb_build_object('rule', 'bulk_format', 'param', 'files'));
  end if;
  v_count := jsonb_array_length(p_files);
  if v_count > v_max_files then
    perform fsync.raise_error('PT413', format('too many files in one bulk: %s; the limit is %s', v_count, v_max_files),
                              jsonb_build_object('limit', v_max_files, 'actual', v_count, 'what', 'files'));
  end if;

  -- Pass 1: validate every entry before touching anything.
  for v_index in 0 .. v_count - 1 loop
    v_entry := p_files -> v_index;
    if jsonb_typeof(v_entry) <> 'object' or jsonb_typeof(v_entry -> 'file_path') is distinct from 'string' then
      perform fsync.raise_error('PT422', format('files[%s] must be an object with a string file_path', v_index),
                                jsonb_build_object('rule', 'bulk_format', 'index', v_index,
                                                   'param', format('files[%s].file_path', v_index)));
    end if;
    v_path := v_entry ->> 'file_path';
    v_check := fsync.check_path(v_path);
    if v_check.rule is not null then
      perform fsync.raise_error('PT422', format('files[%s]: %s', v_index, v_check.message),
        case when v_check.rule in ('too_long', 'control_char')
             then jsonb_build_object('rule', v_check.rule, 'index', v_index)
             else jsonb_build_object('rule', v_check.rule, 'path', v_path, 'index', v_index) end
        || jsonb_build_object('param', format('files[%s].file_path', v_index)));
    end if;

    if jsonb_typeof(v_entry -> 'delete') is not null and jsonb_typeof(v_entry -> 'delete') not in ('boolean', 'null') then
      perform fsync.raise_error('PT422', format('files[%s]: delete must be true or false', v_index),
                                jsonb_build_object('rule', 'bulk_format', 'index', v_index, 'path', v_path,
                                                   'param', format('files[%s].delete', v_index)));
    end if;
    v_delete := coalesce((v_entry ->> 'delete')::boolean, false);

    v_expected := null;
    if jsonb_typeof(v_entry -> 'expected_version') = 'number' then
      if (v_entry ->> 'expected_version')::numeric <> trunc((v_entry ->> 'expected_version')::numeric)
         or (v_entry ->> 'expected_version')::numeric not between 0 and 2147483647 then
        perform fsync.raise_error('PT422', format('files[%s]: expected_version must be an integer >= 0', v_index),
                                  jsonb_build_object('rule', 'expected_version', 'index', v_index, 'path', v_path,
                                                     'param', format('files[%s].expected_version', v_index)));
      end if;
      v_expected := (v_entry ->> 'expected_version')::integer;
    elsif jsonb_typeof(v_entry -> 'expected_version') is distinct from 'null'
          and v_entry ? 'expected_version' then
      perform fsync.raise_error('PT422', format('files[%s]: expected_version must be an integer >= 0', v_index),
                                jsonb_build_object('rule', 'expected_version', 'index', v_index, 'path', v_path,
                                                   'param', format('files[%s].expected_version', v_index)));
    end if;

    v_file_type := null;
    if jsonb_typeof(v_entry -> 'file_type') = 'string' then
      v_file_type := v_entry ->> 'file_type';
    elsif jsonb_typeof(v_entry -> 'file_type') is distinct from 'null' and v_entry ? 'file_type' then
      perform fsync.raise_error('PT422', format('files[%s]: file_type must be a string', v_index),
                                jsonb_build_object('rule', 'file_type', 'index', v_index, 'path', v_path,
                                                   'param', format('files[%s].file_type', v_index)));
    end if;
    perform fsync.check_write_args(v_file_type, v_expected);

    v_paths := v_paths || v_path;
    v_deletes := v_deletes || v_delete;
    v_expecteds := v_expecteds || v_expected;
    v_types := v_types || v_file_type;
    if v_delete then
      v_hashes := v_hashes || null::text;
      v_sizes := v_sizes || 0::bigint;
      v_storage := v_storage || null::text;
    elsif jsonb_typeof(v_entry -> 'storage_path') = 'string' then
      if (case when jsonb_typeof(v_entry -> 'size_bytes') = 'number'
               then (v_entry ->> 'size_bytes')::numeric <> trunc((v_entry ->> 'size_bytes')::numeric)
                    or (v_entry ->> 'size_bytes')::numeric not between 0 and 9223372036854775807
               else true end) then
        perform fsync.raise_error('PT422', format('files[%s]: size_bytes must be an integer >= 0', v_index),
                                  jsonb_build_object('rule', 'size_bytes', 'index', v_index, 'path', v_path,
                                                     'param', format('files[%s].size_bytes', v_index)));
      end if;
      perform fsync.check_binary_args(p_project_id, v_entry ->> 'storage_path', v_entry ->> 'content_hash',
                                      (v_entry ->> 'size_bytes')::numeric::bigint);
      v_hashes := v_hashes || (v_entry ->> 'content_hash');
      v_sizes := v_sizes || (v_entry ->> 'size_bytes')::numeric::bigint;
      v_storage := v_storage || (v_entry ->> 'storage_path');
    elsif jsonb_typeof(v_entry -> 'content') = 'string' then
      perform fsync.check_text_size(v_path, octet_length(v_entry ->> 'content'));
      v_total := v_total + octet_length(v_entry ->> 'content');
      if v_total > v_max_bytes then
        perform fsync.raise_error('PT413',
          format('bulk content is too large: more than %s bytes; the limit is %s bytes', v_max_bytes, v_max_bytes),
          jsonb_build_object('limit', v_max_bytes, 'actual', v_total, 'what', 'bytes'));
      end if;
      v_hashes := v_hashes || fsync.content_hash(v_entry ->> 'content');
      v_sizes := v_sizes || octet_length(v_entry ->> 'content')::bigint;
      v_storage := v_storage || null::text;
    else
      perform fsync.raise_error('PT422',
        format('files[%s]: give content (a string), storage_path with content_hash and size_bytes, or delete: true', v_index),
        jsonb_build_object('rule', 'bulk_format', 'index', v_index, 'path', v_path,
                           'param', format('files[%s].content', v_index)));
    end if;
  end loop;

  select d.p into v_dup
    from unnest(v_paths) with ordinality as d(p, i)
   group by d.p having count(*) > 1
   order by min(d.i) limit 1;
  if v_dup is not null then
    perform fsync.raise_error('PT422', format('file "%s" appears more than once in the bulk', v_dup),
                              jsonb_build_object('rule', 'duplicate_path', 'path', v_dup));
  end if;

  perform fsync.consume_rate_limit(v_caller, p_project_id);
  v_broadcast := fsync.server_broadcasts(p_project_id);
  perform fsync.lock_project(p_project_id);

  -- Pass 2: write. Any error aborts the whole call: no row, no event, no seq.
  for v_index in 1 .. v_count loop
    select * into v_res
      from fsync.put_version(p_project_id, v_paths[v_index], v_deletes[v_index],
                             p_files -> (v_index - 1) ->> 'content', v_storage[v_index],
                             v_hashes[v_index], v_sizes[v_index], v_types[v_index],
                             v_expecteds[v_index], v_caller.user_id);
    v_results := v_results || jsonb_build_object(
      'file_path', (v_res.file).file_path, 'version', (v_res.file).version,
      'content_hash', (v_res.file).content_hash, 'deleted', (v_res.file).is_deleted, 'noop', v_res.noop);
    v_live_files := v_live_files + v_res.live_files;
    v_live_bytes := v_live_bytes + v_res.live_bytes;
    if not v_res.noop then
      v_changed := v_changed || jsonb_build_object(
        'file_path', (v_res.file).file_path, 'version', (v_res.file).version,
        'content_hash', (v_res.file).content_hash, 'deleted', (v_res.file).is_deleted);
    end if;
  end loop;
  perform fsync.add_project_usage(p_project_id, v_live_files, v_live_bytes);

  if cardinality(v_changed) > 0 then
    v_seq := fsync.append_event(p_project_id, 'bulk:apply', jsonb_build_object('files', to_jsonb(v_changed)), null,
                                v_caller.user_id, v_broadcast);
  end if;
  return jsonb_build_object(
    'project_id', p_project_id,
    'seq', v_seq,
    'applied', cardinality(v_changed),
    'unchanged', v_count - cardinality(v_changed),
    'files', to_jsonb(v_results));
end
$$;
revoke all on function fsync.bulk_upsert_project_files(uuid, jsonb) from public;
grant execute on function fsync.bulk_upsert_project_files(uuid, jsonb) to authenticated, service_role;

create function public.bulk_upsert_project_files(json)
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
  return fsync.bulk_upsert_project_files(fsync.arg_uuid(a, 'project_uuid'), fsync.arg_array(a, 'files'));
end
$$;
comment on function public.bulk_upsert_project_files(json) is
  'Applies many saves/deletes all-or-nothing with one bulk:apply event. Limits: limits.max_bulk_files, limits.max_bulk_bytes. Owner/editor. Arguments: one JSON object {project_uuid, files}.';
revoke all on function public.bulk_upsert_project_files(json) from public, anon;
grant execute on function public.bulk_upsert_project_files(json) to authenticated, service_role;

-- ---------------------------------------------------------------------
-- Public API: reads (members, service role, and a container token for its own
-- project with scope fsync:read)
-- ---------------------------------------------------------------------

-- SECURITY DEFINER (all reads): container tokens are not project members and
-- have no table privileges; fsync.authorize decides who reads which project.
create function fsync.list_current_files(p_project_id uuid)
returns table (file_path text, content text, content_hash text, version integer, file_type text,
               size_bytes bigint, storage_path text, updated_at timestamptz)
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  perform fsync.authorize(p_project_id, false);
  return query
    select f.file_path, f.content, f.content_hash, f.version, f.file_type, f.size_bytes, f.storage_path, f.updated_at
      from public.project_files f
     where f.project_id = p_project_id and f.is_current_version and not f.is_deleted
     order by f.file_path;
end
$$;
revoke all on function fsync.list_current_files(uuid) from public;
grant execute on function fsync.list_current_files(uuid) to authenticated, service_role, fsync_container;

create function public.list_current_files(json)
returns table (file_path text, content text, content_hash text, version integer, file_type text,
               size_bytes bigint, storage_path text, updated_at timestamptz)
language sql
stable
security invoker
set search_path = ''
as $$
  select r.*
    from fsync.rpc_args('list_current_files', $1,
                        array['project_uuid'],
                        array['project_uuid']) as a,
         lateral fsync.list_current_files(fsync.arg_uuid(a, 'project_uuid')) as r
$$;
comment on function public.list_current_files(json) is
  'Live heads of a project (tombstones excluded), ordered by path. Does not say which seq they reflect: use get_project_snapshot for that. Arguments: one JSON object {project_uuid}.';
revoke all on function public.list_current_files(json) from public, anon;
grant execute on function public.list_current_files(json) to authenticated, service_role, fsync_container;

create function fsync.get_project_snapshot(p_project_id uuid, p_include_content boolean default true)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_snapshot jsonb;
begin
  perform fsync.authorize(p_project_id, false);
  -- One statement, one snapshot: the file list and as_of_seq always agree.
  select jsonb_build_object(
           'project_id', p.id,
           'as_of_seq', p.last_seq,
           'files', coalesce((
             select jsonb_agg(
                      jsonb_build_object(
                        'file_path', f.file_path, 'content_hash', f.content_hash, 'version', f.version,
                        'file_type', f.file_type, 'size_bytes', f.size_bytes, 'storage_path', f.storage_path,
                        'updated_at', f.updated_at)
                      || case when coalesce(p_include_content, true)
                              then jsonb_build_object('content', f.content) else '{}'::jsonb end
                      order by f.file_path)
               from public.project_files f
              where f.project_id = p.id and f.is_current_version and not f.is_deleted), '[]'::jsonb))
    into v_snapshot
    from public.projects p
   where p.id = p_project_id;
  return v_snapshot;
end
$$;
revoke all on function fsync.get_project_snapshot(uuid, boolean) from public;
grant execute on function fsync.get_project_snapshot(uuid, boolean) to authenticated, service_role, fsync_container;

create function public.get_project_snapshot(json)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select fsync.get_project_snapshot(fsync.arg_uuid(a, 'project_uuid'), fsync.arg_bool(a, 'include_content'))
    from fsync.rpc_args('get_project_snapshot', $1,
                        array['project_uuid', 'include_content'],
                        array['project_uuid']) as a
$$;
comment on function public.get_project_snapshot(json) is
  '{project_id, as_of_seq, files:[{file_path, content, content_hash, version, file_type, size_bytes, storage_path, updated_at}]} from one consistent read. Arguments: one JSON object {project_uuid, include_content?}.';
revoke all on function public.get_project_snapshot(json) from public, anon;
grant execute on function public.get_project_snapshot(json) to authenticated, service_role, fsync_container;

-- paths null: all live heads. paths given: the head of each path (tombstones
-- included, is_deleted = true), or with versions (same length) the exact
-- (path, version), a null version meaning the head. Missing rows are omitted.
create function fsync.get_project_files(p_project_id uuid, p_paths text[] default null,
                                        p_versions integer[] default null)
returns table (file_path text, version integer, content text, content_hash text, file_type text,
               size_bytes bigint, storage_path text, is_deleted boolean, is_current_version boolean,
               updated_at timestamptz)
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  perform fsync.authorize(p_project_id, false);
  if p_versions is not null and (p_paths is null or cardinality(p_versions) <> cardinality(p_paths)) then
    perform fsync.raise_error('PT422', 'versions must have one entry per path',
                              jsonb_build_object('rule', 'versions'));
  end if;
  if cardinality(p_paths) > fsync.setting_bigint('limits.max_bulk_files', 5000) then
    perform fsync.raise_error('PT413', 'too many paths in one request',
      jsonb_build_object('limit', fsync.setting_bigint('limits.max_bulk_files', 5000),
                         'actual', cardinality(p_paths), 'what', 'files'));
  end if;
  if p_paths is null then
    return query
      select f.file_path, f.version, f.content, f.content_hash, f.file_type, f.size_bytes, f.storage_path,
             f.is_deleted, f.is_current_version, f.updated_at
        from public.project_files f
       where f.project_id = p_project_id and f.is_current_version and not f.is_deleted
       order by f.file_path;
  else
    return query
      select f.file_path, f.version, f.content, f.content_hash, f.file_type, f.size_bytes, f.storage_path,
             f.is_deleted, f.is_current_version, f.updated_at
        from unnest(p_paths, p_versions) with ordinality as q(path, version, ord)
        join public.project_files f
          on f.project_id = p_project_id and f.file_path = q.path
         and (case when q.version is null then f.is_current_version else f.version = q.version end)
       order by q.ord;
  end if;
end
$$;
revoke all on function fsync.get_project_files(uuid, text[], integer[]) from public;
grant execute on function fsync.get_project_files(uuid, text[], integer[]) to authenticated, service_role, fsync_container;

create function public.get_project_files(json)
returns table (file_path text, version integer, content text, content_hash text, file_type text,
               size_bytes bigint, storage_path text, is_deleted boolean, is_current_version boolean,
               updated_at timestamptz)
language sql
stable
security invoker
set search_path = ''
as $$
  select r.*
    from fsync.rpc_args('get_project_files', $1,
                        array['project_uuid', 'paths', 'versions'],
                        array['project_uuid']) as a,
         lateral fsync.get_project_files(fsync.arg_uuid(a, 'project_uuid'), fsync.arg_text_array(a, 'paths'),
                                         fsync.arg_int_array(a, 'versions', 1, 2147483647)::integer[]) as r
$$;
comment on function public.get_project_files(json) is
  'Contents by path for catch-up: heads (tombstones included) or exact (path, version) pairs, including historical versions. Arguments: one JSON object {project_uuid, paths?, versions?}.';
revoke all on function public.get_project_files(json) from public, anon;
grant execute on function public.get_project_files(json) to authenticated, service_role, fsync_container;

create function fsync.list_project_events(p_project_id uuid, p_after_seq bigint default 0,
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
revoke all on function fsync.list_project_events(uuid, bigint, integer) from public;
grant execute on function fsync.list_project_events(uuid, bigint, integer) to authenticated, service_role, fsync_container;

create function public.list_project_events(json)
returns setof jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select r.*
    from fsync.rpc_args('list_project_events', $1,
                        array['project_uuid', 'after_seq', 'max_events'],
                        array['project_uuid']) as a,
         lateral fsync.list_project_events(fsync.arg_uuid(a, 'project_uuid'),
                                           fsync.arg_int(a, 'after_seq', 0, 9223372036854775807),
                                           coalesce(fsync.arg_int(a, 'max_events', 1, 2147483647)::integer, 1000)) as r
$$;
comment on function public.list_project_events(json) is
  'Event payloads with seq > after_seq in seq order (at most min(max_events, 1000)), with content as in the broadcast. Arguments: one JSON object {project_uuid, after_seq?, max_events?}.';
revoke all on function public.list_project_events(json) from public, anon;
grant execute on function public.list_project_events(json) to authenticated, service_role, fsync_container;

create function fsync.get_project_sync_state(p_project_id uuid)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  perform fsync.authorize(p_project_id, false);
  return (select jsonb_build_object('project_id', p.id, 'seq', p.last_seq)
            from public.projects p where p.id = p_project_id);
end
$$;
revoke all on function fsync.get_project_sync_state(uuid) from public;
grant execute on function fsync.get_project_sync_state(uuid) to authenticated, service_role, fsync_container;

create function public.get_project_sync_state(json)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select fsync.get_project_sync_state(fsync.arg_uuid(a, 'project_uuid'))
    from fsync.rpc_args('get_project_sync_state', $1,
                        array['project_uuid'],
                        array['project_uuid']) as a
$$;
comment on function public.get_project_sync_state(json) is
  '{project_id, seq}: the seq of the newest committed event. Arguments: one JSON object {project_uuid}.';
revoke all on function public.get_project_sync_state(json) from public, anon;
grant execute on function public.get_project_sync_state(json) to authenticated, service_role, fsync_container;
