// Installs the built @velocity/fs-sync the way a user gets it: `npm pack`, then `npm install`
// of the tarball into a throwaway consumer project, so a broken `exports` map or a missing file
// fails the tests. Requires wasm-pkg/dist (scripts/build-wasm-pkg.sh, run by scripts/test.sh).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { root } from './processes.mjs';

export const pkgDir = join(root, 'wasm-pkg');

let consumer;

/** A consumer folder with the packed package installed; import by name from files inside it. */
export function installedConsumer() {
  if (consumer) return consumer;
  if (!existsSync(join(pkgDir, 'dist/web/fs_sync_bg.wasm'))) {
    throw new Error('wasm-pkg/dist is missing: run bash scripts/build-wasm-pkg.sh');
  }
  const dir = mkdtempSync(join(tmpdir(), 'fs-sync-consumer-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: pkgDir, stdio: ['ignore', 'pipe', 'inherit'] });
  const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--silent', join(dir, tarball)], { cwd: dir, stdio: 'inherit' });
  consumer = dir;
  return dir;
}

/** Imports the package by name, resolved from the consumer folder (the `node` condition). */
export async function importPackage() {
  const dir = installedConsumer();
  const entry = join(dir, 'entry.mjs');
  writeFileSync(entry, "export * from '@velocity/fs-sync';\n");
  return import(entry);
}
