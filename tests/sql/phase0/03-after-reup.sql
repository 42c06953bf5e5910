-- The migrations again, after a rollback during which the legacy app kept
-- writing (tests/fixtures/phase0/legacy-writes.sql): nothing is lost and the
-- change log continues: seq goes on from where it stopped without a gap, and
-- one bulk:apply event per changed project names every version written while
-- fs-sync was rolled back, so followers that held a position converge.
-- Runs only on velocity's Phase-0 fixture at stage "reup" (scripts/phase0.sh);
-- anywhere else it skips.
begin;
create extension if not exists pgtap;
select to_regclass('phase0_snapshot.state') is not null as has_snapshot \gset
\if :has_snapshot
select stage = 'reup' as run from phase0_snapshot.state \gset
\else
\set run false
\endif
\if :run
select plan(15);

select hasnt_schema('fsync_rollback', 'everything kept aside came back (fsync_rollback is gone)');

-- Nothing lost ---------------------------------------------------------------------------------
select is_empty($$
  select r.id from phase0_snapshot.rows_before_reup r left join public.project_files f on f.id = r.id where f.id is null
$$, 'every version is still there: Phase 0''s, fs-sync''s, and the legacy app''s from the rollback');
select is_empty($$
  select s.id from phase0_snapshot.file_versions s join public.project_files f on f.id = s.id
   where md5(f.content) is distinct from s.content_md5 and not (s.content_md5 is null and (f.content = '' or f.storage_path is not null))
$$, '… with its content');
select set_eq($$select f.project_id, f.file_path, md5(f.content), f.is_deleted
                  from public.project_files f
                 where f.is_current_version and f.project_id in (select w.project_id from phase0_snapshot.written w)$$,
              $$select e.project_id, e.file_path,
                       case when e.deleted then null when e.storage_path is not null then null else coalesce(e.content_md5, md5('')) end,
                       e.deleted
                  from phase0_snapshot.expected_heads e where e.stage = 'legacy'$$,
              'each path holds what the legacy app left it holding (its edits, soft delete, re-created and new files)');
select is_empty($$
  select f.file_path from public.project_files f
    join phase0_snapshot.expected_heads e on e.stage = 'rpc' and e.deleted and e.project_id = f.project_id and e.file_path = f.file_path
   where f.id not in (select r.id from phase0_snapshot.rows_before_reup r)
     and f.metadata -> 'fsync_upgrade' ->> 'appended' = 'soft_delete'
$$, 'the tombstones fs-sync wrote came back as themselves: none was appended again');
select is_empty($$
  select file_path from public.project_files group by project_id, file_path
  having not (min(version) = 1 and max(version) = count(*) and count(distinct version) = count(*))
      or count(*) filter (where is_current_version) <> 1
$$, 'every path: versions 1, 2, 3 … and one head');
select is_empty($$select * from phase0_snapshot.members_before_down except select * from public.project_members$$,
                'the memberships came back (the editor added under fs-sync too)');
select is_empty($$select * from phase0_snapshot.flag_changes_before_down except select * from public.feature_flag_changes$$,
                'the flag audit trail came back');

-- The log continues ------------------------------------------------------------------------------
select is_empty($$
  select s.project_id from phase0_snapshot.seq_before_down s
    join public.projects p on p.id = s.project_id
   where p.last_seq <> s.last_seq + case when s.project_id in (select w.project_id from phase0_snapshot.written w) then 1 else 0 end
$$, 'seq continues where it stopped: one more for each project the legacy app changed meanwhile');
select is_empty($$
  select e.project_id from public.project_events e group by e.project_id
  having count(*) <> max(e.seq) or min(e.seq) <> 1
      or max(e.seq) <> (select p.last_seq from public.projects p where p.id = e.project_id)
$$, 'the log is gapless: seq 1 … last_seq in every project');
select is_empty($$
  select w.project_id from phase0_snapshot.written w
   where not exists (select 1 from public.project_events e
                      where e.project_id = w.project_id and e.event_type = 'bulk:apply' and e.payload ? 'catch_up'
                        and e.seq = (select p.last_seq from public.projects p where p.id = w.project_id))
$$, 'the newest event of each changed project is the catch-up bulk:apply');
select set_eq($$select e.project_id, x.f ->> 'file_path', (x.f ->> 'version')::int
                  from public.project_events e, jsonb_array_elements(e.payload -> 'files') x(f)
                 where e.payload ? 'catch_up'$$,
              $$select f.project_id, f.file_path, f.version from public.project_files f
                 where f.id not in (select b.id from phase0_snapshot.rows_before_down b)
                   and not (fsync.path_suspect(f.file_path) and fsync.path_error(f.file_path) is not null)$$,
              '… naming exactly the versions written while fs-sync was rolled back (and by the upgrade for them)');
select tests.remember('p', (select w.project_id from phase0_snapshot.written w order by w.project_id limit 1));
select tests.remember('owner', (select w.owner_id from phase0_snapshot.written w order by w.project_id limit 1));
select set_config('tests.first_caught_up', (select min(f.file_path collate "C") from public.project_files f
  where f.project_id = tests.recall('p') and f.id not in (select b.id from phase0_snapshot.rows_before_down b)
    and not (fsync.path_suspect(f.file_path) and fsync.path_error(f.file_path) is not null)), true);
select tests.authenticate_as_claims(jsonb_build_object('role', 'authenticated', 'sub', tests.recall('owner')));
select is((public.upsert_project_file(json_build_object('project_uuid', tests.recall('p'), 'p_file_path', 'src/after-reup.ts',
                                                         'p_content', 'again')) ->> 'seq')::bigint,
          (select s.last_seq + 2 from phase0_snapshot.seq_before_down s where s.project_id = tests.recall('p')),
          'the next write takes the next seq');
select is((select jsonb_agg(e order by (e ->> 'seq')::int) -> -1 -> 'files' -> 0 ->> 'file_path'
             from public.list_project_events(json_build_object(
                    'project_uuid', tests.recall('p'),
                    'after_seq', (select s.last_seq from phase0_snapshot.seq_before_down s where s.project_id = tests.recall('p')),
                    'max_events', 1)) e),
          current_setting('tests.first_caught_up'),
          'a follower that held its position before the rollback reads the catch-up event next');
select tests.reset_authentication();
select isnt_empty($$select 1 from public.project_members m join phase0_snapshot.written w on w.project_id = m.project_id
                     where m.role = 'editor'$$, '(an editor is among them)');

select * from finish();
\else
select plan(1);
select skip('not velocity''s Phase-0 fixture after the migrations ran again (scripts/phase0.sh)', 1);
select * from finish();
\endif
rollback;
