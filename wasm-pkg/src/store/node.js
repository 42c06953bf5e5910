// `@velocity/fs-sync/store` for the package's node build: the store over that build's FsSyncClient.
import * as pkg from '../node.js';
import { bindStore } from './store.js';

export const createProjectEditorStore = bindStore(pkg);
