#!/usr/bin/env bash
# Builds wasm-pkg/dist from crates/client: the Wasm twice (a baseline build, and one with Wasm
# SIMD, which every current engine has and which makes contentHash 15–30% faster), wasm-bindgen's
# web (ESM) output and wasm-opt for each, the baseline translated to JavaScript for React Native
# (Hermes has no WebAssembly; scripts/build-native.mjs), and an entry per environment (browsers
# and bundlers, Node, React Native). The web and Node entries load the SIMD build where the engine
# validates SIMD, else the baseline.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tools="$root/.tools/bin"
pkg="$root/wasm-pkg"
dist="$pkg/dist"
rm -rf "$dist"

# build <out dir> <cargo target dir> <extra rustc flags> <extra wasm-opt flags>
#
# Every build is compiled for the MVP CPU (plus SIMD for that one): no reference types, so
# wasm-bindgen's glue keeps JS values in a JS array rather than a second (externref) table, which
# wasm2js cannot translate, and no multi-value returns. The standard library is precompiled with
# both features and lists them in the module's target_features section, from which wasm-bindgen
# picks its glue; scripts/wasm-features.mjs drops them there, since the code does not use them.
# All builds thus share one glue, which is what lets the translated module use it too.
build() {
  local out=$1 target=$2 rustflags=$3 optflags=$4
  env RUSTFLAGS="$rustflags" CARGO_TARGET_DIR="$target" \
    cargo build -q -p fs-sync-client --target wasm32-unknown-unknown --profile wasm-release
  mkdir -p "$out"
  cp "$target/wasm32-unknown-unknown/wasm-release/fs_sync_client.wasm" "$out/linked.wasm"
  node "$root/scripts/wasm-features.mjs" "$out/linked.wasm" reference-types multivalue
  "$tools/wasm-bindgen" "$out/linked.wasm" --target web --out-dir "$out" --out-name fs_sync
  rm "$out/linked.wasm"
  node "$root/scripts/wasm-glue.mjs" "$out/fs_sync.js"
  # -O3: contentHash speed is a target; the size stays well inside the budget.
  # shellcheck disable=SC2086 # optflags is a list of flags
  "$root/node_modules/.bin/wasm-opt" -O3 --enable-bulk-memory --enable-nontrapping-float-to-int \
    --enable-sign-ext --enable-mutable-globals $optflags "$out/fs_sync_bg.wasm" -o "$out/fs_sync_bg.wasm"
}

# The two builds have their own target dirs, since different RUSTFLAGS would otherwise rebuild
# the other's artifacts every time.
target_dir=${CARGO_TARGET_DIR:-$root/target}
build "$dist/web" "$target_dir/wasm-mvp" "${RUSTFLAGS:-} -C target-cpu=mvp" ""
build "$dist/simd" "$target_dir/wasm-simd" "${RUSTFLAGS:-} -C target-cpu=mvp -C target-feature=+simd128" --enable-simd
# One glue serves both, and the translation of the baseline for React Native (build-native.mjs):
# the same Rust API gives the same imports and exports. Checked, not assumed.
if ! cmp -s "$dist/web/fs_sync.js" "$dist/simd/fs_sync.js"; then
  echo "wasm-pkg: the SIMD build's wasm-bindgen glue differs from the baseline's" >&2
  exit 1
fi
mv "$dist/simd/fs_sync_bg.wasm" "$dist/web/fs_sync_simd_bg.wasm"
rm -rf "$dist/simd"

cp "$pkg/src/web.js" "$dist/web/index.js"
cp "$pkg/src/guard.js" "$dist/web/guard.js"
cp "$pkg/src/hash.js" "$dist/web/hash.js"
cp "$pkg/src/utf8.js" "$dist/web/utf8.js"
cp "$pkg/src/features.js" "$dist/web/features.js"
cp "$pkg/src/node.js" "$dist/node.js"
cp "$pkg/src/native.js" "$dist/native.js"
cp "$pkg/src/index.d.ts" "$dist/index.d.ts"
# The project editor store (`@velocity/fs-sync/store`): plain JavaScript, one entry per build.
cp -r "$pkg/src/store" "$dist/store"

# React Native: the baseline module translated to JavaScript, under the same glue (dist/native/).
node "$root/scripts/build-native.mjs" "$dist"

for wasm in "$dist/web/fs_sync_bg.wasm" "$dist/web/fs_sync_simd_bg.wasm"; do
  size=$(wc -c < "$wasm")
  gz=$(gzip -9 -c "$wasm" | wc -c)
  echo "wasm-pkg: ${wasm#"$pkg/"} $((size / 1024)) KiB, $((gz / 1024)) KiB gzipped (budget 150 KiB)"
  if [ "$gz" -gt $((150 * 1024)) ]; then
    echo "wasm-pkg: over the 150 KiB gzipped budget" >&2
    exit 1
  fi
done
