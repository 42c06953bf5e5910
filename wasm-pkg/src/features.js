// Whether the engine runs Wasm SIMD as finally specified: it validates a function using
// i8x16.popcnt (the probe wasm-feature-detect uses). Engines without it get the baseline build.
export const SIMD = WebAssembly.validate(new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11,
]));
