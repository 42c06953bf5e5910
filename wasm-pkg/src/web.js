// ESM entry for browsers and bundlers: instantiates the Wasm next to this file, then re-exports.
import './guard.js';
import { makeContentHash } from './hash.js';
import init, * as wasm from './fs_sync.js';

const instance = await init({ module_or_path: new URL('./fs_sync_bg.wasm', import.meta.url) });

export const { validatePath, inferFileType, FsSyncClient } = wasm;
export const FsSyncError = wasm.errorClass();
export const contentHash = makeContentHash(instance, wasm);
