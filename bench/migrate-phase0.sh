#!/usr/bin/env bash
# How long fs-sync's migrations take on velocity's Phase-0 database, and how
# long they lock project_files (docs/adoption.md "Measured"). For each scale: a
# throwaway PostgreSQL 15 cluster with supabase/local-base and the Phase-0
# fixture (tests/fixtures/phase0/) seeded with that many file rows; then every
# migration, each in one transaction as `supabase db push` applies it, while a
# second session polls pg_locks every 5 ms and reports, per migration, the
# longest time a lock on project_files was held that blocks readers (ACCESS
# EXCLUSIVE) and that blocks writers (SHARE and stronger).
#
#   bench/migrate-phase0.sh                    # 200,000 and 2,000,000 rows
#   bench/migrate-phase0.sh 20000 200000       # other scales
#
# Needs initdb/pg_ctl/psql (PostgreSQL 15). Env: PGPORT_DEV (default 54329).
# Disk: about 3 GB per million rows while it runs.
set -euo pipefail

# shellcheck source=../scripts/lib.sh
source "$(dirname "$0")/../scripts/lib.sh"
port=${PGPORT_DEV:-54329}
scales=("$@")
[ ${#scales[@]} -gt 0 ] || scales=(200000 2000000)

now() { date +%s.%N; }

results=()
for files in "${scales[@]}"; do
  work=$(mktemp -d /tmp/fsync-bench.XXXXXX)
  pg_start "$work" "$port" -c max_wal_size=8GB -c checkpoint_timeout=30min
  trap '"${as_pg[@]}" pg_ctl -D "$work/data" -m fast stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
  psql_() { PGOPTIONS='-c client_min_messages=warning' psql -h "$work" -p "$port" -U postgres -X -q -v ON_ERROR_STOP=1 -d fsync "$@"; }
  pg_base "$work" "$port" fsync
  # The app's schema, the fixture and the migrations as postgres, which is no superuser (as hosted).
  psql_ -f "$root/tests/fixtures/phase0/schema.sql"
  t0=$(now)
  psql_ -v files="$files" -f "$root/tests/fixtures/phase0/seed.sql"
  rows=$(psql_ -At -c 'select count(*) from public.project_files')
  size=$(psql_ -At -c "select pg_size_pretty(pg_total_relation_size('public.project_files'))")
  printf '\n%s file rows (%s with indexes), seeded in %.0f s\n' "$rows" "$size" "$(echo "$(now) - $t0" | bc)"

  # The monitor: one notice per lock hold on public.project_files (whatever oid the
  # name has when the hold starts), with the holder's application_name.
  psql_ -c 'create table public.bench_lock_monitor (stop boolean); insert into public.bench_lock_monitor values (false)' >/dev/null
  psql -h "$work" -p "$port" -U postgres -X -q -d fsync -v ON_ERROR_STOP=1 >/dev/null 2>"$work/locks.log" <<'SQL' &
set client_min_messages = notice;
do $$
declare
  v_held jsonb := '{}';
  v_now jsonb;
  v_key text;
  v_rel oid;
begin
  -- Each statement reads committed data anew, so the stop flag and the table's
  -- oid (the upgrade swaps it) come from tables, not from the cached catalog;
  -- pg_stat_activity is cached per transaction until cleared.
  while not exists (select 1 from public.bench_lock_monitor m where m.stop) loop
    perform pg_stat_clear_snapshot();
    select c.oid into v_rel from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where n.nspname = 'public' and c.relname = 'project_files';
    select coalesce(jsonb_object_agg(l.pid || ' ' || l.mode,
                                     jsonb_build_object('app', a.application_name, 'mode', l.mode)), '{}')
      into v_now
      from pg_locks l join pg_stat_activity a on a.pid = l.pid
     where l.locktype = 'relation' and l.relation = v_rel and l.granted and l.pid <> pg_backend_pid()
       and l.mode in ('ShareLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock');
    for v_key in select k from jsonb_object_keys(v_now) k loop
      if not v_held ? v_key then
        v_held := v_held || jsonb_build_object(v_key, v_now -> v_key || jsonb_build_object('since', clock_timestamp()));
      end if;
    end loop;
    for v_key in select k from jsonb_object_keys(v_held) k loop
      if not v_now ? v_key then
        raise notice 'HOLD|%|%|%', v_held -> v_key ->> 'app', v_held -> v_key ->> 'mode',
          round(extract(epoch from clock_timestamp() - (v_held -> v_key ->> 'since')::timestamptz) * 1000);
        v_held := v_held - v_key;
      end if;
    end loop;
    perform pg_sleep(0.005);
  end loop;
end
$$;
SQL
  monitor=$!
  sleep 0.5

  printf '%-36s %10s %14s %14s\n' migration 'time (s)' 'AE held (ms)' 'writers (ms)'
  t_all=$(now)
  for f in "$root"/migrations/*.sql; do
    name=$(basename "$f" .sql)
    t0=$(now)
    PGAPPNAME="$name" psql_ -1 -f "$f" >/dev/null 2>>"$work/apply.log" || { cat "$work/apply.log"; exit 1; }
    echo "$name $(echo "$(now) - $t0" | bc)" >>"$work/times"
  done
  total=$(echo "$(now) - $t_all" | bc)
  sleep 0.2
  psql_ -c 'update public.bench_lock_monitor set stop = true' >/dev/null
  wait "$monitor" || true

  max_ae=0; max_w=0
  while read -r name secs; do
    ae=$(awk -F'|' -v n="$name" '$2 == n && $3 == "AccessExclusiveLock" { if ($4 > m) m = $4 } END { print m + 0 }' "$work/locks.log")
    w=$(awk -F'|' -v n="$name" '$2 == n { if ($4 > m) m = $4 } END { print m + 0 }' "$work/locks.log")
    [ "$ae" -gt "$max_ae" ] && max_ae=$ae
    [ "$w" -gt "$max_w" ] && max_w=$w
    if [ "$ae" -gt 0 ] || [ "$w" -gt 0 ] || [ "$(echo "$secs > 0.5" | bc)" = 1 ]; then
      printf '%-36s %10.2f %14s %14s\n' "${name#*_}" "$secs" "$ae" "$w"
    fi
  done <"$work/times"
  printf '%-36s %10.2f %14s %14s\n' 'all migrations' "$total" "$max_ae" "$max_w"
  # From fsync-legacy-upgrade's commit to fsync-legacy-writes' the app's direct
  # writes are refused (42501): the migrations in between.
  gap=$(awk '/fsync-legacy-upgrade/ { on = 1; next } on { s += $2 } /fsync-legacy-writes/ { print s; exit }' "$work/times")
  printf 'direct writes refused between fsync-legacy-upgrade and fsync-legacy-writes: %.2f s\n' "$gap"
  results+=("$(printf '| %s | %s | %.1f s | %s ms | %.1f s | %.2f s |' "$rows" "$size" "$total" "$max_ae" \
                      "$(echo "$max_w / 1000" | bc -l)" "$gap")")

  "${as_pg[@]}" pg_ctl -D "$work/data" -m fast stop >/dev/null
  rm -rf "$work"
  trap - EXIT
done

printf '\n| file rows | table + indexes | migrations | longest ACCESS EXCLUSIVE on project_files | longest writer-blocking lock | direct writes refused |\n|---:|---:|---:|---:|---:|---:|\n'
printf '%s\n' "${results[@]}"
