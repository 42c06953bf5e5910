// ESM entry for Node: the same Wasm and glue as the browser build, instantiated from the file
// (Node's fetch does not read file: URLs).
import { readFile } from 'node:fs/promises';
import init, * as wasm from './web/fs_sync.js';

await init({ module_or_path: await readFile(new URL('./web/fs_sync_bg.wasm', import.meta.url)) });

export const { contentHash, validatePath, inferFileType, FsSyncClient } = wasm;
export const FsSyncError = wasm.errorClass();
