// The "react-native" entry: React Native's engine, Hermes, has no WebAssembly, so this entry runs
// the same Rust module translated to plain JavaScript (binaryen's wasm2js, see
// scripts/build-native.mjs) under the same wasm-bindgen glue. Synchronous, no .wasm asset, no
// top-level await, no import.meta: Metro bundles it like any other module, and it also runs in
// any JavaScript engine with typed arrays.
import { makeContentHash } from './web/hash.js';
import instantiate from './native/fs_sync_wasm.js';
import * as wasm from './native/fs_sync.js';

const instance = wasm.initTranslated(instantiate);

export const { validatePath, inferFileType, FsSyncClient } = wasm;
export const FsSyncError = wasm.errorClass();
export const { contentHash, setDigest } = makeContentHash(instance, wasm);
