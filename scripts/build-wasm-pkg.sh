#!/usr/bin/env bash
# Builds wasm-pkg/dist from crates/client: one cargo build, wasm-bindgen's web (ESM) output,
# wasm-opt, and an entry per environment (browsers and bundlers, Node, React Native).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tools="$root/.tools/bin"
pkg="$root/wasm-pkg"
dist="$pkg/dist"

cargo build -q -p fs-sync-client --target wasm32-unknown-unknown --profile wasm-release
wasm="$root/target/wasm32-unknown-unknown/wasm-release/fs_sync_client.wasm"

rm -rf "$dist"
mkdir -p "$dist/web"
"$tools/wasm-bindgen" "$wasm" --target web --out-dir "$dist/web" --out-name fs_sync

# -O3: contentHash speed is a target; the size stays well inside the budget.
"$root/node_modules/.bin/wasm-opt" -O3 --enable-bulk-memory --enable-nontrapping-float-to-int \
  --enable-sign-ext --enable-mutable-globals "$dist/web/fs_sync_bg.wasm" -o "$dist/web/fs_sync_bg.wasm"

cp "$pkg/src/web.js" "$dist/web/index.js"
cp "$pkg/src/guard.js" "$dist/web/guard.js"
cp "$pkg/src/hash.js" "$dist/web/hash.js"
cp "$pkg/src/node.js" "$dist/node.js"
cp "$pkg/src/native.js" "$dist/native.js"
cp "$pkg/src/index.d.ts" "$dist/index.d.ts"

size=$(wc -c < "$dist/web/fs_sync_bg.wasm")
gz=$(gzip -9 -c "$dist/web/fs_sync_bg.wasm" | wc -c)
echo "wasm-pkg: fs_sync_bg.wasm $((size / 1024)) KiB, $((gz / 1024)) KiB gzipped (budget 150 KiB)"
if [ "$gz" -gt $((150 * 1024)) ]; then
  echo "wasm-pkg: over the 150 KiB gzipped budget" >&2
  exit 1
fi
