# Shared helpers for scripts/*.sh. Source it; it sets nothing but functions and $root.
# shellcheck shell=bash

# shellcheck disable=SC2034 # used by the scripts that source this file
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# say MSG: one line on stdout, prefixed with the calling script's name.
say() { printf '%s: %s\n' "${FS_SYNC_SCRIPT:-$(basename "$0" .sh)}" "$*"; }

# die MSG: say it on stderr and exit 1.
die() { say "$*" >&2; exit 1; }

# have CMD: is CMD on PATH?
have() { command -v "$1" >/dev/null 2>&1; }

# join_by SEP ITEM...: the items joined by SEP.
join_by() {
  local sep=$1 out=$2 item
  shift 2 || return 0
  for item in "$@"; do out+="$sep$item"; done
  printf '%s' "$out"
}

# quietly LOG CMD...: run CMD with its output in LOG; on failure show the log's tail and fail.
quietly() {
  local log=$1; shift
  mkdir -p "$(dirname "$log")"
  if ! "$@" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    die "failed: $* (full log: $log)"
  fi
}

# pg_start WORK PORT [POSTGRES-OPTION...]: a throwaway PostgreSQL 15 cluster in WORK, listening
# on the socket folder WORK only, set up as hosted Supabase is: the superuser is supabase_admin
# (postgres, the role migrations run as, is created by the local base). Sets as_pg, the prefix
# that runs pg_ctl as the postgres OS user when this runs as root.
pg_start() {
  local work=$1 port=$2; shift 2
  as_pg=()
  if [ "$(id -u)" = 0 ]; then
    chown postgres "$work"
    as_pg=(runuser -u postgres --)
  fi
  "${as_pg[@]}" initdb -D "$work/data" -U supabase_admin -E UTF8 --locale=C.UTF-8 -A trust >"$work/initdb.log"
  "${as_pg[@]}" pg_ctl -D "$work/data" -l "$work/postgres.log" -w \
    -o "-p $port -k $work -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c timezone=UTC $*" start >/dev/null
}

# pg_base WORK PORT DB: creates DB and applies supabase/local-base to it as supabase_admin, as
# Supabase's own images do; stops at the first error.
pg_base() {
  local work=$1 port=$2 db=$3 f
  psql -h "$work" -p "$port" -U supabase_admin -X -q -d postgres -c "create database $db"
  for f in "$root"/supabase/local-base/*.sql; do
    psql -h "$work" -p "$port" -U supabase_admin -X -q -v ON_ERROR_STOP=1 -d "$db" -f "$f" >/dev/null
  done
}
