// client.test.mjs's tests, against fs-sync-dev, through the React Native build: the Rust
// translated to JavaScript (no WebAssembly), under the same glue, here in Node.
globalThis.fsSyncTestCondition = 'react-native';
await import('./client.test.mjs');
