#!/usr/bin/env bash
# fs-sync adopted onto velocity's Phase-0 database, and rolled back, on a
# throwaway PostgreSQL 15 cluster (docs/adoption.md):
#
#   1. supabase/local-base/*.sql, the Phase-0 fixture (tests/fixtures/phase0/
#      schema.sql, seed.sql at the given scale) and a snapshot of it
#      (snapshot.sql: schema phase0_snapshot, which fs-sync never touches);
#   2. migrations/*.sql, each in one transaction as `supabase db push` applies
#      them, while the legacy app keeps saving a file (concurrent-write.sql in a
#      loop: every committed save must survive); then the whole pgTAP suite
#      (tests/sql/*.sql) and the Phase-0 checks
#      (tests/sql/phase0/*.sql: every pre-existing version, flag row, app
#      policy, the legacy app's reads and writes);
#   3. the rollback: writes through the RPCs and the legacy path
#      (rpc-writes.sql), every down script newest first in one transaction, the
#      checks again (the legacy app reads what the RPCs wrote; privileges,
#      policies and shape are Phase 0's); writes the legacy app makes while
#      fs-sync is rolled back (legacy-writes.sql);
#   4. the migrations again, the checks again (nothing is lost, the log
#      continues gapless and tells followers what changed meanwhile) and the
#      whole suite again, on a database whose log is no longer empty.
#
#   scripts/phase0.sh                  # ~200,000 file rows
#   scripts/phase0.sh --files 20000    # smaller, quicker
#   scripts/phase0.sh --keep           # leave the cluster running
#
# Needs what scripts/sql-dev.sh needs. Env: PGPORT_DEV (default 54329).
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
port=${PGPORT_DEV:-54329}
keep=0
files=200000
while [ $# -gt 0 ]; do
  case "$1" in
    --keep) keep=1 ;;
    --files) files=$2; shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

work=$(mktemp -d /tmp/fsync-phase0.XXXXXX)
pg_start "$work" "$port" -c max_wal_size=4GB

writer_pid=
stop() {
  if [ -n "$writer_pid" ]; then kill "$writer_pid" 2>/dev/null || true; fi
  if [ "$keep" = 1 ]; then
    echo "cluster kept: psql -h $work -p $port -U postgres fsync"
    echo "stop with: ${as_pg[*]} pg_ctl -D $work/data stop"
  else
    "${as_pg[@]}" pg_ctl -D "$work/data" -m fast stop >/dev/null || true
    rm -rf "$work"
  fi
}
trap stop EXIT

psql_() { PGOPTIONS='-c client_min_messages=warning' psql -h "$work" -p "$port" -U postgres -X -q -v ON_ERROR_STOP=1 -d fsync "$@"; }
step() { printf '\n==> %s\n' "$*"; }
# Each file in its own transaction (as `supabase db push` applies migrations).
apply_each() {
  local f
  for f in "$@"; do
    psql_ -1 -f "$f" >/dev/null 2>"$work/apply.err" || { cat "$work/apply.err"; echo "failed: $f" >&2; exit 1; }
    cat "$work/apply.err" >&2  # the upgrade's WARNING about paths that break the rules
  done
}
stage() { psql_ -c "update phase0_snapshot.state set stage = '$1'"; echo "$1" >"$work/stage"; }
# A failing suite is reported and the stages go on; the exit status says whether all passed.
failed=()
prove() { pg_prove -h "$work" -p "$port" -U postgres -d fsync "$@" || failed+=("$(cat "$work/stage")"); }

step "local base, Phase-0 fixture ($files file rows), snapshot"
pg_base "$work" "$port" fsync
# The app's schema, the fixture and the migrations as postgres, which is no superuser (as hosted).
psql_ -f "$root/tests/fixtures/phase0/schema.sql"
t0=$(date +%s.%N)
psql_ -v files="$files" -f "$root/tests/fixtures/phase0/seed.sql"
psql_ -f "$root/tests/fixtures/phase0/snapshot.sql"
psql_ -At -c "select format('%s projects, %s file rows, %s users, %s flags; seeded in %s s',
                (select count(*) from public.projects), (select count(*) from public.project_files),
                (select count(*) from auth.users), (select count(*) from public.feature_flags),
                round(extract(epoch from clock_timestamp()) - $t0, 1))"

mapfile -t ups < <(ls "$root"/migrations/*.sql | sort)
mapfile -t downs < <(ls "$root"/migrations/down/*.sql | sort -r)

step "migrations (each in one transaction), the legacy app saving a file all along"
# The app keeps saving while the migrations run: every committed save must survive.
writer() {
  local n=0 t0 r
  while [ ! -e "$work/writer.stop" ]; do
    n=$((n + 1)); t0=$(date +%s.%N)
    if psql_ -v n="$n" -f "$root/tests/fixtures/phase0/concurrent-write.sql" >/dev/null 2>>"$work/writer.err"; then r=saved; else r=refused; fi
    echo "$n $r $(echo "$(date +%s.%N) - $t0" | bc)" >>"$work/writer.log"
  done
}
writer & writer_pid=$!
sleep 1
t0=$(date +%s.%N)
apply_each "${ups[@]}"
echo "up: $(echo "$(date +%s.%N) - $t0" | bc) s"
sleep 1; touch "$work/writer.stop"; wait "$writer_pid"; writer_pid=
awk '{ n[$2]++; if ($3 > m) m = $3 } END { printf "legacy saves meanwhile: %d saved, %d refused, the slowest took %.2f s\n", n["saved"], n["refused"], m }' "$work/writer.log"
sort -u "$work/writer.err" | grep -o 'ERROR: .*' | sort | uniq -c || true
stage up
step "pgTAP suite and Phase-0 checks on the adopted database"
prove "$root"/tests/sql/*.sql "$root"/tests/sql/phase0/*.sql

step "rollback: writes through the RPCs and the legacy path, then every down script in one transaction"
psql_ -f "$root/tests/fixtures/phase0/rpc-writes.sql"
down_args=()
for f in "${downs[@]}"; do down_args+=(-f "$f"); done
t0=$(date +%s.%N)
psql_ -1 "${down_args[@]}" >/dev/null
echo "down: $(echo "$(date +%s.%N) - $t0" | bc) s"
stage down
prove "$root"/tests/sql/phase0/*.sql
psql_ -f "$root/tests/fixtures/phase0/legacy-writes.sql"

step "migrations again"
t0=$(date +%s.%N)
apply_each "${ups[@]}"
echo "up: $(echo "$(date +%s.%N) - $t0" | bc) s"
stage reup
prove "$root"/tests/sql/phase0/*.sql "$root"/tests/sql/*.sql

if [ ${#failed[@]} -gt 0 ]; then
  echo "phase0: pgTAP failures at stage(s): ${failed[*]}" >&2
  exit 1
fi
echo "phase0: adopted, rolled back and adopted again; every check passed"
