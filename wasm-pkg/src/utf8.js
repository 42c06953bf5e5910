// The engine's TextEncoder and TextDecoder where it has them; else a small UTF-8 codec with the
// same behaviour for what the package uses (Hermes 0.12, a React Native engine, has
// neither). Lone surrogates encode as U+FFFD; malformed input decodes to U+FFFD, one per maximal
// invalid subsequence, as the WHATWG decoder does.

class Utf8Encoder {
  get encoding() {
    return 'utf-8';
  }

  encode(input = '') {
    const s = String(input);
    const out = new Uint8Array(s.length * 3);
    return out.slice(0, this.encodeInto(s, out).written);
  }

  /** Writes as much of `s` as fits into `view`, never part of a character. */
  encodeInto(s, view) {
    const n = s.length;
    const end = view.length;
    let i = 0;
    let at = 0;
    while (i < n) {
      // A run of ASCII, the common case, with one bound for both sides.
      const stop = Math.min(n, i + end - at);
      let c = 0;
      while (i < stop && (c = s.charCodeAt(i)) < 0x80) {
        view[at++] = c;
        i++;
      }
      if (i >= n || at >= end) break;
      if (c < 0x80) continue;
      let units = 1;
      if (c >= 0xd800 && c <= 0xdfff) {
        const next = i + 1 < n ? s.charCodeAt(i + 1) : 0;
        if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
          units = 2;
        } else {
          c = 0xfffd;
        }
      }
      if (c < 0x800) {
        if (at + 2 > end) break;
        view[at++] = 0xc0 | (c >> 6);
      } else if (c < 0x10000) {
        if (at + 3 > end) break;
        view[at++] = 0xe0 | (c >> 12);
        view[at++] = 0x80 | ((c >> 6) & 0x3f);
      } else {
        if (at + 4 > end) break;
        view[at++] = 0xf0 | (c >> 18);
        view[at++] = 0x80 | ((c >> 12) & 0x3f);
        view[at++] = 0x80 | ((c >> 6) & 0x3f);
      }
      view[at++] = 0x80 | (c & 0x3f);
      i += units;
    }
    return { read: i, written: at };
  }
}

// Code units are collected in a plain array and turned into a string in slices, since
// String.fromCharCode takes each unit as an argument.
const SLICE = 8192;

class Utf8Decoder {
  constructor(label = 'utf-8', options = {}) {
    if (!/^\s*(utf-?8|unicode-1-1-utf-8)\s*$/i.test(String(label))) {
      throw new RangeError(`only UTF-8 is supported, not ${label}`);
    }
    this.ignoreBOM = Boolean(options.ignoreBOM);
  }

  get encoding() {
    return 'utf-8';
  }

  decode(input) {
    if (input === undefined) return '';
    const bytes = input instanceof Uint8Array
      ? input
      : ArrayBuffer.isView(input)
        ? new Uint8Array(input.buffer, input.byteOffset, input.byteLength)
        : new Uint8Array(input);
    const n = bytes.length;
    let i = 0;
    if (!this.ignoreBOM && n >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) i = 3;
    let out = '';
    let units = [];
    while (i < n) {
      // A run of ASCII, the common case, straight from the bytes.
      let j = i;
      const stop = Math.min(n, i + SLICE);
      while (j < stop && bytes[j] < 0x80) j++;
      if (j > i) {
        if (units.length) {
          out += String.fromCharCode.apply(null, units);
          units = [];
        }
        out += String.fromCharCode.apply(null, bytes.subarray(i, j));
        i = j;
        continue;
      }
      const b = bytes[i];
      if (b < 0x80) {
        units.push(b);
        i++;
      } else {
        // The expected length, and the range the second byte must fall in (no overlongs, no
        // surrogates, nothing past U+10FFFF).
        let need = 0;
        let lo = 0x80;
        let hi = 0xbf;
        let c = 0;
        if (b >= 0xc2 && b <= 0xdf) { need = 1; c = b & 0x1f; }
        else if (b >= 0xe0 && b <= 0xef) {
          need = 2; c = b & 0x0f;
          if (b === 0xe0) lo = 0xa0;
          else if (b === 0xed) hi = 0x9f;
        } else if (b >= 0xf0 && b <= 0xf4) {
          need = 3; c = b & 0x07;
          if (b === 0xf0) lo = 0x90;
          else if (b === 0xf4) hi = 0x8f;
        }
        i++;
        if (need === 0) {
          units.push(0xfffd);
        } else {
          let ok = true;
          for (let k = 0; k < need; k++) {
            const t = i < n ? bytes[i] : -1;
            if (t < lo || t > hi) {
              ok = false;
              break;
            }
            c = (c << 6) | (t & 0x3f);
            lo = 0x80;
            hi = 0xbf;
            i++;
          }
          if (!ok) units.push(0xfffd);
          else if (c < 0x10000) units.push(c);
          else units.push(0xd800 + ((c - 0x10000) >> 10), 0xdc00 + ((c - 0x10000) & 0x3ff));
        }
      }
      if (units.length >= SLICE) {
        out += String.fromCharCode.apply(null, units);
        units = [];
      }
    }
    return out + String.fromCharCode.apply(null, units);
  }
}

const g = typeof globalThis === 'object' ? globalThis : {};
const native = typeof g.TextEncoder === 'function' && typeof g.TextDecoder === 'function';

export const TextEncoder = native ? g.TextEncoder : Utf8Encoder;
export const TextDecoder = native ? g.TextDecoder : Utf8Decoder;
export { Utf8Encoder, Utf8Decoder };
