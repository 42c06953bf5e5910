#!/usr/bin/env bash
# `npm run demo`: the end-to-end demo (scripts/demo.mjs). Builds what is stale, then runs it:
# fs-sync-dev and the edge worker start, a sample app is hydrated into ./demo/container by
# fs-sync-hydrate, and edits made through @velocity/fs-sync arrive there with their latency.
# Everything it starts is stopped when it ends, or on Ctrl-C.
set -euo pipefail
FS_SYNC_SCRIPT=demo
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$root"

bash scripts/build-e2e.sh
exec node scripts/demo.mjs "$@"
