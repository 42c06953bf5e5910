-- =====================================================================
-- fsync-legacy-writes: the legacy app's direct table writes become versioned
-- writes, and the flags do what they say.
--
-- 1. Direct writes on public.project_files. velocity's app writes with
--    supabase-js (.from('project_files').insert/upsert/update/delete) until it
--    moves to the RPCs. Owners and editors (and the service role) may run those
--    statements again; a BEFORE row trigger turns each row they touch into the
--    RPC that means the same thing, through the RPCs' own code (access check,
--    path rules, rate limit, project caps, one change-log event with the next
--    seq, the broadcast), and then returns NULL: the statement itself changes no
--    row, so history is never rewritten. Per row:
--      INSERT  the path's content becomes the row's content:
--              fsync.upsert_project_file with no expected_version (last writer
--              wins, as the legacy app had); a binary (content NULL,
--              storage_path, content_hash, size_bytes) is
--              fsync.register_binary_file. The server assigns version,
--              is_current_version, hash, size, author, timestamps and metadata;
--              what the row says about them is ignored. Content equal to the
--              head's is a no-op (no version, no event).
--      UPDATE  of a live head: a new file_path is a rename
--              (fsync.rename_project_file); new content (or file_type, or binary
--              fields) is a new version at the (new) path. Anything else (the
--              legacy "is_current_version = false before inserting the next
--              version" step, metadata, timestamps) and any update of a
--              historical row or a tombstone is a no-op.
--      DELETE  of a live head: fsync.delete_project_file (a tombstone).
--              Deleting historical rows or tombstones is a no-op.
--    Refused with PT422: a row with neither content nor storage_path, setting
--    is_deleted (delete the row instead), changing project_id.
--    Consequences for the app: insert(...).select(), update(...).select() and
--    delete(...).select() return no rows (there is no row to return: the RPC
--    wrote its own); the new version reaches the app by the event or the RPC
--    reads. A statement touching many rows is applied row by row, one event per
--    changed file, each charged to the rate limit. Reads (project_files,
--    project_files_current) are unchanged.
--    The trigger runs for every role but the table's owner: the RPCs are
--    SECURITY DEFINER functions owned by it, so their own inserts and updates,
--    like FK cascades, pass untouched and never re-enter the trigger; a client
--    cannot become the owner, so it cannot skip the trigger (see the trigger).
--    RLS: INSERT's WITH CHECK is not evaluated for a row a BEFORE trigger drops,
--    so the trigger function checks access itself (fsync.authorize: a viewer or
--    non-member insert is 42501); UPDATE and DELETE see only rows of projects
--    the caller may write (a viewer's update or delete matches no row).
--    Concurrency: a signed-in caller's direct UPDATE or DELETE first locks the
--    projects they may write (trigger fsync_legacy_lock), so it waits for a
--    concurrent write as an RPC would instead of deadlocking with it; a row
--    whose head that write replaced meanwhile is then history, a no-op (as if
--    the statement had run first and been overwritten). The service role's
--    direct updates and deletes do not pre-lock: racing an RPC write of the
--    same path, one of them can fail with 40P01 (deadlock detected).
--
-- 2. Flags.
--    FSYNC_SERVER_BROADCASTS (for the project's owner): fsync.append_event
--      always writes the event, and realtime.send's it only when the flag is
--      on. Off, followers still converge: they confirm their position with
--      get_project_sync_state and fetch the log.
--    FSYNC_BULK_GENERATION (for the calling user): bulk_upsert_project_files
--      refuses a signed-in user without it with PT403 (HTTP 403), DETAIL
--      {"flag": "FSYNC_BULK_GENERATION"}. The service role is not gated.
--    FSYNC_KEEP_CLIENT_BROADCAST (for the sending user): writers may broadcast
--      optimistic edits on the private topic project:<id>:edits, never on
--      project:<id>: followers apply what arrives there, so a forged event would
--      make containers diverge from the database. Members of any role may
--      receive project:<id>:edits; container tokens get nothing on it. Who may
--      join project:<id> is unchanged.
--    Seeded defaults: fsync.seed_feature_flags in fsync-feature-flags.
-- =====================================================================

-- ---------------------------------------------------------------------
-- Helpers
-- ---------------------------------------------------------------------

-- A direct write's file, through the RPC that means the same: text when content
-- is given, else a binary registration, else refused. velocity's app writes a
-- binary its Phase-0 way (is_binary, metadata.storage_path, file_size: see
-- fsync-legacy-upgrade); read through to_jsonb so that this compiles on a table
-- without those columns.
create function fsync.legacy_put(p_row public.project_files, p_path text, p_file_type text)
returns void
language plpgsql
set search_path = ''
as $$
declare
  v_row jsonb;
begin
  if p_row.content is not null then
    perform fsync.upsert_project_file(p_row.project_id, p_path, p_row.content, p_file_type, null);
    return;
  elsif p_row.storage_path is not null then
    perform fsync.register_binary_file(p_row.project_id, p_path, p_row.storage_path, p_row.content_hash,
                                       p_row.size_bytes, p_file_type, null);
    return;
  end if;
  v_row := to_jsonb(p_row);
  if coalesce((v_row ->> 'is_binary')::boolean, false) and p_row.metadata ? 'storage_path' then
    perform fsync.register_binary_file(p_row.project_id, p_path, p_row.metadata ->> 'storage_path',
                                       lower(p_row.content_hash), coalesce((v_row ->> 'file_size')::bigint, p_row.size_bytes),
                                       p_file_type, null);
  else
    perform fsync.raise_error('PT422',
      'a file needs content (text) or storage_path, content_hash and size_bytes (a binary in Storage); '
      'delete the row to delete the file',
      jsonb_build_object('rule', 'content', 'param', 'content'));
  end if;
end
$$;
revoke all on function fsync.legacy_put(public.project_files, text, text) from public;

-- ---------------------------------------------------------------------
-- Direct writes
-- ---------------------------------------------------------------------

-- SECURITY DEFINER: runs fsync internals no API role may execute (authorize,
-- legacy_put) and the write RPCs as their owner, as a direct RPC call would.
-- Checks access itself first (fsync.authorize): RLS does not check an inserted
-- row the trigger drops. See the header for what each statement means.
create function fsync.legacy_write()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_path text;
  v_renamed boolean;
begin
  if tg_op = 'INSERT' then
    if new.project_id is null then
      perform fsync.raise_error('PT422', 'project_id is required', jsonb_build_object('rule', 'required', 'param', 'project_id'));
    end if;
    perform fsync.authorize(new.project_id, true);
    if new.is_deleted then
      perform fsync.raise_error('PT422', 'is_deleted is set by the server: delete the row to delete the file',
                                jsonb_build_object('rule', 'is_deleted', 'param', 'is_deleted'));
    end if;
    perform fsync.legacy_put(new, new.file_path, new.file_type);
    return null;
  end if;

  perform fsync.authorize(old.project_id, true);
  if tg_op = 'UPDATE' and new.project_id is distinct from old.project_id then
    perform fsync.raise_error('PT422', 'project_id cannot change: a file cannot move to another project',
                              jsonb_build_object('rule', 'project_id', 'param', 'project_id'));
  end if;
  -- Only a live head stands for the file; other rows are history.
  if not old.is_current_version or old.is_deleted then
    return null;
  end if;

  if tg_op = 'DELETE' then
    perform fsync.delete_project_file(old.project_id, old.file_path, null);
    return null;
  end if;

  if new.is_deleted is distinct from old.is_deleted then
    perform fsync.raise_error('PT422', 'is_deleted is set by the server: delete the row to delete the file',
                              jsonb_build_object('rule', 'is_deleted', 'param', 'is_deleted'));
  end if;
  v_renamed := new.file_path is distinct from old.file_path;
  v_path := old.file_path;
  if v_renamed then
    perform fsync.rename_project_file(old.project_id, old.file_path, new.file_path, null);
    v_path := new.file_path;
  end if;
  if (new.content, new.storage_path, new.content_hash, new.size_bytes, new.file_type)
     is distinct from (old.content, old.storage_path, old.content_hash, old.size_bytes, old.file_type) then
    -- An unchanged file_type is kept, as an in-place update kept it, except
    -- after a rename, which re-infers it from the new path.
    perform fsync.legacy_put(new, v_path,
                             case when v_renamed and new.file_type is not distinct from old.file_type then null
                                  else new.file_type end);
  end if;
  return null;
end
$$;
revoke all on function fsync.legacy_write() from public;

-- An UPDATE or DELETE locks each row before its row trigger runs, and the
-- trigger's RPC then queues for the project lock: the reverse of an RPC, which
-- holds the project lock when it flips the head row. A direct update of a path
-- racing another write of it would deadlock. So the statement first takes the
-- project locks a signed-in caller could need (the projects they may write, in
-- id order), as an RPC would; a row whose head moved meanwhile is then history
-- (a no-op). Not for the service role, which may write every project.
-- SECURITY DEFINER: as fsync.legacy_write.
create function fsync.legacy_lock_projects()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if (fsync.current_caller()).kind = 'user' then
    perform 1 from public.projects p
     where p.id in (select fsync.writable_project_ids())
     order by p.id
       for no key update of p;
  end if;
  return null;
end
$$;
revoke all on function fsync.legacy_lock_projects() from public;

-- Client statements are told from the RPCs' own writes by current_user, read in
-- the trigger's WHEN clause (inside the SECURITY DEFINER function it would name
-- the function's owner): the write RPCs are SECURITY DEFINER functions owned by
-- the owner of project_files, so their inserts and updates run as that owner,
-- as FK cascades do, and pass untouched (no recursion). A client cannot become
-- that role. The owner's name is written into the clause (a constant compare:
-- nothing per row for the RPCs' writes); if ownership ever changes, the fs-sync
-- functions and the table must change together and this trigger be recreated.
-- A mismatch fails here rather than letting RPC writes re-enter the trigger.
do $$
declare
  v_owner oid := (select c.relowner from pg_catalog.pg_class c where c.oid = 'public.project_files'::regclass);
  v_other text;
begin
  select p.oid::regprocedure::text into v_other
    from pg_catalog.pg_proc p
   where p.pronamespace = 'fsync'::regnamespace and p.prosecdef and p.proowner <> v_owner
   limit 1;
  if v_other is not null then
    raise exception '% is not owned by %, the owner of public.project_files: fs-sync''s SECURITY DEFINER functions must be',
                    v_other, pg_catalog.pg_get_userbyid(v_owner);
  end if;
  execute format('create trigger fsync_legacy_write
                    before insert or update or delete on public.project_files
                    for each row
                    when (current_user <> %L::name)
                    execute function fsync.legacy_write()', pg_catalog.pg_get_userbyid(v_owner));
  execute format('create trigger fsync_legacy_lock
                    before update or delete on public.project_files
                    for each statement
                    when (current_user <> %L::name)
                    execute function fsync.legacy_lock_projects()', pg_catalog.pg_get_userbyid(v_owner));
end
$$;

-- What the legacy app runs: owners and editors (fsync.writable_project_ids) on
-- their projects. The service role bypasses RLS; both go through the trigger.
create policy "writers insert project files" on public.project_files
  for insert to authenticated
  with check (project_id in (select fsync.writable_project_ids()));

create policy "writers update project files" on public.project_files
  for update to authenticated
  using (project_id in (select fsync.writable_project_ids()))
  with check (project_id in (select fsync.writable_project_ids()));

create policy "writers delete project files" on public.project_files
  for delete to authenticated
  using (project_id in (select fsync.writable_project_ids()));

grant insert, update, delete on public.project_files to authenticated, service_role;

comment on table public.project_files is
  'Every version of every file. Written by the fs-sync RPCs; direct INSERT/UPDATE/DELETE by clients are turned into the same RPC writes by trigger fsync_legacy_write and change no row themselves. One head (is_current_version) per path; versions 1,2,3… per path, tombstones (is_deleted) included.';

-- ---------------------------------------------------------------------
-- FSYNC_SERVER_BROADCASTS
-- ---------------------------------------------------------------------

-- The broadcast is sent only when FSYNC_SERVER_BROADCASTS is on for the
-- project's owner (fsync.append_event asks this). The event is written either
-- way: the log is the truth.
create or replace function fsync.server_broadcasts(p_project_id uuid)
returns boolean
language plpgsql
stable
set search_path = ''
as $$
begin
  return fsync.flag_enabled('FSYNC_SERVER_BROADCASTS',
                            (select p.owner_id from public.projects p where p.id = p_project_id));
end
$$;

-- ---------------------------------------------------------------------
-- FSYNC_BULK_GENERATION
-- ---------------------------------------------------------------------

-- The bulk of fsync-rpcs, unchanged, under a name no API role may execute, so
-- that the gate below cannot be skipped.
alter function fsync.bulk_upsert_project_files(uuid, jsonb) rename to apply_bulk;
revoke execute on function fsync.apply_bulk(uuid, jsonb) from authenticated, service_role;

-- SECURITY DEFINER: runs fsync.apply_bulk (SECURITY DEFINER itself, see
-- fsync-rpcs). Access first, so that a non-member learns nothing about flags.
create function fsync.bulk_upsert_project_files(p_project_id uuid, p_files jsonb)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_caller fsync.caller := fsync.authorize(p_project_id, true);
begin
  if v_caller.kind = 'user' and not fsync.flag_enabled('FSYNC_BULK_GENERATION', v_caller.user_id) then
    perform fsync.raise_error('PT403', 'bulk generation is off for this user (FSYNC_BULK_GENERATION)',
                              jsonb_build_object('flag', 'FSYNC_BULK_GENERATION'));
  end if;
  return fsync.apply_bulk(p_project_id, p_files);
end
$$;
revoke all on function fsync.bulk_upsert_project_files(uuid, jsonb) from public;
grant execute on function fsync.bulk_upsert_project_files(uuid, jsonb) to authenticated, service_role;

-- ---------------------------------------------------------------------
-- FSYNC_KEEP_CLIENT_BROADCAST
-- ---------------------------------------------------------------------

-- Members join project:<id> exactly as before, and now also project:<id>:edits.
-- One SELECT policy per role (Supabase lint 0006), so the existing one is widened.
alter policy "fsync: members receive project events" on realtime.messages
  using (
    extension in ('broadcast', 'presence')
    and topic = (select realtime.topic())
    and (select realtime.topic()) like 'project:%'
    and (select realtime.topic()) in (
      select t.topic
        from fsync.member_project_ids() as m,
             lateral (values ('project:' || m::text), ('project:' || m::text || ':edits')) as t(topic))
  );

-- Realtime checks this INSERT policy when a client joins (and at each token
-- refresh) to decide whether it may broadcast on the channel.
create policy "fsync: writers broadcast edits" on realtime.messages
  for insert to authenticated
  with check (
    extension = 'broadcast'
    and topic = (select realtime.topic())
    and (select realtime.topic()) like 'project:%:edits'
    and (select realtime.topic()) in (select 'project:' || w::text || ':edits' from fsync.writable_project_ids() as w)
    and (select fsync.is_feature_enabled('FSYNC_KEEP_CLIENT_BROADCAST', (select auth.uid())))
  );
