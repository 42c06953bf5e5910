// node scripts/wasm-glue.mjs <fs_sync.js>
//
// One change to wasm-bindgen's glue, made to every build's copy alike (build-wasm-pkg.sh then
// checks the copies are identical): the glue's cached views (typed arrays, DataView) of linear
// memory are renewed when the memory's buffer is another object, not only when the old one was
// detached (length 0). Real WebAssembly memory detaches its old buffer when it grows, so both
// tests agree there; the JavaScript translation (wasm2js, for engines without WebAssembly) grows
// by copying into a new ArrayBuffer, which Hermes cannot detach, so only the identity test
// notices. The DataView cache gets the identity test alone too: its `buffer.detached` test would
// trust a translated memory's old buffer in an engine that has `detached` (Node 22, browsers).
import { readFileSync, writeFileSync } from 'node:fs';

const file = process.argv[2];
let glue = readFileSync(file, 'utf8');
let changed = 0;
const renew = (cache) => {
  changed += 1;
  return `if (${cache} === null || ${cache}.buffer !== wasm.memory.buffer)`;
};
glue = glue
  .replace(/if \((cached\w+ArrayMemory0) === null \|\| \1\.byteLength === 0\)/g, (_, c) => renew(c))
  .replace(
    /if \((cachedDataViewMemory0) === null \|\| \1\.buffer\.detached === true \|\| \(\1\.buffer\.detached === undefined && \1\.buffer !== wasm\.memory\.buffer\)\)/g,
    (_, c) => renew(c),
  );
// Every view cache the glue has must now be renewed this way.
const caches = new Set(glue.match(/let (cached\w+Memory0) = null;/g));
const renewed = glue.match(/if \(cached\w+Memory0 === null \|\| cached\w+Memory0\.buffer !== wasm\.memory\.buffer\)/g) ?? [];
if (changed === 0 || renewed.length !== caches.size) {
  console.error(`wasm-glue: ${file}: ${caches.size} memory view caches, ${changed} checks rewritten; has wasm-bindgen's glue changed shape?`);
  process.exit(1);
}
writeFileSync(file, glue);
