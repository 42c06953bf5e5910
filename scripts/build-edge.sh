#!/usr/bin/env bash
# Builds the Cloudflare Worker in edge/ (fs-sync-edge) with worker-build and the project-local
# tools, never downloading any: wasm-bindgen from .tools/bin (the Cargo.lock version), wasm-opt from
# npm's binaryen and esbuild from npm. Output: edge/build/index.js (+ the .wasm it imports), which
# edge/wrangler.toml's `main` points at. Run scripts/bootstrap.sh (or `npm run bootstrap`) first.
#
# EDGE_PROFILE picks the cargo profile (default wasm-release: LTO, one codegen unit; use
# EDGE_PROFILE=release for a faster compile while iterating).
set -euo pipefail
FS_SYNC_SCRIPT=build-edge
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$root"

tools=$root/.tools/bin
for t in "$tools/worker-build" "$tools/wasm-bindgen" node_modules/.bin/wasm-opt node_modules/.bin/esbuild; do
  [ -x "$t" ] || die "missing $t: run 'npm run bootstrap' (scripts/bootstrap.sh) first"
done

export WASM_BINDGEN_BIN=$tools/wasm-bindgen
export WASM_OPT_BIN=$root/node_modules/.bin/wasm-opt
export ESBUILD_BIN=$root/node_modules/.bin/esbuild

profile=${EDGE_PROFILE:-wasm-release}
case $profile in
  release) flag=(--release) ;;
  dev) flag=(--dev) ;;
  *) flag=(--profile "$profile") ;;
esac

start=$(date +%s)
log=$root/.tools/logs/build-edge.log
mkdir -p "$(dirname "$log")"
(cd edge && quietly "$log" "$tools/worker-build" "${flag[@]}")
wasm=$(ls edge/build/*.wasm 2>/dev/null | head -n 1)
[ -n "$wasm" ] && [ -f edge/build/index.js ] || die "worker-build finished without edge/build/index.js and a .wasm (log: $log)"
size=$(wc -c <"$wasm")
gz=$(gzip -9 -c "$wasm" | wc -c)
say "edge/build ready ($profile, $(( $(date +%s) - start ))s): $(basename "$wasm") $((size / 1024)) KiB, $((gz / 1024)) KiB gzipped"
