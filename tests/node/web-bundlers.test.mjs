// A tiny web consumer of @velocity/fs-sync, bundled the way apps bundle it for the web, loaded in
// real Chromium (Debian's, driven by playwright-core) and saving a file through fs-sync-dev:
// - Metro for platform web, configured as a React Native app's Metro is (the "react-native"
//   condition): the build translated to JavaScript, with no .wasm to fetch;
// - esbuild: the "browser" entry, the Wasm (SIMD) build, whose .wasm files sit beside the bundle.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, normalize, extname } from 'node:path';
import { createRequire } from 'node:module';
import {
  installedConsumer, metroBundle, startSystem, createProject, root, launchChromium, serve, CONTENT_TYPES,
} from '../harness/index.mjs';

const esbuild = createRequire(join(root, 'package.json'))('esbuild');

const APP = `
import { FsSyncClient, contentHash, validatePath } from '@velocity/fs-sync';

const q = new URLSearchParams(location.search);
const show = (id, text) => { document.getElementById(id).textContent = text; };
(async () => {
  try {
    let rule = '';
    try { validatePath('cafe\\u0301.ts'); } catch (e) { rule = e.kind + ':' + e.details.rule; }
    const fs = new FsSyncClient({
      supabaseUrl: q.get('url'), anonKey: q.get('anon'), projectId: q.get('project'), accessToken: q.get('token'),
    });
    await fs.load();
    const content = 'export const bundler = ' + JSON.stringify(q.get('bundler')) + ';\\n';
    const head = await fs.save(q.get('path'), content);
    if (head.contentHash !== contentHash(content)) throw new Error('hash mismatch');
    show('rule', rule);
    show('version', String(head.version));
  } catch (e) {
    show('error', (e && e.kind) + ': ' + (e && e.message));
  }
})();
`;

const page = (script) => `<!doctype html>
<meta charset="utf-8">
<p>version: <output id="version">…</output></p>
<p>rule: <output id="rule"></output></p>
<p>error: <output id="error"></output></p>
${script}`;

const TYPES = CONTENT_TYPES;

let sys;
let server;
let browser;
let out;

before(async () => {
  const dir = installedConsumer();
  writeFileSync(join(dir, 'web-app.js'), APP);
  out = join(dir, 'web-out');
  mkdirSync(join(out, 'esbuild'), { recursive: true });
  const [system] = await Promise.all([
    startSystem({ edge: false, quiet: false }),
    metroBundle({ projectRoot: dir, entry: 'web-app.js', platform: 'web', out: join(out, 'metro/app.js') }),
    esbuild.build({
      absWorkingDir: dir, entryPoints: ['web-app.js'], bundle: true, format: 'esm', platform: 'browser',
      outfile: join(out, 'esbuild/app.js'), logLevel: 'silent',
    }),
  ]);
  sys = system;
  // esbuild leaves `new URL('./x.wasm', import.meta.url)` alone: the files go beside the bundle.
  const web = join(dir, 'node_modules/@velocity/fs-sync/dist/web');
  for (const f of readdirSync(web).filter((f) => f.endsWith('.wasm'))) copyFileSync(join(web, f), join(out, 'esbuild', f));
  writeFileSync(join(out, 'metro/index.html'), page('<script src="app.js"></script>'));
  writeFileSync(join(out, 'esbuild/index.html'), page('<script type="module" src="app.js"></script>'));

  server = await serve((req, res) => {
    const rel = normalize(new URL(req.url, 'http://x').pathname).replace(/^\/+/, '');
    try {
      const body = readFileSync(join(out, rel.endsWith('/') || rel === '' ? `${rel}index.html` : rel));
      res.setHeader('content-type', TYPES[extname(rel) || '.html'] ?? 'application/octet-stream');
      res.end(body);
    } catch {
      res.statusCode = 404;
      res.end();
    }
  });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  server?.close();
  const exit = await sys?.close();
  assert.equal(exit?.code, 0);
});

for (const [bundler, wasm] of [['metro', []], ['esbuild', ['fs_sync_simd_bg.wasm']]]) {
  test(`a page bundled by ${bundler} saves through fs-sync-dev`, async () => {
    const { info } = sys;
    const { id: project, owner: user } = await createProject(sys, { name: bundler, emails: [`${bundler}@example.test`] });
    const tab = await browser.newPage();
    const logs = [];
    const wasmFetched = [];
    tab.on('console', (m) => logs.push(m.text()));
    tab.on('pageerror', (e) => logs.push(String(e)));
    tab.on('request', (r) => { if (r.url().endsWith('.wasm')) wasmFetched.push(r.url().split('/').pop()); });
    const path = `src/From${bundler}.ts`;
    const q = new URLSearchParams({ url: info.api_url, anon: info.anon_key, project, token: user.access_token, path, bundler });
    await tab.goto(`http://127.0.0.1:${server.address().port}/${bundler}/?${q}`);
    await tab.waitForFunction(() => document.getElementById('version').textContent !== '…' || document.getElementById('error').textContent, null, { timeout: 30_000 });
    assert.equal(await tab.textContent('#error'), '', logs.join('\n'));
    assert.equal(await tab.textContent('#rule'), 'invalid:not_nfc');
    assert.deepEqual(wasmFetched, wasm);
    const shown = await tab.textContent('#version');
    const stored = sys.sql(`select version from public.project_files where project_id = '${project}' and file_path = '${path}' and is_current_version`);
    assert.equal(shown, '1');
    assert.equal(stored, shown);
    await tab.close();
  });
}
