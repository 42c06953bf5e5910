#!/usr/bin/env bash
# Every test suite that exists, in order, stopping at the first failure. `npm test` runs this
# after scripts/bootstrap.sh; .ci/run runs `npm test`.
#
# The steps are the block at the bottom: adding a suite is one `step` line.
# The SQL suite (pgTAP) runs inside `cargo test` (crates/pg/tests), on a throwaway cluster, and
# again by scripts/phase0.sh on velocity's Phase-0 database (adopt, roll back, adopt again).
set -euo pipefail
FS_SYNC_SCRIPT="test"
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$root"

# step NAME CMD...: print a banner, run CMD, stop everything if it fails.
step() {
  local name=$1; shift
  printf '\n==> %s: %s\n' "$name" "$*"
  local t0=$SECONDS
  "$@" || die "step '$name' failed: $*"
  say "$name: ok ($((SECONDS - t0)) s)"
}

wasm_runner=$root/.tools/bin/wasm-bindgen-test-runner

step "format"              cargo fmt --all --check
step "clippy"              cargo clippy --workspace --all-targets -- -D warnings
step "rust tests"          cargo test --workspace
step "sql on phase 0"      bash scripts/phase0.sh
step "core builds on wasm" cargo build -p fs-sync-core --target wasm32-unknown-unknown
step "core tests on wasm"  env CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER="$wasm_runner" \
                             cargo test -p fs-sync-core --target wasm32-unknown-unknown --lib
step "wasm package"        bash scripts/build-wasm-pkg.sh
step "edge worker"         bash scripts/build-edge.sh
step "e2e binaries"        cargo build -p fs-sync-dev -p fs-sync-hydrate
step "node tests"          node --test tests/node/
