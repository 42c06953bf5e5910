// ESM entry for browsers and bundlers: instantiates the Wasm next to this file (the SIMD build
// where the engine has SIMD, else the baseline), then re-exports. Both URLs are literal, so
// bundlers emit both files; the engine fetches one.
import './guard.js';
import { makeContentHash } from './hash.js';
import { SIMD } from './features.js';
import init, * as wasm from './fs_sync.js';

const instance = await init({
  module_or_path: SIMD
    ? new URL('./fs_sync_simd_bg.wasm', import.meta.url)
    : new URL('./fs_sync_bg.wasm', import.meta.url),
});

export const { validatePath, inferFileType, FsSyncClient } = wasm;
export const FsSyncError = wasm.errorClass();
export const { contentHash, setDigest } = makeContentHash(instance, wasm);
