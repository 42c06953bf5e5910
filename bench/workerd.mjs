// Runs a Worker in workerd for the benchmark through Miniflare, the library `wrangler dev` starts
// workerd with, configured from the same wrangler.toml (wrangler's own conversion of it). What is
// left out is wrangler's DevTools proxy: it keeps the runtime's inspector attached with the Network
// domain enabled, which makes workerd report every fetch and its body to it and roughly doubles the
// CPU a snapshot build costs (two processes busy with bodies no deployed Worker would ever copy).
// The tests keep `wrangler dev` (tests/harness); a benchmark wants the runtime alone.
import { cpSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { build } from 'esbuild';
import { Miniflare } from 'miniflare';
import { unstable_getMiniflareWorkerOptions } from 'wrangler';
import { root, freePort, testConfig, comm, descendants } from '../tests/harness/index.mjs';

/**
 * Starts edge/build (a copy), or the JS Worker `main` bundled with esbuild as wrangler would,
 * with edge/wrangler.toml's settings and `env` over its vars. `inspect`: open the isolate's V8
 * inspector (for heap readings only). `build`: another scripts/build-edge.sh output than edge/build.
 */
export async function startWorkerd(env, { main, name = 'fs-sync-edge', inspect = false, build: built = join(root, 'edge/build') } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'fs-sync-workerd-'));
  const script = join(dir, 'worker/index.js');
  if (main) {
    await build({ entryPoints: [main], bundle: true, format: 'esm', platform: 'browser', outfile: script, logLevel: 'warning' });
  } else {
    cpSync(built, join(dir, 'worker'), { recursive: true });
  }
  writeFileSync(join(dir, 'wrangler.toml'), testConfig(script));
  const { workerOptions } = unstable_getMiniflareWorkerOptions(join(dir, 'wrangler.toml'));
  const before = new Set(descendants(process.pid));
  const inspectorPort = inspect ? await freePort() : undefined;
  const lines = [];
  const mf = new Miniflare({
    ...workerOptions,
    name,
    modules: true,
    scriptPath: script,
    modulesRoot: dirname(script),
    bindings: { ...workerOptions.bindings, ...env },
    host: '127.0.0.1',
    port: await freePort(),
    inspectorPort,
    handleStructuredLogs: ({ message }) => { lines.push(message); },
  });
  const url = (await mf.ready).origin;
  const pids = descendants(process.pid).filter((pid) => !before.has(pid) && comm(pid) === 'workerd');
  if (pids.length !== 1) throw new Error(`expected one new workerd process, found ${pids.length}`);
  return {
    url,
    inspectorPort,
    output: () => lines.join('\n'),
    logLines: () => lines.flatMap((m) => m.split('\n')).map((l) => l.trim())
      .filter((l) => l.startsWith('{"event_type"')).map((l) => JSON.parse(l)),
    workerdPids: () => pids,
    async stop() {
      await mf.dispose();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
