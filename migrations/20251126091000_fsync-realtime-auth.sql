-- =====================================================================
-- fsync-realtime-auth: who may join the private channel project:<id>.
-- Realtime checks read access at join by selecting probe rows of
-- realtime.messages as the joining role with realtime.topic() set (see
-- docs/supabase.md), so these SELECT policies decide who receives the
-- server-authored file events:
--   * authenticated members of the project;
--   * fsync_container tokens whose project_id claim matches and whose scope
--     includes fsync:read.
-- No INSERT policy: clients cannot broadcast or track presence on project
-- topics. Only the write RPCs put messages there (SECURITY DEFINER, see
-- fsync.append_event). fsync-legacy-writes adds the separate topic
-- project:<id>:edits for clients' optimistic edits (members receive; writers
-- send while FSYNC_KEEP_CLIENT_BROADCAST is on) and leaves project:<id> as it is.
-- Each policy also requires the row's topic to be the channel's topic
-- (realtime.topic()): the checks on realtime.topic() alone would let a member of
-- p1 whose channel is project:<p1> read the rows of every other topic.
-- Separate policies per role, so a container token (whose sub is a session
-- id, not a user uuid) never evaluates auth.uid().
-- =====================================================================

create policy "fsync: members receive project events" on realtime.messages
  for select to authenticated
  using (
    extension in ('broadcast', 'presence')
    and topic = (select realtime.topic())
    and (select realtime.topic()) like 'project:%'
    and (select realtime.topic()) in (select 'project:' || m::text from fsync.member_project_ids() as m)
  );

create policy "fsync: containers receive their project's events" on realtime.messages
  for select to fsync_container
  using (
    extension in ('broadcast', 'presence')
    and topic = (select realtime.topic())
    and (select realtime.topic()) = 'project:' || ((select auth.jwt()) ->> 'project_id')
    and 'fsync:read' = any (string_to_array(coalesce((select auth.jwt()) ->> 'scope', ''), ' '))
  );
