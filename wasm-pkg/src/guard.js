// React Native's Hermes engine has no WebAssembly (nor TextDecoder in older releases): fail at
// import with the cause, before the Wasm glue runs. Imported first so it evaluates first.
export const NO_WASM_MESSAGE =
  '@velocity/fs-sync needs WebAssembly, which this JavaScript engine does not provide ' +
  "(React Native's Hermes has none). Use the package in Expo web or another engine with " +
  'WebAssembly, and keep the legacy save path (FSYNC_USE_RPC off) on native builds.';

if (typeof WebAssembly === 'undefined') throw new Error(NO_WASM_MESSAGE);
