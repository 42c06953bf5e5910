// The ESM build in real Chromium (Debian's, driven by playwright-core): a page imports
// @velocity/fs-sync through an import map, passes some wrong-type arguments and shows how each was
// refused, then saves a file to fs-sync-dev and shows the new version; the test reads the version
// from the page and from the database. Twice: as Chromium is (the SIMD build loads) and with Wasm
// SIMD reported missing, as on an older engine (the baseline loads).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join, normalize, extname } from 'node:path';
import {
  pkgDir, installedConsumer, startSystem, createProject, launchChromium, serve, CONTENT_TYPES,
} from '../harness/index.mjs';

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>fs-sync browser check</title>
<script type="importmap">{ "imports": { "@velocity/fs-sync": "/pkg/dist/web/index.js" } }</script>
<p>version: <output id="version">…</output></p>
<p>error: <output id="error"></output></p>
<p>refused: <output id="refused"></output></p>
<script type="module">
  import { FsSyncClient, FsSyncError, contentHash, validatePath } from '@velocity/fs-sync';
  const q = new URLSearchParams(location.search);
  const fs = new FsSyncClient({
    supabaseUrl: q.get('url'), anonKey: q.get('anon'), projectId: q.get('project'), accessToken: q.get('token'),
  });
  // Wrong-type arguments, before the save below: each refused as "kind:argument".
  const refused = [];
  const bad = [() => validatePath(42), () => contentHash({}), () => fs.head(null), () => fs.save('a.ts', 10n),
    () => fs.saveAll([{ path: Symbol('s') }]), () => new FsSyncClient([])];
  for (const call of bad) {
    try {
      await call();
      refused.push('accepted');
    } catch (e) {
      refused.push(e instanceof FsSyncError ? e.kind + ':' + e.details?.argument : String(e));
    }
  }
  document.getElementById('refused').textContent = refused.join(' ');
  try {
    await fs.load();
    const content = 'export const from = "chromium";\\n';
    const head = await fs.save(q.get('path'), content);
    if (head.contentHash !== contentHash(content)) throw new Error('hash mismatch');
    document.getElementById('version').textContent = String(head.version);
  } catch (e) {
    document.getElementById('error').textContent = e.kind + ': ' + e.message;
  }
</script>`;

const TYPES = CONTENT_TYPES;

let sys;
let server;
let browser;

before(async () => {
  installedConsumer(); // fails early with a clear message when wasm-pkg/dist is missing
  sys = await startSystem({ edge: false, quiet: false });
  server = await serve(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/') {
      res.setHeader('content-type', 'text/html');
      return res.end(PAGE);
    }
    const rel = normalize(url.pathname).replace(/^\/pkg\//, '');
    if (!url.pathname.startsWith('/pkg/') || rel.startsWith('..')) { res.statusCode = 404; return res.end(); }
    try {
      const body = await readFile(join(pkgDir, rel));
      res.setHeader('content-type', TYPES[extname(rel)] ?? 'application/octet-stream');
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

for (const [engine, simd] of [['with Wasm SIMD', true], ['without Wasm SIMD', false]]) {
  test(`a page saves through the ESM build and shows the new version (${engine})`, async () => {
    const { info } = sys;
    const { id: project, owner: user } = await createProject(sys, { name: 'browser', emails: [`browser-${simd}@example.test`] });
    const page = await browser.newPage();
    if (!simd) await page.addInitScript(() => { WebAssembly.validate = () => false; });
    const logs = [];
    const wasmFetched = [];
    page.on('console', (m) => logs.push(m.text()));
    page.on('pageerror', (e) => logs.push(String(e)));
    page.on('request', (r) => { if (r.url().endsWith('.wasm')) wasmFetched.push(r.url().split('/').pop()); });
    const path = 'src/FromBrowser.tsx';
    const q = new URLSearchParams({ url: info.api_url, anon: info.anon_key, project, token: user.access_token, path });
    await page.goto(`http://127.0.0.1:${server.address().port}/?${q}`);
    await page.waitForFunction(() => document.getElementById('version').textContent !== '…' || document.getElementById('error').textContent, null, { timeout: 30_000 });
    assert.equal(await page.textContent('#error'), '', logs.join('\n'));
    // Refused as in Node, and the save after them worked: the Wasm instance is not poisoned.
    assert.equal(await page.textContent('#refused'), 'invalid:path invalid:input invalid:path invalid:content invalid:files[0].path invalid:options');
    assert.deepEqual(wasmFetched, [simd ? 'fs_sync_simd_bg.wasm' : 'fs_sync_bg.wasm']);
    const shown = await page.textContent('#version');
    const stored = sys.sql(`select version from public.project_files where project_id = '${project}' and file_path = '${path}' and is_current_version`);
    assert.equal(shown, '1');
    assert.equal(stored, shown);
    await page.close();
  });
}
