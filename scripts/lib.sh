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
