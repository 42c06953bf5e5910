#!/usr/bin/env bash
# `npm run demo`: the end-to-end demo. Until issue 7 lands it says what is not there yet.
set -euo pipefail

cat <<'MSG'
demo: the end-to-end demo is not built yet.
  Issue 7 builds it: start the local Supabase-compatible stack and the edge worker, create a project
  of ~200 files, hydrate a container folder (./demo/container) from a snapshot with fs-sync-hydrate,
  then edit through the wasm package and show each change arriving with its latency.
What you can run today:
  npm test            format, clippy, the Rust tests (native and wasm32), the SQL tests, node tests
  npm run bench:zip   snapshot zip build/extract: fs-sync-core next to JSZip, fflate and unzipper
MSG
