// Metro, configured as a React Native app's metro.config.js gets it from @react-native/metro-config
// (the "react-native" export condition and main field, RN's Babel transformer and preset, inline
// requires), minus what needs the react-native package itself (InitializeCore, its polyfills). And
// Hermes: the 0.12 VM from hermes-engine-cli, the current compiler from hermes-compiler.
import { createRequire } from 'node:module';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { root } from './processes.mjs';

const require = createRequire(join(root, 'package.json'));

/** The Hermes 0.12 VM (`hermes`) and its compiler (`hermesc`), and the current compiler. */
export const hermes = {
  vm: join(root, 'node_modules/hermes-engine-cli/linux64-bin/hermes'),
  compiler012: join(root, 'node_modules/hermes-engine-cli/linux64-bin/hermesc'),
  compiler: join(root, 'node_modules/hermes-compiler/hermesc/linux64-bin/hermesc'),
};

/**
 * Bundles `entry` (a path inside `projectRoot`, whose node_modules hold what it imports) for
 * `platform` ('ios', 'android' or 'web') into `out`, a release bundle unless `dev`. `modules`
 * names packages of this repository's node_modules to resolve as if the app had them
 * (`['js-sha256']`).
 */
export async function metroBundle({ projectRoot, entry, platform = 'ios', out, dev = false, minify = false, modules = [] }) {
  const Metro = require('metro');
  // The Babel runtime helpers the preset imports: an app has @babel/runtime (react-native depends
  // on it); this repository's copy stands in for the consumer's.
  const babelRuntime = dirname(require.resolve('@babel/runtime/package.json'));
  // Metro's own module system and polyfills, which an app has in its node_modules too.
  const metroRuntime = dirname(require.resolve('metro-runtime/package.json'));
  const extra = Object.fromEntries(modules.map((name) => [name, join(root, 'node_modules', name)]));
  const config = await Metro.loadConfig({ cwd: projectRoot }, {
    projectRoot,
    watchFolders: [babelRuntime, metroRuntime, ...Object.values(extra)],
    cacheStores: [],
    maxWorkers: 2,
    resolver: {
      resolverMainFields: ['react-native', 'browser', 'main'],
      platforms: ['android', 'ios', 'web'],
      unstable_conditionNames: ['react-native'],
      extraNodeModules: { '@babel/runtime': babelRuntime, 'metro-runtime': metroRuntime, ...extra },
      useWatchman: false,
    },
    transformer: {
      babelTransformerPath: require.resolve('@react-native/metro-babel-transformer'),
      asyncRequireModulePath: require.resolve('metro-runtime/src/modules/asyncRequire'),
      getTransformOptions: async () => ({ transform: { experimentalImportSupport: false, inlineRequires: true } }),
    },
    reporter: { update() {} },
  });
  mkdirSync(dirname(out), { recursive: true });
  await Metro.runBuild(config, { entry, platform, dev, minify, out });
  return out;
}

/** Runs `file` (a bundle, or bytecode) in the Hermes 0.12 VM; {status, stdout, stderr}. */
export function runHermes(file, args = []) {
  return spawnSync(hermes.vm, [...args, file], { encoding: 'utf8', maxBuffer: 64 << 20 });
}

/** Compiles `file` to bytecode with `compiler` (hermes.compiler012 or hermes.compiler), -O. */
export function compileHermes(compiler, file, out) {
  const r = spawnSync(compiler, ['-O', '-emit-binary', '-out', out, file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${compiler} failed on ${file}: ${r.stderr}`);
  return out;
}

/** compileHermes, in the background: resolves to `out`. */
export async function compileHermesAsync(compiler, file, out) {
  await promisify(execFile)(compiler, ['-O', '-emit-binary', '-out', out, file]).catch((e) => {
    throw new Error(`${compiler} failed on ${file}: ${e.stderr ?? e}`);
  });
  return out;
}
