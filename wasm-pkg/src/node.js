// ESM entry for Node: the same Wasm builds and glue as the browser entry, instantiated from the
// file (Node's fetch does not read file: URLs).
import { readFile } from 'node:fs/promises';
import { makeContentHash } from './web/hash.js';
import { SIMD } from './web/features.js';
import init, * as wasm from './web/fs_sync.js';

const file = SIMD ? './web/fs_sync_simd_bg.wasm' : './web/fs_sync_bg.wasm';
const instance = await init({ module_or_path: await readFile(new URL(file, import.meta.url)) });

export const { validatePath, inferFileType, FsSyncClient } = wasm;
export const FsSyncError = wasm.errorClass();
export const { contentHash, setDigest } = makeContentHash(instance, wasm);
