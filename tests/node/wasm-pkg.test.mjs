// The package as installed from its tarball: exports, hashing, path rules, typed errors, the
// Hermes guard, and the TypeScript declarations.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { importPackage, installedConsumer, root } from './helpers/pkg.mjs';

const fsSync = await importPackage();

test('contentHash equals SHA-256 of the UTF-8 bytes for strings and bytes', () => {
  const cases = ['', 'abc', 'héllo wörld ✓', '🚀 日本語\n'.repeat(1000), 'x'.repeat(5 * 1024 * 1024)];
  for (const s of cases) {
    const want = createHash('sha256').update(s, 'utf8').digest('hex');
    assert.equal(fsSync.contentHash(s), want);
    assert.equal(fsSync.contentHash(new TextEncoder().encode(s)), want);
  }
  // The reference value DESIGN.md's cases pin in core's tests.
  assert.equal(fsSync.contentHash('héllo wörld ✓'), 'c2a59c71097b678dc5af2eb1f98ddc575b63948b0fa6740071a945673aaada4d');
});

test('contentHash agrees at the edges of its one-piece and streamed paths', () => {
  const sha = (x) => createHash('sha256').update(x).digest('hex');
  // 16 Ki UTF-16 units is the largest string hashed in one piece, 48 KiB the streaming piece:
  // multi-byte characters and surrogate pairs land on both sides of each boundary.
  const strings = [];
  for (const n of [16383, 16384, 16385, 49151, 49152, 49153, 100000]) {
    strings.push('a'.repeat(n), '€'.repeat(n), 'a' + '🚀'.repeat(n >> 1), 'ab'.repeat(n >> 1) + '日');
  }
  strings.push('lone \ud800 surrogate', 'x'.repeat(20000) + '\udfff');
  for (const s of strings) assert.equal(fsSync.contentHash(s), sha(Buffer.from(s, 'utf8')), `${s.length} units`);
  const bytes = Buffer.from('0123456789abcdef'.repeat(10000));
  for (const n of [0, 1, 49151, 49152, 49153, 98304, 98305, bytes.length]) {
    assert.equal(fsSync.contentHash(bytes.subarray(0, n)), sha(bytes.subarray(0, n)), `${n} bytes`);
    // A view into a larger buffer, at an offset.
    assert.equal(fsSync.contentHash(new Uint8Array(bytes.buffer, bytes.byteOffset + 7, n >> 1)), sha(bytes.subarray(7, 7 + (n >> 1))));
  }
});

test('contentHash stays right after Wasm memory grows', () => {
  const before = fsSync.contentHash('same input');
  // Passing a 32 MB string to Wasm grows its memory, which detaches every view of the old one.
  assert.throws(() => fsSync.validatePath('p'.repeat(32 << 20)), (e) => e.details.rule === 'too_long');
  assert.equal(fsSync.contentHash('same input'), before);
  assert.equal(before, createHash('sha256').update('same input').digest('hex'));
});

test('validatePath throws FsSyncError (an Error) naming the rule', () => {
  fsSync.validatePath('src/App.tsx');
  for (const [path, rule] of [['../x', 'dot_segment'], ['/etc/passwd', 'absolute'], ['a\\b', 'backslash'], ['cafe\u0301', 'not_nfc'], ['.fs-sync/x', 'reserved']]) {
    assert.throws(() => fsSync.validatePath(path), (e) => {
      assert.ok(e instanceof Error, 'an Error');
      assert.ok(e instanceof fsSync.FsSyncError, 'an FsSyncError');
      assert.equal(e.name, 'FsSyncError');
      assert.equal(e.kind, 'invalid');
      assert.equal(e.details.rule, rule);
      assert.match(e.message, new RegExp(rule));
      return true;
    });
  }
});

test('inferFileType mirrors core', () => {
  assert.equal(fsSync.inferFileType('src/App.tsx'), 'typescript');
  assert.equal(fsSync.inferFileType('assets/logo.PNG'), 'binary');
  assert.equal(fsSync.inferFileType('.env'), 'text');
  assert.equal(fsSync.inferFileType('.eslintrc.json'), 'json');
});

test('contentHash refuses other types with a typed error', () => {
  assert.throws(() => fsSync.contentHash(42), (e) => e instanceof fsSync.FsSyncError && e.kind === 'invalid');
});

