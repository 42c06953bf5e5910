// Extraction next to its physical floor: fs-sync-core's verified extraction (`extract_snapshot`:
// size, CRC-32 and SHA-256 of every entry against the manifest, staged, then moved into place)
// against a tight native loop writing the same tree (same paths, same bytes; each folder once,
// then create, write, close per file; no zip, no hashing, no verification), on tmpfs (/dev/shm)
// and on the disk (the OS temp dir), in the same process, interleaved. A benchmark, not a test.
//
//   npm run bench:extract-floor
//   node bench/extract-floor.mjs --sizes=200,2000 --rounds=9 --fs=shm,disk --no-large --no-build
//
// Trees: the sample app of tests/harness/sample-app.mjs (~0.8 KB source files in nested folders,
// one PNG) at 200, 2,000 and 10,000 files, and four 16 MiB CSV-like files. Each tree is zipped
// once by snapshot_bench (the format the edge writes); crates/core/examples/extract_floor.rs then
// runs floor and extraction alternately, each into a new folder (trees are removed only after the
// size is done on tmpfs, after the whole run on the disk: on this VM's ext4, which has no journal,
// a creation right after many deletions scans past the recently deleted inodes). Reported: medians
// over the rounds; the ratio is the median of each round's fs-sync / floor (the pair ran back to
// back, so the machine's load affects both alike). Also: reading and verifying alone (no writes:
// the compute part), and CPU time (all threads, user + system), which load disturbs less than
// wall time. Goal: ratio ≤ 1.5.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sampleApp } from '../tests/harness/sample-app.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const examples = join(root, 'target/release/examples');

const arg = (name, fallback) => {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : fallback;
};
const sizes = arg('sizes', '200,2000,10000').split(',').map(Number);
const rounds = Number(arg('rounds', '9'));
// Four 16 MiB files a tree: fewer rounds keep the run's footprint (2 trees a round) near 0.7 GB.
const largeRounds = Math.min(rounds, 5);
const filesystems = { shm: ['tmpfs', '/dev/shm'], disk: ['disk', tmpdir()] };
const chosen = arg('fs', 'shm,disk').split(',').map((k) => {
  if (!filesystems[k]) throw new Error(`--fs: unknown filesystem ${k} (shm, disk)`);
  return filesystems[k];
});

function run(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr || r.error}`);
  return r.stdout;
}

function writeTree(dir, files) {
  for (const { path, content } of files) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
}

// 16 MiB of CSV-like text per file: compressible as real data is, not a run of one byte.
function largeFiles(count) {
  let x = 12345;
  return Array.from({ length: count }, (_, i) => {
    const rows = [];
    let size = 0;
    while (size < 16 << 20) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      const row = `${rows.length},user${x % 9973},${(x % 100000) / 100},2026-12-${1 + (x % 28)}\n`;
      rows.push(row);
      size += row.length;
    }
    return { path: `data/export-${i}.csv`, content: rows.join('').slice(0, 16 << 20) };
  });
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

function main() {
  if (!process.argv.includes('--no-build')) {
    console.log('building fs-sync-core examples snapshot_bench, extract_floor (cargo build --release)…');
    run('cargo', ['build', '--release', '-q', '-p', 'fs-sync-core', '--example', 'snapshot_bench', '--example', 'extract_floor']);
  }
  const cases = sizes.map((n) => {
    const app = sampleApp(n);
    return [`${n} files`, [...app.files, { path: app.binary.path, content: app.binary.bytes }]];
  });
  if (!process.argv.includes('--no-large')) cases.push(['4 × 16 MiB', largeFiles(4)]);

  const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');
  console.log(`load average before: ${load()} (2 cores are shared; prefer a 1-minute load under ~1.5)`);
  const rows = [];
  const src = mkdtempSync(join(tmpdir(), 'fs-sync-extract-floor-src-'));
  const kept = [];
  try {
    for (const [name, files] of cases) {
      const n = name.includes('MiB') ? largeRounds : rounds;
      const tree = join(src, 'tree');
      writeTree(tree, files);
      const zip = join(src, 'snap.zip');
      run(join(examples, 'snapshot_bench'), ['build', tree, zip]);
      rmSync(tree, { recursive: true, force: true });
      for (const [fsName, base] of chosen) {
        const work = mkdtempSync(join(base, 'fs-sync-extract-floor-'));
        const keep = fsName === 'disk';
        if (keep) kept.push(work);
        try {
          // The archive sits on the filesystem it is extracted to, as the agent's download does.
          const local = join(work, 'snap.zip');
          run('cp', [zip, local]);
          const r = JSON.parse(run(join(examples, 'extract_floor'), [local, work, String(n)]).trim());
          const ratio = (a, b) => median(a.map((x, i) => x / b[i]));
          rows.push({
            fs: fsName, name, files: r.files, mb: r.bytes / 1e6, archive: statSync(zip).size / 1e6,
            floor: median(r.floor_ms), extract: median(r.extract_ms), ratio: ratio(r.extract_ms, r.floor_ms),
            verify: median(r.verify_ms), floorCpu: median(r.floor_cpu_ms), extractCpu: median(r.extract_cpu_ms),
            cpuRatio: ratio(r.extract_cpu_ms, r.floor_cpu_ms), rounds: n,
          });
          const last = rows[rows.length - 1];
          console.log(`${fsName} ${name}: floor ${last.floor.toFixed(1)} ms, fs-sync ${last.extract.toFixed(1)} ms, ${last.ratio.toFixed(2)}x`);
        } finally {
          if (!keep) rmSync(work, { recursive: true, force: true });
        }
      }
      rmSync(zip, { force: true });
    }
    console.log(`load average after: ${load()}`);
    report(rows);
  } finally {
    for (const d of [src, ...kept]) rmSync(d, { recursive: true, force: true });
  }
}

function report(rows) {
  console.log(`\nmedians of interleaved rounds; ratio = median of each round's fs-sync / floor; verify = read + verify, nothing written`);
  console.log('| filesystem | tree | files | content | archive | rounds | floor ms | fs-sync ms | ratio | verify ms | floor CPU ms | fs-sync CPU ms | CPU ratio |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.fs} | ${r.name} | ${r.files} | ${r.mb.toFixed(1)} MB | ${r.archive.toFixed(2)} MB | ${r.rounds} | ${r.floor.toFixed(1)} | ${r.extract.toFixed(1)} | ${r.ratio.toFixed(2)}x | ${r.verify.toFixed(1)} | ${r.floorCpu.toFixed(1)} | ${r.extractCpu.toFixed(1)} | ${r.cpuRatio.toFixed(2)}x |`);
  }
  const worst = Math.max(...rows.map((r) => r.ratio));
  console.log(`\ngoal: fs-sync ≤ 1.5× the floor everywhere: ${worst <= 1.5 ? 'met' : 'NOT met'} (worst ${worst.toFixed(2)}x)`);
}

main();
