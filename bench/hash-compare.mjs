// Hashing throughput of fs-sync-core next to coreutils' sha256sum on the same bytes, in one run.
//
//   npm run bench:hash
//
// Both tools run as whole commands over the same files (page-cached), so the ratio includes
// reading the files and starting the process on both sides. Median of 5 runs.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, mkdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'target/release/examples/snapshot_bench');

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

console.log('building fs-sync-core example (release)…');
run('cargo', ['build', '--release', '-q', '-p', 'fs-sync-core', '--example', 'snapshot_bench']);
if (!existsSync(bin)) throw new Error(`missing ${bin}`);

const work = mkdtempSync(join(tmpdir(), 'fs-sync-hash-'));
let seed = 42;
const bytes = (n) => {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    b[i] = seed >>> 24;
  }
  return b;
};

const cases = [
  { name: '1 KiB inputs (4,096 files)', dir: join(work, 'small'), count: 4096, size: 1024 },
  { name: '16 MiB input (1 file)', dir: join(work, 'large'), count: 1, size: 16 << 20 },
];
for (const c of cases) {
  mkdirSync(c.dir, { recursive: true });
  for (let i = 0; i < c.count; i++) writeFileSync(join(c.dir, `f${i}`), bytes(c.size));
  c.files = Array.from({ length: c.count }, (_, i) => join(c.dir, `f${i}`));
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function wall(cmd, args) {
  const times = [];
  for (let i = 0; i < 5; i++) {
    const t = process.hrtime.bigint();
    run(cmd, args);
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return median(times);
}

const rows = [];
for (const c of cases) {
  const mb = (c.count * c.size) / 1e6;
  const ours = wall(bin, ['hash', c.dir]);
  const inproc = median(
    Array.from({ length: 5 }, () => JSON.parse(run(bin, ['hash', c.dir])).ms),
  );
  const theirs = wall('sha256sum', c.files);
  rows.push([c.name, (mb / (ours / 1e3)).toFixed(0), (mb / (theirs / 1e3)).toFixed(0),
    (theirs / ours).toFixed(2) + 'x', (mb / (inproc / 1e3)).toFixed(0)]);
}

console.log('\n| input | fs-sync-core MB/s (whole command) | sha256sum MB/s | fs-sync / sha256sum | fs-sync-core MB/s (hashing only) |');
console.log('|---|---|---|---|---|');
for (const r of rows) console.log(`| ${r.join(' | ')} |`);
rmSync(work, { recursive: true, force: true });
