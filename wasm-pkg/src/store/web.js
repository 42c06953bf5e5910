// `@velocity/fs-sync/store` for the package's web build: the store over that build's FsSyncClient.
import * as pkg from '../web/index.js';
import { bindStore } from './store.js';

export const createProjectEditorStore = bindStore(pkg);
