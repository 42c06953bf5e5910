// node scripts/wasm-features.mjs <module.wasm> <feature>...
//
// Rewrites the module's `target_features` custom section in place, dropping the features named.
// wasm-bindgen reads that section to choose its glue: with `reference-types` it keeps JS values in
// an externref table (a second table, which wasm2js cannot translate) and with `multivalue` it
// returns pairs as multiple values. The package's Rust code is compiled with
// `-C target-cpu=mvp`, so it uses neither, but the precompiled standard library lists both, and
// the linker merges that into the section. Dropping them gives every build (the baseline, the
// SIMD one and the one translated to JavaScript) the same MVP-style glue.
import { readFileSync, writeFileSync } from 'node:fs';

const [file, ...drop] = process.argv.slice(2);
if (!file || drop.length === 0) {
  console.error('usage: node scripts/wasm-features.mjs <module.wasm> <feature>...');
  process.exit(2);
}
const bytes = readFileSync(file);

function leb(at) {
  let value = 0;
  let shift = 0;
  for (;;) {
    const b = bytes[at++];
    value += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if (b < 0x80) return [value, at];
  }
}
function encodeLeb(value) {
  const out = [];
  do {
    let b = value % 128;
    value = Math.floor(value / 128);
    if (value > 0) b |= 0x80;
    out.push(b);
  } while (value > 0);
  return Buffer.from(out);
}

const parts = [bytes.subarray(0, 8)];
let found = false;
let at = 8;
while (at < bytes.length) {
  const start = at;
  const id = bytes[at];
  const [size, body] = leb(at + 1);
  const end = body + size;
  let section = bytes.subarray(start, end);
  if (id === 0) {
    const [nameLen, nameAt] = leb(body);
    const name = bytes.subarray(nameAt, nameAt + nameLen).toString('utf8');
    if (name === 'target_features') {
      found = true;
      let [count, p] = leb(nameAt + nameLen);
      const kept = [];
      const gone = [];
      for (let i = 0; i < count; i++) {
        const prefix = bytes[p];
        const [len, featureAt] = leb(p + 1);
        const feature = bytes.subarray(featureAt, featureAt + len).toString('utf8');
        const entry = bytes.subarray(p, featureAt + len);
        if (drop.includes(feature)) gone.push(String.fromCharCode(prefix) + feature);
        else kept.push(entry);
        p = featureAt + len;
      }
      const payload = Buffer.concat([encodeLeb(nameLen), Buffer.from(name), encodeLeb(kept.length), ...kept]);
      section = Buffer.concat([Buffer.from([0]), encodeLeb(payload.length), payload]);
      if (gone.length) console.error(`wasm-features: ${file.split('/').pop()}: dropped ${gone.join(' ')}`);
    }
  }
  parts.push(section);
  at = end;
}
if (!found) {
  console.error(`wasm-features: ${file} has no target_features section`);
  process.exit(1);
}
writeFileSync(file, Buffer.concat(parts));
