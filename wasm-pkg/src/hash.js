// contentHash without copies on the boundary: the input is encoded (strings) or copied (bytes)
// straight into a fixed buffer inside Wasm memory, and the hash comes back as 64 hex digits in
// the same buffer. A small input, the common case (a save hashes one source file), costs one call
// and no allocation on either side; a large one streams through the buffer in pieces, so Wasm
// memory never grows with the input. Shared by every entry, the React Native one included, whose
// "Wasm memory" is the translated module's ArrayBuffer.
import { TextEncoder, TextDecoder } from './utf8.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();
// Uint8Array's brand check: true for one from any realm (an iframe, a vm context), where
// `instanceof` is false, and false for an object that only claims the name.
const typedArrayName = Object.getOwnPropertyDescriptor(
  Object.getPrototypeOf(Uint8Array.prototype),
  Symbol.toStringTag,
).get;
const isUint8Array = (value) => typedArrayName.call(value) === 'Uint8Array';

/** `{ contentHash, setDigest }` over one instance of the module and its glue. */
export function makeContentHash(instance, glue) {
  const [ptr, hexLen, capacity] = glue.hashScratch();
  // UTF-8 takes at most 3 bytes per UTF-16 unit, so strings up to this length fit in one piece.
  const maxChars = Math.floor(capacity / 3);
  let input;
  let hex;
  // Growing the memory replaces its buffer (a Wasm memory detaches the old one, the translated
  // module's just moves on to a new one); the scratch buffer itself never moves.
  const refresh = () => {
    const buffer = instance.memory.buffer;
    if (input?.buffer === buffer) return;
    hex = new Uint8Array(buffer, ptr, hexLen);
    input = new Uint8Array(buffer, ptr + hexLen, capacity);
  };

  function builtin(value) {
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
    } else if (isUint8Array(value)) {
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
      throw glue.hashInputError(value);
    }
    return decoder.decode(hex);
  }

  // The app's own SHA-256 (hex), once setDigest has checked it against the built-in.
  let digest = null;

  function contentHash(value) {
    if (digest !== null && (typeof value === 'string' || isUint8Array(value))) {
      const h = digest(value);
      if (typeof h === 'string' && h.length === 64) return h;
    }
    return builtin(value);
  }

  function setDigest(fn) {
    glue.setDigest(fn); // checks it on fixed inputs (throws FsSyncError invalid), then the client uses it
    digest = fn === undefined ? null : fn;
  }

  return { contentHash, setDigest };
}
