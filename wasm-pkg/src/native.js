// The "react-native" entry. Native React Native builds cannot load this package: Hermes has no
// WebAssembly, and Metro bundles neither .wasm files nor top-level await. Importing it there fails
// at once with the cause; Expo web resolves the "browser" entry instead.
throw new Error(
  '@velocity/fs-sync needs WebAssembly, which React Native native builds cannot load ' +
    "(Hermes has none; Metro bundles neither .wasm nor top-level await). Use it in Expo web, " +
    'and keep the legacy save path (FSYNC_USE_RPC off) on native builds.',
);
