#!/usr/bin/env bash
# Starts a throwaway PostgreSQL 15 cluster, applies supabase/local-base/*.sql and
# then migrations/*.sql (each sorted by name, psql -v ON_ERROR_STOP=1 -X -q -f),
# runs the pgTAP suite with pg_prove, and stops the cluster.
# As on hosted Supabase, the bootstrap superuser is supabase_admin, which applies
# the local base; migrations, down scripts and the pgTAP suite run as postgres,
# which is not a superuser (docs/supabase.md, "Hosted-only behaviour").
#
#   scripts/sql-dev.sh                 # apply + pg_prove tests/sql/*.sql
#   scripts/sql-dev.sh --updown        # also: all downs in reverse, all ups again, compare schemas
#   scripts/sql-dev.sh --keep          # leave the cluster running and print how to connect
#   scripts/sql-dev.sh tests/sql/03-upsert.sql   # run selected test files
#
# Needs initdb/pg_ctl/psql (PostgreSQL 15) on PATH, pg_prove and the pgtap
# extension (Debian: postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl).
# Env: PGPORT_DEV (default 54329).
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
port=${PGPORT_DEV:-54329}
keep=0
updown=0
tests=()
for arg in "$@"; do
  case "$arg" in
    --keep) keep=1 ;;
    --updown) updown=1 ;;
    *) tests+=("$arg") ;;
  esac
done
[ ${#tests[@]} -gt 0 ] || tests=("$root"/tests/sql/*.sql)

work=$(mktemp -d /tmp/fsync-sql.XXXXXX)
pg_start "$work" "$port"

stop() {
  if [ "$keep" = 1 ]; then
    echo "cluster kept: psql -h $work -p $port -U postgres fsync   (superuser: -U supabase_admin)"
    echo "stop with: ${as_pg[*]} pg_ctl -D $work/data stop"
  else
    "${as_pg[@]}" pg_ctl -D "$work/data" -m fast stop >/dev/null || true
    rm -rf "$work"
  fi
}
trap stop EXIT

psql_() { psql -h "$work" -p "$port" -X -q -v ON_ERROR_STOP=1 "$@"; }

apply() { # user db files...
  local user=$1 db=$2; shift 2
  for f in "$@"; do psql_ -U "$user" -d "$db" -f "$f" >/dev/null 2>"$work/apply.err" || { cat "$work/apply.err"; echo "failed: $f" >&2; exit 1; }; done
}

pg_base "$work" "$port" fsync
apply postgres fsync "$root"/migrations/*.sql

if [ "$updown" = 1 ]; then
  dump() { pg_dump -h "$work" -p "$port" -U supabase_admin --schema-only --no-owner "$1" | grep -v -e '^--' -e '^\\restrict' -e '^\\unrestrict' | sed '/^$/d'; }
  pg_base "$work" "$port" fsync_base
  dump fsync >"$work/up.sql"
  mapfile -t downs < <(ls "$root"/migrations/down/*.sql | sort -r)
  apply postgres fsync "${downs[@]}"
  dump fsync >"$work/down.sql"
  dump fsync_base >"$work/base.sql"
  if ! diff -u "$work/base.sql" "$work/down.sql"; then echo "downs did not restore the base schema" >&2; exit 1; fi
  apply postgres fsync "$root"/migrations/*.sql
  dump fsync >"$work/up2.sql"
  if ! diff -u "$work/up.sql" "$work/up2.sql"; then echo "up after down differs from the first up" >&2; exit 1; fi
  echo "up/down/up: ok"
fi

# Quiet the files' `create extension if not exists pgtap` (the local base installed it).
PGOPTIONS='-c client_min_messages=warning' pg_prove -h "$work" -p "$port" -U postgres -d fsync "${tests[@]}"
