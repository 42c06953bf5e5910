#!/usr/bin/env bash
# Builds what the end-to-end runs (`npm run demo`, `npm run bench:e2e`) need, and only what is
# stale: fs-sync-dev and fs-sync-hydrate (cargo, incremental), the wasm package (wasm-pkg/dist) and
# the edge worker (edge/build). Run scripts/bootstrap.sh first.
#
#   bash scripts/build-e2e.sh [--release]
#
# --release builds the two binaries with the release profile (target/release); default debug,
# which `cargo test --workspace` shares. The wasm package and the edge always use their own
# release profiles (scripts/build-wasm-pkg.sh, scripts/build-edge.sh).
set -euo pipefail
FS_SYNC_SCRIPT=build-e2e
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$root"

profile=debug
case ${1:-} in
  --release) profile=release ;;
  "") ;;
  *) die "usage: bash scripts/build-e2e.sh [--release]" ;;
esac
logs=$root/.tools/logs
mkdir -p "$logs"

# stale OUTPUT INPUT...: true when OUTPUT is missing or any file under the inputs is newer.
stale() {
  local out=$1; shift
  [ -e "$out" ] || return 0
  [ -n "$(find "$@" -newer "$out" -type f -print -quit 2>/dev/null)" ]
}

t0=$SECONDS
flags=(-p fs-sync-dev -p fs-sync-hydrate)
[ "$profile" = release ] && flags+=(--release)
bins=(target/$profile/fs-sync-dev target/$profile/fs-sync-hydrate)
if [ ! -x "${bins[0]}" ] || [ ! -x "${bins[1]}" ]; then
  say "compiling fs-sync-dev and fs-sync-hydrate ($profile; the first build takes a few minutes)"
else
  say "cargo build fs-sync-dev and fs-sync-hydrate ($profile; quick when nothing changed)"
fi
quietly "$logs/build-e2e-cargo.log" cargo build "${flags[@]}"

core_inputs=(crates/core/src crates/core/Cargo.toml Cargo.lock)
if stale wasm-pkg/dist/web/fs_sync_bg.wasm crates/client/src crates/client/Cargo.toml wasm-pkg/src "${core_inputs[@]}"; then
  say "building the wasm package (@velocity/fs-sync → wasm-pkg/dist)"
  quietly "$logs/build-e2e-wasm-pkg.log" bash scripts/build-wasm-pkg.sh
fi
if stale edge/build/index.js edge/src edge/Cargo.toml "${core_inputs[@]}"; then
  say "building the edge worker (edge/build; about a minute the first time)"
  bash scripts/build-edge.sh
fi
say "ready: target/$profile/{fs-sync-dev,fs-sync-hydrate}, wasm-pkg/dist, edge/build ($((SECONDS - t0)) s)"
