// contentHash without copies on the boundary: the input is encoded (strings) or copied (bytes)
// straight into a fixed buffer inside Wasm memory and the digest is read back as 32 bytes. A
// small input, the common case (a save hashes one source file), costs one call and no
// allocation on either side; a large one streams through the buffer in pieces, so Wasm memory
// never grows with the input.
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
const encoder = new TextEncoder();

export function makeContentHash(instance, glue) {
  const [ptr, capacity] = glue.hashScratch();
  // UTF-8 takes at most 3 bytes per UTF-16 unit, so strings up to this length fit in one piece.
  const maxChars = Math.floor(capacity / 3);
  let input;
  let digest;
  // Growing Wasm memory detaches earlier views; the buffer itself never moves.
  const refresh = () => {
    if (input?.byteLength) return;
    input = new Uint8Array(instance.memory.buffer, ptr + 32, capacity);
    digest = new Uint8Array(instance.memory.buffer, ptr, 32);
  };

  return function contentHash(value) {
    refresh();
    if (typeof value === 'string') {
      if (value.length <= maxChars) {
        glue.hashScratchInput(encoder.encodeInto(value, input).written);
      } else {
        // encodeInto stops before a code point that does not fit, so pieces split cleanly.
        for (let rest = value; rest.length > 0; ) {
          const { read, written } = encoder.encodeInto(rest, input);
          glue.hashScratchUpdate(written);
          rest = rest.slice(read);
        }
        glue.hashScratchFinish();
      }
    } else if (value instanceof Uint8Array) {
      if (value.length <= capacity) {
        input.set(value);
        glue.hashScratchInput(value.length);
      } else {
        for (let at = 0; at < value.length; at += capacity) {
          const piece = value.subarray(at, at + capacity);
          input.set(piece);
          glue.hashScratchUpdate(piece.length);
        }
        glue.hashScratchFinish();
      }
    } else {
      // Anything else: the Rust entry point throws the FsSyncError that names the input.
      return glue.contentHash(value);
    }
    let hex = '';
    for (let i = 0; i < 32; i++) hex += HEX[digest[i]];
    return hex;
  };
}
