// ESM entry for Node: the same Wasm and glue as the browser build, instantiated from the file
// (Node's fetch does not read file: URLs).
import { readFile } from 'node:fs/promises';
import { makeContentHash } from './web/hash.js';
import init, * as wasm from './web/fs_sync.js';

const instance = await init({ module_or_path: await readFile(new URL('./web/fs_sync_bg.wasm', import.meta.url)) });

export const { validatePath, inferFileType, FsSyncClient } = wasm;
export const FsSyncError = wasm.errorClass();
export const contentHash = makeContentHash(instance, wasm);
