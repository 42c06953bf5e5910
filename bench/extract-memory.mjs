// Extraction memory: peak RSS of fs-sync-core's verified extraction next to Info-ZIP's `unzip`
// (the tool a container script would otherwise call), on one 64 MiB file and on 10,000 source
// files, in one run. A benchmark, not a test (the regression test is
// crates/core/tests/snapshot_memory.rs, which counts heap bytes instead of timing anything).
//
//   node bench/extract-memory.mjs [--no-build]
//
// Peak RSS is the child's maximum resident set (getrusage through python3's resource module for
// unzip; VmHWM for snapshot_bench, which reports its own). Goal: under 64 MiB for fs-sync
// whatever the file size.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sourceFiles } from './source-tree.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'target/release/examples/snapshot_bench');

// Runs argv, returning [peak RSS in KiB, wall ms] of the child as the kernel accounted it.
const RUSAGE = `
import resource, subprocess, sys, time
t = time.perf_counter()
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, (time.perf_counter() - t) * 1e3)
`;

function run(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr || r.error}`);
  return r.stdout;
}

function measureUnzip(zip, out) {
  const [kb, ms] = run('python3', ['-c', RUSAGE, 'unzip', '-q', zip, '-d', out]).trim().split(/\s+/).map(Number);
  return { kb, ms };
}

function measureFsSync(zip, out) {
  const r = JSON.parse(run(bin, ['extract', zip, out]).trim().split('\n').pop());
  return { kb: r.peak_rss_kb, ms: r.ms };
}

function writeTree(dir, files) {
  for (const { path, content } of files) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
}

// 64 MiB of CSV-like text: compressible as real data is, not a run of one byte.
function bigFile() {
  const rows = [];
  let size = 0;
  let x = 12345;
  while (size < 64 << 20) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const row = `${rows.length},user${x % 9973},${(x % 100000) / 100},2026-12-${1 + (x % 28)}\n`;
    rows.push(row);
    size += row.length;
  }
  return [{ path: 'data/export.csv', content: rows.join('').slice(0, 64 << 20) }];
}

function main() {
  const noBuild = process.argv.includes('--no-build');
  if (!noBuild) {
    console.log('building fs-sync-core example snapshot_bench (cargo build --release)…');
    run('cargo', ['build', '--release', '-q', '-p', 'fs-sync-core', '--example', 'snapshot_bench']);
  }
  const work = mkdtempSync(join(tmpdir(), 'fs-sync-extract-mem-'));
  const rows = [];
  try {
    for (const [name, files] of [['one 64 MiB file', bigFile()], ['10,000 files', sourceFiles(10000, 0x5eed)]]) {
      const src = join(work, 'src');
      writeTree(src, files);
      const zip = join(work, 'snap.zip');
      run(bin, ['build', src, zip]);
      const bytes = files.reduce((n, f) => n + Buffer.byteLength(f.content), 0);
      const fs = measureFsSync(zip, join(work, 'x-fs'));
      const uz = measureUnzip(zip, join(work, 'x-unzip'));
      rows.push({ name, bytes, archive: statSync(zip).size, fs, uz });
      for (const d of ['src', 'x-fs', 'x-unzip', 'snap.zip']) rmSync(join(work, d), { recursive: true, force: true });
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const mib = (kb) => (kb / 1024).toFixed(1);
  console.log('\n| case | content | archive | fs-sync peak RSS | unzip peak RSS | fs-sync / unzip | fs-sync time | unzip time |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.name} | ${(r.bytes / 1e6).toFixed(1)} MB | ${(r.archive / 1e6).toFixed(2)} MB | ${mib(r.fs.kb)} MiB | ${mib(r.uz.kb)} MiB | ${(r.fs.kb / r.uz.kb).toFixed(2)}x | ${r.fs.ms.toFixed(0)} ms | ${r.uz.ms.toFixed(0)} ms |`);
  }
  const worst = Math.max(...rows.map((r) => r.fs.kb));
  console.log(`\ngoal: fs-sync under 64 MiB peak RSS: ${worst < 64 * 1024 ? 'met' : 'NOT met'} (${mib(worst)} MiB)`);
  console.log('fs-sync verifies every entry (size, CRC-32, SHA-256 against the manifest) and stages before moving into place; unzip checks CRC-32 only.');
}

main();
