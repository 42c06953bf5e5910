// node scripts/build-native.mjs <dist>
//
// The React Native (Hermes) build of @velocity/fs-sync: Hermes has no WebAssembly, so the
// baseline module the web entry loads (dist/web/fs_sync_bg.wasm, built with
// `-C target-cpu=mvp`) is translated to plain JavaScript with binaryen's wasm2js, and driven by
// the same wasm-bindgen glue (dist/web/fs_sync.js) with its loader swapped for one that
// instantiates the translation synchronously. Writes dist/native/.
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { cpSync, mkdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { parse } = createRequire(join(root, 'package.json'))('acorn');
const bin = join(root, 'node_modules/.bin');
const dist = process.argv[2] ?? join(root, 'wasm-pkg/dist');
const web = join(dist, 'web');
const out = join(dist, 'native');
mkdirSync(out, { recursive: true });

function fail(message) {
  console.error(`build-native: ${message}`);
  process.exit(1);
}

// --- the module, translated --------------------------------------------------------------------
// wasm2js translates bulk memory (memory.copy/fill as copyWithin/fill) and sign extension itself,
// which std's precompiled code brings even to an MVP build.
const features = ['--enable-bulk-memory', '--enable-sign-ext', '--enable-mutable-globals', '--enable-nontrapping-float-to-int'];
const tmp = join(out, 'fs_sync_wasm.tmp.js');
execFileSync(join(bin, 'wasm2js'), [join(web, 'fs_sync_bg.wasm'), ...features, '-O3', '-o', tmp], { stdio: 'inherit' });
let js = readFileSync(tmp, 'utf8');
rmSync(tmp);

// wasm2js writes an ES module that imports the glue by the import module's name and
// instantiates at once. Keep the instantiation function and export it instead: the glue passes
// its imports object, as it would to WebAssembly.instantiate.
const imports = js.match(/^import \* as \S+ from '[^']+';\n/gm) ?? [];
if (imports.length !== 1 || !imports[0].includes("'./fs_sync_bg.js'")) {
  fail(`wasm2js output imports ${JSON.stringify(imports)}, expected the glue alone`);
}
js = js.replace(imports[0], '');
const tail = js.indexOf('\nvar retasmFunc = asmFunc(');
if (tail < 0 || !/^function asmFunc\(imports\) \{$/m.test(js)) fail('wasm2js output has no asmFunc(imports)');
js = `${js.slice(0, tail)}\nexport default asmFunc;\n`;
if (/\bimport\.meta\b|^\s*import\s/m.test(js)) fail('the translation still imports something');

// JavaScript has no rotate: wasm2js calls a helper for each one, and SHA-256 rotates about 600
// times a block. A call costs Hermes' interpreter several times the two shifts it wraps, so rotates
// by a constant of a local (or a local masked by a constant) are written out in place.
let rotates = 0;
js = js.replace(/__wasm_rot([lr])_i32\((\$\w+(?: & -?\d+)?), (\d+)\)/g, (_, dir, x, k) => {
  const n = Number(k) & 31;
  if (n === 0) return `(${x} | 0)`;
  rotates += 1;
  const v = x.includes(' ') ? `(${x})` : x;
  return dir === 'l' ? `(${v} << ${n} | ${v} >>> ${32 - n})` : `(${v} >>> ${n} | ${v} << ${32 - n})`;
});
if (rotates < 600) fail(`only ${rotates} rotates written out: has wasm2js's output changed shape?`);

// wasm2js wraps every i32.add and i32.sub in `| 0`, also inside a chain of them:
// `((a + b | 0) + c | 0)`. Only the outermost wrap is needed: the operands are 32-bit integers, so
// the sum of a chain is exact in a double (2^53), and wrapping it once gives what wrapping every
// step gives. SHA-256 adds in chains of four and five; Hermes stores numbers as doubles and runs
// each `| 0` as an instruction, so the inner ones are cut (the parentheses stay).
const isWrapped = (n) =>
  n?.type === 'BinaryExpression' && n.operator === '|' && n.right.type === 'Literal' && n.right.raw === '0' &&
  n.left.type === 'BinaryExpression' && (n.left.operator === '+' || n.left.operator === '-');
const cuts = [];
for (const stack = [parse(js, { ecmaVersion: 2020, sourceType: 'module' })]; stack.length > 0; ) {
  const node = stack.pop();
  if (isWrapped(node)) {
    for (const term of [node.left.left, node.left.right]) if (isWrapped(term)) cuts.push([term.left.end, term.end]);
  }
  for (const value of Object.values(node)) {
    for (const child of Array.isArray(value) ? value : [value]) {
      if (typeof child?.type === 'string') stack.push(child);
    }
  }
}
if (cuts.length < 300) fail(`only ${cuts.length} inner wraps cut: has wasm2js's output changed shape?`);
cuts.sort((a, b) => a[0] - b[0]);
const pieces = [];
let at = 0;
for (const [start, end] of cuts) {
  pieces.push(js.slice(at, start));
  at = end;
}
js = pieces.join('') + js.slice(at);

writeFileSync(join(out, 'fs_sync_wasm.js'), js);
const kib = (n) => Math.round(n / 1024);
console.log(`wasm-pkg: dist/native/fs_sync_wasm.js ${kib(js.length)} KiB, ${kib(gzipSync(js, { level: 9 }).length)} KiB gzipped ` +
  `(${rotates} rotates written out, ${cuts.length} inner wraps cut)`);

// --- the glue ---------------------------------------------------------------------------------
// The web glue, byte for byte, up to its loader; then a loader for the translation. The codec
// import shadows TextEncoder/TextDecoder in the glue's module scope (the engine's where it has
// them, else utf8.js's own), so nothing global is touched.
const glue = readFileSync(join(web, 'fs_sync.js'), 'utf8');
const loader = glue.indexOf('\nasync function __wbg_load(');
if (loader < 0 || !glue.includes('\nfunction __wbg_finalize_init(instance, module) {')) {
  fail("the glue's loader (__wbg_load, __wbg_finalize_init) is not where it was: has wasm-bindgen's output changed?");
}
const kept = glue.slice(0, loader);
const nativeGlue =
  "import { TextEncoder, TextDecoder } from '../web/utf8.js';\n" +
  kept +
  `
// @velocity/fs-sync (React Native): the module translated to JavaScript takes the place of the
// Wasm instance; everything above is the web glue unchanged.
export function initTranslated(instantiate) {
    return __wbg_finalize_init({ exports: instantiate(__wbg_get_imports()) }, undefined);
}
`;
if (/\bimport\.meta\b|\bWebAssembly\b/.test(nativeGlue)) fail('the native glue still refers to import.meta or WebAssembly');
// The glue and the translation fit: every import the translation reads is one the glue provides,
// and every export the glue calls is one the translation returns.
const provided = new Set([...kept.matchAll(/^ {8}(\w+): function/gm)].map((m) => m[1]));
const read = new Set([...js.matchAll(/\$_fs_sync_bg_js\.(\w+)/g)].map((m) => m[1]));
const returned = new Set([...js.slice(js.lastIndexOf('\n return {')).matchAll(/^ {2}"(\w+)":/gm)].map((m) => m[1]));
const called = new Set([...kept.matchAll(/\bwasm\.(\w+)/g)].map((m) => m[1]));
const missing = [...[...read].filter((n) => !provided.has(n)), ...[...called].filter((n) => !returned.has(n))];
if (read.size === 0 || called.size === 0 || missing.length > 0) {
  fail(`the glue and the translation do not fit: ${missing.join(', ') || 'no imports or exports found'}`);
}
writeFileSync(join(out, 'fs_sync.js'), nativeGlue);
// The glue's inline JS (the FsSyncError class), which it imports beside itself.
cpSync(join(web, 'snippets'), join(out, 'snippets'), { recursive: true });
