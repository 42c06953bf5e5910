// `@velocity/fs-sync/store` for the package's native build: the store over that build's FsSyncClient.
import * as pkg from '../native.js';
import { bindStore } from './store.js';

export const createProjectEditorStore = bindStore(pkg);