test('the client rejects bad options with a typed error', () => {
  assert.throws(() => new fsSync.FsSyncClient({ anonKey: 'k', projectId: 'p' }), (e) => e.kind === 'invalid' && /supabaseUrl/.test(e.message));
  assert.throws(() => new fsSync.FsSyncClient({ supabaseUrl: 'http://x', anonKey: 'k', projectId: 'p', fetch: 'nope' }), /fetch must be a function/);
});

test('without WebAssembly (as on Hermes) the import fails with the cause', () => {
  const dir = installedConsumer();
  const run = (entry, flags) => {
    writeFileSync(join(dir, 'no-wasm.mjs'), `import ${JSON.stringify(entry)};\n`);
    return spawnSync(process.execPath, [...flags, 'no-wasm.mjs'], { cwd: dir, encoding: 'utf8' });
  };
  // The browser build on an engine without WebAssembly, before any Wasm glue runs.
  let r = run('./node_modules/@velocity/fs-sync/dist/web/index.js', ['--no-expose-wasm']);
  assert.notEqual(r.status, 0, 'import must fail');
  assert.match(r.stderr, /needs WebAssembly/);
  assert.match(r.stderr, /Hermes/);
  // The react-native entry refuses whatever the engine, without loading the Wasm.
  for (const flags of [['--no-expose-wasm'], []]) {
    r = run('./node_modules/@velocity/fs-sync/dist/native.js', flags);
    assert.notEqual(r.status, 0, 'import must fail');
    assert.match(r.stderr, /needs WebAssembly/);
    assert.match(r.stderr, /Expo web/);
  }
});

test('Node loads the SIMD build, and the baseline where the engine has no Wasm SIMD', () => {
  const dir = installedConsumer();
  // Records which .wasm the entry reads; NO_SIMD makes the engine report SIMD missing, as an
  // older one would.
  writeFileSync(join(dir, 'record.mjs'), `
    import fsp from 'node:fs/promises';
    import { syncBuiltinESMExports } from 'node:module';
    const readFile = fsp.readFile;
    globalThis.wasmRead = [];
    fsp.readFile = (p, ...rest) => {
      if (String(p).endsWith('.wasm')) globalThis.wasmRead.push(String(p).split('/').pop());
      return readFile(p, ...rest);
    };
    syncBuiltinESMExports();
    if (process.env.NO_SIMD) WebAssembly.validate = () => false;
  `);
  writeFileSync(join(dir, 'which.mjs'), `
    import { contentHash, validatePath } from '@velocity/fs-sync';
    let rule = null;
    try { validatePath('a/../b'); } catch (e) { rule = e.details.rule; }
    console.log(JSON.stringify({ read: globalThis.wasmRead, hash: contentHash('héllo wörld ✓'), rule }));
  `);
  for (const [env, wasm] of [[{}, 'fs_sync_simd_bg.wasm'], [{ NO_SIMD: '1' }, 'fs_sync_bg.wasm']]) {
    const r = spawnSync(process.execPath, ['--import', './record.mjs', 'which.mjs'], { cwd: dir, encoding: 'utf8', env: { ...process.env, ...env } });
    assert.equal(r.status, 0, r.stderr);
    const got = JSON.parse(r.stdout);
    assert.deepEqual(got.read, [wasm]);
    assert.equal(got.hash, 'c2a59c71097b678dc5af2eb1f98ddc575b63948b0fa6740071a945673aaada4d');
    assert.equal(got.rule, 'dot_segment');
  }
});

test('the TypeScript declarations type-check a consumer', () => {
  const dir = installedConsumer();
  writeFileSync(join(dir, 'consumer.ts'), readFileSync(join(root, 'tests/node/fixtures/consumer.ts'), 'utf8'));
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      strict: true, noEmit: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', skipLibCheck: false,
      // A frontend's libs: wasm-bindgen's declarations use DOM types and Symbol.dispose.
      lib: ['es2022', 'esnext.disposable', 'dom'],
    },
    files: ['consumer.ts'],
  }));
  const tsc = join(root, 'node_modules/typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', dir], { stdio: 'inherit' });
  // And a misuse must fail: the types are not `any`.
  writeFileSync(join(dir, 'consumer.ts'), "import { inferFileType } from '@velocity/fs-sync';\nconst n: number = inferFileType('a.ts');\n");
  const r = spawnSync(process.execPath, [tsc, '-p', dir], { encoding: 'utf8' });
  assert.notEqual(r.status, 0);
  assert.match(r.stdout, /not assignable to type 'number'/);
});
