#!/usr/bin/env bash
# Builds wasm-pkg/dist from crates/client: the Wasm twice (a baseline build, and one with Wasm
# SIMD, which every current engine has and which makes contentHash 15–30% faster), wasm-bindgen's
# web (ESM) output and wasm-opt for each, and an entry per environment (browsers and bundlers, Node,
# React Native). The entries load the SIMD build where the engine validates SIMD, else the baseline.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tools="$root/.tools/bin"
pkg="$root/wasm-pkg"
dist="$pkg/dist"
rm -rf "$dist"

# build <out dir> <cargo target dir> <extra rustc flags> <extra wasm-opt flags>
build() {
  local out=$1 target=$2 rustflags=$3 optflags=$4
  # RUSTFLAGS only when there are flags: an empty one would still count as a change for cargo.
  env ${rustflags:+"RUSTFLAGS=$rustflags"} CARGO_TARGET_DIR="$target" \
    cargo build -q -p fs-sync-client --target wasm32-unknown-unknown --profile wasm-release
  mkdir -p "$out"
  "$tools/wasm-bindgen" "$target/wasm32-unknown-unknown/wasm-release/fs_sync_client.wasm" \
    --target web --out-dir "$out" --out-name fs_sync
  # -O3: contentHash speed is a target; the size stays well inside the budget.
  # shellcheck disable=SC2086 # optflags is a list of flags
  "$root/node_modules/.bin/wasm-opt" -O3 --enable-bulk-memory --enable-nontrapping-float-to-int \
    --enable-sign-ext --enable-mutable-globals $optflags "$out/fs_sync_bg.wasm" -o "$out/fs_sync_bg.wasm"
}

# The baseline shares the workspace's target dir; the SIMD build has its own, since different
# RUSTFLAGS would otherwise rebuild the other's artifacts every time.
build "$dist/web" "${CARGO_TARGET_DIR:-$root/target}" "${RUSTFLAGS:-}" ""
build "$dist/simd" "${CARGO_TARGET_DIR:-$root/target}/wasm-simd" "${RUSTFLAGS:-} -C target-feature=+simd128" --enable-simd
# One glue serves both: the same Rust API gives the same imports and exports. Checked, not assumed.
if ! cmp -s "$dist/web/fs_sync.js" "$dist/simd/fs_sync.js"; then
  echo "wasm-pkg: the SIMD build's wasm-bindgen glue differs from the baseline's" >&2
  exit 1
fi
mv "$dist/simd/fs_sync_bg.wasm" "$dist/web/fs_sync_simd_bg.wasm"
rm -rf "$dist/simd"

cp "$pkg/src/web.js" "$dist/web/index.js"
cp "$pkg/src/guard.js" "$dist/web/guard.js"
cp "$pkg/src/hash.js" "$dist/web/hash.js"
cp "$pkg/src/features.js" "$dist/web/features.js"
cp "$pkg/src/node.js" "$dist/node.js"
cp "$pkg/src/native.js" "$dist/native.js"
cp "$pkg/src/index.d.ts" "$dist/index.d.ts"

for wasm in "$dist/web/fs_sync_bg.wasm" "$dist/web/fs_sync_simd_bg.wasm"; do
  size=$(wc -c < "$wasm")
  gz=$(gzip -9 -c "$wasm" | wc -c)
  echo "wasm-pkg: ${wasm#"$pkg/"} $((size / 1024)) KiB, $((gz / 1024)) KiB gzipped (budget 150 KiB)"
  if [ "$gz" -gt $((150 * 1024)) ]; then
    echo "wasm-pkg: over the 150 KiB gzipped budget" >&2
    exit 1
  fi
done
