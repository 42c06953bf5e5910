// The package as installed from its tarball: exports, hashing, path rules, typed errors, the
// digest option, the entries without WebAssembly, and the TypeScript declarations.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import vm from 'node:vm';
import { importPackage, installedConsumer, root } from '../harness/index.mjs';

const fsSync = await importPackage();

test('contentHash equals SHA-256 of the UTF-8 bytes for strings and bytes', () => {
  const cases = ['', 'abc', 'héllo wörld ✓', '🚀 日本語\n'.repeat(1000), 'x'.repeat(5 * 1024 * 1024)];
  for (const s of cases) {
    const want = createHash('sha256').update(s, 'utf8').digest('hex');
    assert.equal(fsSync.contentHash(s), want);
    assert.equal(fsSync.contentHash(new TextEncoder().encode(s)), want);
  }
  // The reference value docs/contracts.md's cases pin in core's tests.
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

// Wrong-type arguments: every export refuses them with FsSyncError kind `invalid` whose message
// starts with the argument's name (`details.argument` holds it), instead of the Wasm trap
// (`memory access out of bounds`) or glue TypeError they used to cause.
const BAD = [
  ['number', 42], ['object', {}], ['null', null], ['undefined', undefined], ['array', []],
  ['Uint8Array', new Uint8Array([1])], ['symbol', Symbol('s')], ['bigint', 10n],
];

/** A fetch that answers the write RPCs as the server would, and logs every request. */
function stubFetch(log = []) {
  return async (url, init) => {
    const rpc = url.split('/').pop();
    const body = JSON.parse(init.body);
    log.push({ rpc, body });
    const hash = (s) => createHash('sha256').update(s, 'utf8').digest('hex');
    const answers = {
      upsert_project_file: () => ({
        file_path: body.p_file_path, version: body.expected_version + 1, content_hash: hash(body.p_content),
        size_bytes: Buffer.byteLength(body.p_content), file_type: body.p_file_type ?? 'text', is_deleted: false,
        seq: log.length, noop: false,
      }),
      bulk_upsert_project_files: () => ({ seq: null, applied: 0, unchanged: 0, files: [] }),
    };
    if (!answers[rpc]) return new Response('{"code":"PT404","message":"no such rpc"}', { status: 404 });
    return new Response(JSON.stringify(answers[rpc]()), { status: 200 });
  };
}

const OPTIONS = { supabaseUrl: 'http://127.0.0.1:9', anonKey: 'anon', projectId: 'p', accessToken: 't', fetch: stubFetch() };
const EVENT = { v: 1, seq: 1, type: 'file:delete', project_id: 'p', file_path: 'a.ts', version: 2 };

// Each export's parameters, in order: [name, a valid value, options]. `accepts` lists the BAD
// labels that are valid there (undefined where the argument is optional); `typed` those of the
// right type that are refused for what they hold, so the message names a field, not the type.
// The table must list every export, method and parameter: a new one fails the test until added.
const ARGS = {
  contentHash: [['input', 'x', { accepts: ['Uint8Array'] }]],
  // undefined: back to the built-in hash (which leaves the later tests on it).
  setDigest: [['digest', (x) => createHash('sha256').update(x).digest('hex'), { accepts: ['undefined'] }]],
  validatePath: [['path', 'a.ts']],
  inferFileType: [['path', 'a.ts']],
  FsSyncClient: {
    construct: [['options', OPTIONS, { typed: ['object'] }]],
    getters: ['projectId', 'lastSeq', 'nextSyncInMs'],
    methods: {
      load: [], catchUp: [], enabledFeatures: [], free: [], [String(Symbol.dispose)]: [],
      save: [['path', 'a.ts'], ['content', 'x'], ['fileType', 'text', { accepts: ['undefined'] }]],
      remove: [['path', 'a.ts']],
      rename: [['from', 'a.ts'], ['to', 'b.ts']],
      saveAll: [['files', [], { accepts: ['array'] }]],
      applyEvent: [['payload', EVENT, { typed: ['object'] }]],
      head: [['path', 'a.ts']],
      isDirty: [['path', 'a.ts'], ['content', 'x']],
      isFeatureEnabled: [['flag', 'FSYNC_USE_RPC']],
    },
    async: ['load', 'catchUp', 'enabledFeatures', 'save', 'remove', 'rename', 'saveAll', 'isFeatureEnabled'],
  },
  // The error class only carries what it is given; a constructor that threw would hide the
  // error being built.
  FsSyncError: 'exempt',
};

/** Asserts `e` is the refusal of `argument` (or of a field of it), given a value labelled `got`. */
function refused(e, argument, got) {
  assert.ok(e instanceof fsSync.FsSyncError && e instanceof Error, `not an FsSyncError: ${e?.stack ?? String(e)}`);
  assert.equal(e.kind, 'invalid', e.message);
  const named = e.message.startsWith(argument) && /^[ .[]/.test(e.message.slice(argument.length));
  assert.ok(named, `"${e.message}" does not start with ${argument}`);
  assert.ok(e.details.argument.startsWith(argument), `details.argument ${e.details.argument}`);
  if (got !== undefined) assert.ok(e.message.endsWith(`, got ${got}`), `"${e.message}" does not say it got ${got}`);
  return true;
}

/** Calls `call` with each BAD value in turn for `argument`, expecting refusals (and successes
 *  for the accepted ones); `isAsync` calls must reject, not throw. Checks no request was made. */
async function refusesEach(call, [argument, , { accepts = [], typed = [] } = {}], isAsync, log) {
  for (const [label, value] of BAD) {
    const requests = log.length;
    const outcome = () => {
      const r = call(value);
      if (isAsync) assert.ok(r instanceof Promise, `${argument} = ${label}: threw instead of rejecting`);
      return r;
    };
    if (accepts.includes(label)) {
      await outcome();
      continue;
    }
    const check = (e) => refused(e, argument, typed.includes(label) ? undefined : label);
    if (isAsync) await assert.rejects(outcome(), check, `${argument} = ${label}`);
    else assert.throws(outcome, check, `${argument} = ${label}`);
    assert.equal(log.length, requests, `${argument} = ${label} made a request`);
  }
}

/** A copy of `base` with the dotted field `path` set to `value` (present even when undefined). */
function withField(base, path, value) {
  const [key, ...rest] = path.split('.');
  return { ...base, [key]: rest.length ? withField(base[key] ?? {}, rest.join('.'), value) : value };
}

test('every export checks its arguments and refuses wrong types with FsSyncError invalid', async () => {
  assert.deepEqual(Object.keys(fsSync).sort(), Object.keys(ARGS).sort(), 'the table lists every export');
  const log = [];
  for (const [name, params] of Object.entries(ARGS)) {
    if (!Array.isArray(params)) continue; // the class, below, and the exempt error class
    const fn = fsSync[name];
    assert.equal(fn.length, params.length, `${name}'s parameters are all in the table`);
    for (const [i, param] of params.entries()) {
      const valid = params.map((p) => p[1]);
      await refusesEach((v) => fn(...valid.with(i, v)), param, false, log);
    }
  }

  const { FsSyncClient } = fsSync;
  const table = ARGS.FsSyncClient;
  const proto = FsSyncClient.prototype;
  // wasm-bindgen's `__`-prefixed internals are not API.
  const members = Reflect.ownKeys(proto).map(String).filter((k) => k !== 'constructor' && !k.startsWith('__'));
  assert.deepEqual(members.sort(), [...Object.keys(table.methods), ...table.getters].sort(), 'every method is in the table');
  assert.equal(FsSyncClient.length, table.construct.length);
  await refusesEach((v) => new FsSyncClient(v), table.construct[0], false, log);

  const client = new FsSyncClient({ ...OPTIONS, fetch: stubFetch(log) });
  for (const [name, params] of Object.entries(table.methods)) {
    const method = Reflect.ownKeys(proto).find((k) => String(k) === name);
    assert.equal(proto[method].length, params.length, `${name}'s parameters are all in the table`);
    for (const [i, param] of params.entries()) {
      const valid = params.map((p) => p[1]);
      await refusesEach((v) => client[method](...valid.with(i, v)), param, table.async.includes(name), log);
    }
  }
  for (const getter of table.getters) assert.ok(Object.getOwnPropertyDescriptor(proto, getter).get);
});

test('option fields, saveAll entries and callback results are checked too', async () => {
  const { FsSyncClient } = fsSync;
  const log = [];
  const options = { ...OPTIONS, fetch: stubFetch(log) };
  const optional = { accepts: ['undefined'] };
  const fields = [
    ['supabaseUrl', {}], ['anonKey', {}], ['projectId', {}], ['accessToken', optional],
    ['getAccessToken', optional], ['fetch', optional], ['retry', { accepts: ['undefined', 'object'] }],
    ['retry.maxAttempts', { accepts: ['undefined', 'number'], numbers: [0, -1, 1.5, NaN, Infinity, 2 ** 32] }],
    ['retry.baseDelayMs', { accepts: ['undefined', 'number'], numbers: [-1, 0.5, NaN, -Infinity, 2 ** 31] }],
    ['retry.maxDelayMs', { accepts: ['undefined', 'number'], numbers: [-0.5, NaN, Infinity, 1e300] }],
  ];
  for (const [field, opts] of fields) {
    const argument = `options.${field}`;
    await refusesEach((v) => new FsSyncClient(withField(options, field, v)), [argument, null, opts], false, log);
    for (const n of opts.numbers ?? []) {
      assert.throws(() => new FsSyncClient(withField(options, field, n)), (e) => refused(e, argument, String(n)));
    }
  }
  assert.throws(() => new FsSyncClient({ ...options, supabaseUrl: '' }), (e) => refused(e, 'options.supabaseUrl'));

  const client = new FsSyncClient(options);
  const entry = { path: 'a.ts', content: 'x', fileType: 'text', delete: false };
  await refusesEach((v) => client.saveAll([entry, v]), ['files[1]', null, { typed: ['object'] }], true, log);
  for (const field of Object.keys(entry)) {
    const opts = field === 'path' ? {} : optional;
    await refusesEach((v) => client.saveAll([{ ...entry, [field]: v }]), [`files[0].${field}`, null, opts], true, log);
  }
  // Strings outside FileType.
  const requests = log.length;
  await assert.rejects(client.save('a.ts', 'x', 'bogus'), (e) => refused(e, 'fileType') && /"bogus"/.test(e.message));
  await assert.rejects(client.saveAll([{ path: 'a.ts', fileType: 'TEXT' }]), (e) => refused(e, 'files[0].fileType'));
  assert.equal(log.length, requests, 'no refused call made a request');

  // Callbacks: what getAccessToken returns and what fetch resolves to. Neither is retried: it
  // is the caller's bug, not a passing failure.
  const retry = { maxAttempts: 3, baseDelayMs: 0, maxDelayMs: 0 };
  for (const [label, value] of BAD) {
    const noSession = value === null || value === undefined;
    const tokens = new FsSyncClient({ ...options, accessToken: undefined, getAccessToken: async () => value, retry });
    await assert.rejects(tokens.save('a.ts', 'x'), (e) => noSession
      ? e instanceof fsSync.FsSyncError && e.kind === 'unauthorized'
      : refused(e, 'options.getAccessToken', label) && /must return a string/.test(e.message));
    let calls = 0;
    const fetches = new FsSyncClient({ ...options, fetch: async () => { calls += 1; return value; }, retry });
    await assert.rejects(fetches.save('a.ts', 'x'), (e) => refused(e, 'options.fetch', label));
    assert.equal(calls, 1, `a fetch resolving to ${label} is not retried`);
  }
  const textless = new FsSyncClient({ ...options, fetch: async () => ({ status: 200 }), retry });
  await assert.rejects(textless.save('a.ts', 'x'), (e) => refused(e, 'options.fetch') && /without text\(\)/.test(e.message));
});

test('paths with a lone surrogate are refused; content with one is saved as contentHash hashes it', async () => {
  const log = [];
  const client = new fsSync.FsSyncClient({ ...OPTIONS, fetch: stubFetch(log) });
  const lone = (e) => refused(e, 'path') && /lone surrogate at index 1/.test(e.message);
  // Rust would get U+FFFD in its place: another file than the one named.
  assert.throws(() => fsSync.validatePath('a\ud800.ts'), lone);
  assert.throws(() => client.head('a\udc00.ts'), lone);
  await assert.rejects(client.save('a\ud800.ts', 'x'), lone);
  await assert.rejects(client.rename('a.ts', 'b\ud800'), (e) => refused(e, 'to'));
  await assert.rejects(client.saveAll([{ path: 'x/\udfff', content: '' }]), (e) => refused(e, 'files[0].path'));
  assert.equal(log.length, 0);
  // A well-formed pair is one character, not a lone surrogate.
  fsSync.validatePath('rocket-\ud83d\ude80.ts');

  const head = await client.save('a.ts', 'x\ud800');
  assert.equal(log.at(-1).body.p_content, 'x\ufffd');
  assert.equal(head.contentHash, fsSync.contentHash('x\ud800'));
  assert.equal(client.isDirty('a.ts', 'x\ud800'), false);
});

test('applyEvent refuses seqs and versions a JS number cannot hold exactly', () => {
  const client = new fsSync.FsSyncClient(OPTIONS);
  const event = (fields) => ({ ...EVENT, ...fields });
  for (const fields of [{ seq: 2 ** 53 }, { version: 2 ** 60 }, { seq: -1 }, { seq: 1.5 }, { seq: NaN }, { version: Infinity }, { seq: '1' }]) {
    assert.throws(() => client.applyEvent(event(fields)), (e) => refused(e, 'payload') && /not an fs-sync event/.test(e.message), JSON.stringify(fields));
  }
  assert.throws(() => client.applyEvent({ ...EVENT, seq: 10n }), (e) => refused(e, 'payload') && /not JSON data/.test(e.message));
  const bulk = { v: 1, seq: 1, type: 'bulk:apply', project_id: 'p', files: [{ file_path: 'a.ts', version: 2 ** 53, deleted: true }] };
  assert.throws(() => client.applyEvent(bulk), (e) => refused(e, 'payload') && /MAX_SAFE_INTEGER/.test(e.message));
  assert.equal(client.lastSeq, 0, 'nothing was taken in');
  assert.deepEqual(client.applyEvent({ ...EVENT, seq: 2 ** 53 - 1 }), { kind: 'gap', from: 1, to: 2 ** 53 - 2, changedPaths: [], lastSeq: 0, syncNeeded: true });
});

test('contentHash takes a Uint8Array from another realm and refuses a look-alike', () => {
  const bytes = vm.runInNewContext('new Uint8Array([1, 2, 3])');
  assert.equal(bytes instanceof Uint8Array, false, 'another realm');
  assert.equal(fsSync.contentHash(bytes), createHash('sha256').update(Buffer.from([1, 2, 3])).digest('hex'));
  const fake = { [Symbol.toStringTag]: 'Uint8Array', length: 3, 0: 1, 1: 2, 2: 3 };
  assert.throws(() => fsSync.contentHash(fake), (e) => refused(e, 'input', 'object'));
});

test('a retry wait longer than setTimeout can hold waits the longest it can, not no time', async () => {
  const delays = [];
  const setTimeout = globalThis.setTimeout;
  // Record the delay the client asks for, and run the retry at once.
  globalThis.setTimeout = (fn, ms, ...rest) => { delays.push(ms); return setTimeout(fn, 0, ...rest); };
  try {
    let calls = 0;
    const answer = stubFetch();
    const client = new fsSync.FsSyncClient({
      ...OPTIONS, retry: { maxAttempts: 2, baseDelayMs: 0, maxDelayMs: 2 ** 31 - 1 },
      fetch: async (url, init) => (++calls === 1
        ? new Response(JSON.stringify({ code: 'PT429', message: 'slow down', details: JSON.stringify({ retry_after_ms: 3e9 }) }), { status: 429 })
        : answer(url, init)),
    });
    assert.equal((await client.save('a.ts', 'x')).version, 1);
    assert.equal(calls, 2);
  } finally {
    globalThis.setTimeout = setTimeout;
  }
  assert.deepEqual(delays.filter((ms) => Math.abs(ms) >= 1e6), [2 ** 31 - 1]);
});

test('after every refusal the package still works: no poisoned Wasm instance', async () => {
  // Runs after the tests above in this file: the same module instance.
  assert.equal(fsSync.contentHash('héllo wörld ✓'), 'c2a59c71097b678dc5af2eb1f98ddc575b63948b0fa6740071a945673aaada4d');
  assert.equal(fsSync.contentHash(new Uint8Array([1, 2, 3])), createHash('sha256').update(Buffer.from([1, 2, 3])).digest('hex'));
  fsSync.validatePath('src/App.tsx');
  assert.throws(() => fsSync.validatePath('../x'), (e) => e.details.rule === 'dot_segment');
  assert.equal(fsSync.inferFileType('src/App.tsx'), 'typescript');
  const log = [];
  const client = new fsSync.FsSyncClient({ ...OPTIONS, fetch: stubFetch(log) });
  const head = await client.save('src/App.tsx', 'export {}', 'typescript');
  assert.deepEqual([head.path, head.version, head.fileType, head.contentHash], ['src/App.tsx', 1, 'typescript', fsSync.contentHash('export {}')]);
  assert.deepEqual(client.head('src/App.tsx'), { version: 1, contentHash: head.contentHash, deleted: false });
  assert.equal(client.isDirty('src/App.tsx', 'export {}'), false);
  assert.equal((await client.save('src/App.tsx', 'export {}')).noop, true);
  assert.equal(log.length, 1);
});

test('without WebAssembly (as on Hermes) the web entry fails with the cause; the react-native entry works', () => {
  const dir = installedConsumer();
  const run = (code, flags) => {
    writeFileSync(join(dir, 'no-wasm.mjs'), code);
    return spawnSync(process.execPath, [...flags, 'no-wasm.mjs'], { cwd: dir, encoding: 'utf8' });
  };
  // The browser build on an engine without WebAssembly, before any Wasm glue runs.
  let r = run('import "./node_modules/@velocity/fs-sync/dist/web/index.js";\n', ['--no-expose-wasm']);
  assert.notEqual(r.status, 0, 'import must fail');
  assert.match(r.stderr, /needs WebAssembly/);
  assert.match(r.stderr, /react-native/);
  // The react-native entry is the Rust translated to JavaScript: it needs no WebAssembly. It is
  // also exported as "@velocity/fs-sync/native", for engines without it that no bundler targets.
  r = run(`
    import { contentHash, validatePath } from '@velocity/fs-sync/native';
    let rule = null;
    try { validatePath('a/../b'); } catch (e) { rule = e.details.rule; }
    console.log(JSON.stringify({ wasm: typeof WebAssembly, hash: contentHash('héllo wörld ✓'), rule }));
  `, ['--no-expose-wasm']);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { wasm: 'undefined', hash: 'c2a59c71097b678dc5af2eb1f98ddc575b63948b0fa6740071a945673aaada4d', rule: 'dot_segment' });
});

test('setDigest: the digest is checked against the built-in hash, then used', async () => {
  const sha = (x) => createHash('sha256').update(x).digest('hex');
  let calls = 0;
  fsSync.setDigest((x) => { calls += 1; return sha(x); });
  try {
    assert.ok(calls > 5, 'checked on several inputs first');
    calls = 0;
    assert.equal(fsSync.contentHash('héllo wörld ✓'), 'c2a59c71097b678dc5af2eb1f98ddc575b63948b0fa6740071a945673aaada4d');
    assert.equal(calls, 1);
    const log = [];
    const client = new fsSync.FsSyncClient({ ...OPTIONS, fetch: stubFetch(log) });
    await client.save('a.ts', 'x');
    calls = 0;
    assert.equal((await client.save('a.ts', 'x')).noop, true);
    assert.equal(client.isDirty('a.ts', 'x'), false);
    assert.equal(calls, 2, 'no-op detection hashed with the digest');
    assert.equal(log.length, 1);
  } finally {
    fsSync.setDigest(undefined);
  }
  calls = 0;
  fsSync.contentHash('x');
  assert.equal(calls, 0, 'undefined goes back to the built-in hash');
  // A digest that disagrees anywhere, answers late or throws is refused, and nothing changes.
  const upper = (x) => sha(x).toUpperCase();
  const lone = (x) => sha(typeof x === 'string' ? x.replace(/\ud800/g, '?') : x);
  for (const [digest, message] of [
    [upper, /disagrees with the built-in SHA-256 on the string "": got "E3B0/],
    [lone, /disagrees .* on a string with a lone surrogate/],
    [async (x) => sha(x), /must return the hex digest as a string, synchronously, got Promise/],
    [() => { throw new Error('no native module'); }, /threw on the string "": no native module/],
  ]) {
    assert.throws(() => fsSync.setDigest(digest), (e) => refused(e, 'digest') && message.test(e.message));
  }
  calls = 0;
  fsSync.contentHash('x');
  assert.equal(calls, 0);
});

test('the UTF-8 codec for engines without TextEncoder/TextDecoder agrees with the engine\'s', async () => {
  const dir = installedConsumer();
  const { Utf8Encoder, Utf8Decoder } = await import(join(dir, 'node_modules/@velocity/fs-sync/dist/web/utf8.js'));
  const [ours, theirs] = [[new Utf8Encoder(), new Utf8Decoder()], [new TextEncoder(), new TextDecoder()]];
  const pool = ['a', 'é', '€', '日', '🚀', '\ud800', '\udc00', '\x7f', '\x80', '\u07ff', '\u0800', '\uffff', 'abcdefgh'];
  const bytePool = [0x41, 0x7f, 0x80, 0xbf, 0xc0, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff, 0xa0, 0x9f, 0x90, 0x8f];
  let seed = 7;
  const next = (n) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
  for (let k = 0; k < 5000; k++) {
    let s = '';
    for (let i = next(24); i > 0; i--) s += pool[next(pool.length)];
    assert.deepEqual(ours[0].encode(s), theirs[0].encode(s), JSON.stringify(s));
    // encodeInto stops before a character that does not fit, at every view size.
    const size = next(40);
    const [a, b] = [new Uint8Array(size), new Uint8Array(size)];
    assert.deepEqual(ours[0].encodeInto(s, a), theirs[0].encodeInto(s, b), JSON.stringify([s, size]));
    assert.deepEqual(a, b);
    const bytes = Uint8Array.from({ length: next(14) }, () => bytePool[next(bytePool.length)]);
    assert.equal(ours[1].decode(bytes), theirs[1].decode(bytes), String(bytes));
    assert.equal(ours[1].decode(theirs[0].encode(s)), theirs[1].decode(theirs[0].encode(s)));
  }
  // Long ASCII runs and a BOM, as the glue's strings come.
  const long = 'x'.repeat(20000) + 'é' + 'y'.repeat(9000);
  assert.equal(ours[1].decode(theirs[0].encode(long)), long);
  assert.equal(ours[1].decode(Uint8Array.of(0xef, 0xbb, 0xbf, 0x41)), theirs[1].decode(Uint8Array.of(0xef, 0xbb, 0xbf, 0x41)));
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
  // And every misuse must fail, one error per line: the types are not `any` (the exports take
  // any JS value, to check it themselves, but declare what they accept).
  const misuses = [
    "const n: number = inferFileType('a.ts');",
    'validatePath(42);',
    'contentHash(42);',
    "client.save('a.ts', 42);",
    "client.save('a.ts', 'x', 'bogus');",
    'client.saveAll([{ path: 1 }]);',
    'client.applyEvent(42);',
    'client.head(null);',
    'setDigest(async (x: string | Uint8Array) => String(x));',
    "new FsSyncClient({ supabaseUrl: 'u', anonKey: 'k', projectId: 'p', retry: { maxAttempts: '3' } });",
  ];
  writeFileSync(join(dir, 'consumer.ts'), [
    "import { inferFileType, validatePath, contentHash, setDigest, FsSyncClient } from '@velocity/fs-sync';",
    'declare const client: FsSyncClient;',
    ...misuses,
  ].join('\n') + '\n');
  const r = spawnSync(process.execPath, [tsc, '-p', dir], { encoding: 'utf8' });
  assert.notEqual(r.status, 0);
  assert.match(r.stdout, /not assignable to type 'number'/);
  const lines = new Set([...r.stdout.matchAll(/consumer\.ts\((\d+),\d+\): error/g)].map((m) => Number(m[1])));
  assert.deepEqual([...lines].sort((a, b) => a - b), misuses.map((_, i) => i + 3), r.stdout);
});
