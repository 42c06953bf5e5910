// Installs the built @velocity/fs-sync the way a user gets it: `npm pack`, then `npm install`
// of the tarball into a throwaway consumer project, so a broken `exports` map or a missing file
// fails the tests. Requires wasm-pkg/dist (scripts/build-wasm-pkg.sh, run by scripts/test.sh).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { root } from './processes.mjs';

export const pkgDir = join(root, 'wasm-pkg');

let consumer;

/** A consumer folder with the packed package installed; import by name from files inside it. */
export function installedConsumer() {
  if (consumer) return consumer;
  if (!existsSync(join(pkgDir, 'dist/web/fs_sync_bg.wasm')) || !existsSync(join(pkgDir, 'dist/native/fs_sync_wasm.js'))) {
    throw new Error('wasm-pkg/dist is missing: run bash scripts/build-wasm-pkg.sh');
  }
  const dir = mkdtempSync(join(tmpdir(), 'fs-sync-consumer-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: pkgDir, stdio: ['ignore', 'pipe', 'inherit'] });
  const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--silent', join(dir, tarball)], { cwd: dir, stdio: 'inherit' });
  // The store's peer dependency, which an app has: this repository's copy stands in for it.
  symlinkSync(join(root, 'node_modules/zustand'), join(dir, 'node_modules/zustand'), 'dir');
  consumer = dir;
  return dir;
}

/**
 * Imports the package as an app would: by name, resolved from the consumer folder (the `node`
 * condition), or with `condition: 'react-native'` the entry a React Native bundler resolves (the
 * Rust translated to JavaScript; Node resolves that condition only when started with
 * `--conditions=react-native`, so it is imported by its path in the installed package).
 */
export async function importPackage({ condition = 'node', subpath = '.' } = {}) {
  const dir = installedConsumer();
  const entry = join(dir, `entry-${condition}-${subpath === '.' ? 'main' : subpath.slice(2)}.mjs`);
  const target = condition === 'react-native'
    ? `./node_modules/@velocity/fs-sync/${reactNativeEntry(subpath)}`
    : `@velocity/fs-sync${subpath.slice(1)}`;
  writeFileSync(entry, `export * from ${JSON.stringify(target)};\n`);
  return import(entry);
}

/** The file the installed package's "react-native" export condition names for `subpath`. */
export function reactNativeEntry(subpath = '.') {
  const manifest = JSON.parse(readFileSync(join(installedConsumer(), 'node_modules/@velocity/fs-sync/package.json'), 'utf8'));
  return manifest.exports[subpath]['react-native'].replace(/^\.\//, '');
}
