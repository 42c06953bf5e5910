// The "react-native" entry: on Hermes the guard throws a clear error at import; where
// WebAssembly exists (Expo web), this is the browser build.
import './web/guard.js';
export * from './web/index.js';
