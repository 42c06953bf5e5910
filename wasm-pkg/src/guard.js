// The web entry needs WebAssembly: fail at import with the cause, before the Wasm glue runs, on an
// engine without it. Imported first so it evaluates first. React Native's Hermes, which has none,
// resolves the package's "react-native" entry instead (the same Rust translated to JavaScript).
export const NO_WASM_MESSAGE =
  "@velocity/fs-sync's web entry needs WebAssembly, which this JavaScript engine does not provide. " +
  "React Native (Hermes) resolves the package's \"react-native\" entry, which needs none: bundle " +
  'with Metro, or import "@velocity/fs-sync/native" by that name.';

if (typeof WebAssembly === 'undefined') throw new Error(NO_WASM_MESSAGE);
