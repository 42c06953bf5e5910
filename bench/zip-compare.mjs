// Snapshot zip build and extraction: fs-sync-core next to npm JSZip and fflate (build) and npm
// unzipper (extract), on the same source-like trees, in one run. A benchmark, not a test.
//
//   npm run bench:zip                                  # 100 / 1,000 / 10,000 files, 3 runs each
//   node bench/zip-compare.mjs --sizes=100,1000 --runs=3 --no-build
//
// --no-build skips `cargo build --release -p fs-sync-core --example snapshot_bench` and uses the
// binary already in target/release/examples (the fs-sync rows are skipped when there is none).
//
// Method. Trees of ~5 KB files (TypeScript/JSON/Markdown/CSS-looking text from a seeded PRNG, nested
// folders, a few non-ASCII names) are written to a temp dir. Every measurement runs in its own child
// process, so peak RSS is per tool and per run. Builds read the whole tree into memory first, then
// start the clock; the clock stops after the archive is written and fsynced. Extractions time
// opening the zip to the last file written. Reported: median ms of the runs, throughput in MB/s of
// input (uncompressed tree bytes, 1 MB = 10^6 bytes), the largest peak RSS seen, and archive size.
// Children print one JSON line, the same shape as snapshot_bench:
//   {"op":"build"|"extract","ms":<float>,"peak_rss_kb":<int>,"bytes":<archive size>,"files":<n>}
// Known differences: fs-sync's build also SHA-256-hashes every file for its manifest, and its
// extraction verifies every entry against the manifest and renames a staging folder into place.
// The extraction input is the fs-sync archive for both tools.
import { spawnSync } from 'node:child_process';
import {
  closeSync, existsSync, fsyncSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync,
  rmSync, statSync, writeFileSync, writeSync, createReadStream,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sourceFiles } from './source-tree.mjs';

const self = fileURLToPath(import.meta.url);
const root = join(dirname(self), '..');
const bin = join(root, 'target/release/examples/snapshot_bench');

if (process.argv[2] === '--child') {
  await child(process.argv.slice(3));
} else {
  await main();
}

// ---------------------------------------------------------------------------------------------
// Children: one measurement each, one JSON line on stdout.

async function child([tool, op, a, b]) {
  let result;
  if (op === 'build' && (tool === 'jszip' || tool === 'fflate')) {
    const zip = tool === 'jszip' ? await jszipBuilder() : await fflateBuilder(); // import off the clock
    const files = readTree(a); // read off the clock
    const start = performance.now();
    const archive = await zip(files);
    writeSynced(b, archive);
    result = { op, ms: performance.now() - start, bytes: archive.length, files: files.length };
  } else if (op === 'extract' && tool === 'unzipper') {
    const { default: unzipper } = await import('unzipper');
    const start = performance.now();
    await new Promise((resolve, reject) => {
      const sink = unzipper.Extract({ path: b });
      sink.on('close', resolve).on('error', reject);
      createReadStream(a).on('error', reject).pipe(sink);
    });
    const ms = performance.now() - start;
    result = { op, ms, bytes: statSync(a).size, files: walk(b).length };
  } else {
    throw new Error(`unknown child job: ${tool} ${op}`);
  }
  const peak_rss_kb = process.resourceUsage().maxRSS;
  process.stdout.write(JSON.stringify({ op: result.op, ms: result.ms, peak_rss_kb, bytes: result.bytes, files: result.files }) + '\n');
}

async function jszipBuilder() {
  const { default: JSZip } = await import('jszip');
  return (files) => {
    const zip = new JSZip();
    for (const [path, bytes] of files) zip.file(path, bytes);
    return zip.generateAsync({ type: 'nodebuffer', compression: 'DEFLATE', compressionOptions: { level: 6 } });
  };
}

async function fflateBuilder() {
  const { zipSync } = await import('fflate');
  return (files) => {
    const out = zipSync(Object.fromEntries(files), { level: 6 });
    return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
  };
}

function writeSynced(path, bytes) {
  const fd = openSync(path, 'w');
  try {
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function walk(dir, out = []) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else out.push(p);
  }
  return out;
}

function readTree(dir) {
  return walk(dir)
    .map((p) => [relative(dir, p).split('\\').join('/'), readFileSync(p)])
    .sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
}

// ---------------------------------------------------------------------------------------------
// Parent: generate trees, run children, print tables.

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const haveBin = opts.build ? buildBinary() : existsSync(bin);
  if (!haveBin) {
    console.log(`fs-sync binary not built (${relative(root, bin)}): the fs-sync rows and the targets are skipped;`);
    console.log('unzipper then extracts the fflate archive instead.');
  }

  const work = mkdtempSync(join(tmpdir(), 'fs-sync-zip-bench-'));
  const results = [];
  try {
    for (const n of opts.sizes) {
      const src = join(work, `tree-${n}`);
      const t0 = performance.now();
      const inputBytes = generateTree(src, n, 0x5eed + n);
      console.log(`\ngenerated ${n} files, ${(inputBytes / 1e6).toFixed(1)} MB in ${((performance.now() - t0) / 1e3).toFixed(1)} s`);

      const build = {};
      const zips = {};
      const tools = [...(haveBin ? ['fs-sync'] : []), 'JSZip', 'fflate'];
      for (const tool of tools) {
        zips[tool] = join(work, `${tool}-${n}.zip`);
        build[tool] = measure(opts.runs, () => {
          rmSync(zips[tool], { force: true });
          return tool === 'fs-sync'
            ? runJson(bin, ['build', src, zips[tool]])
            : runJson(process.execPath, [self, '--child', tool.toLowerCase(), 'build', src, zips[tool]]);
        });
        progress('build', tool, n, build[tool]);
      }

      const zipIn = haveBin ? zips['fs-sync'] : zips.fflate;
      const extract = {};
      for (const tool of [...(haveBin ? ['fs-sync'] : []), 'unzipper']) {
        let k = 0;
        extract[tool] = measure(opts.runs, () => {
          const out = join(work, `x-${tool}-${n}-${k++}`);
          const r = tool === 'fs-sync'
            ? runJson(bin, ['extract', zipIn, out])
            : runJson(process.execPath, [self, '--child', 'unzipper', 'extract', zipIn, out]);
          if (k === 1) checkExtracted(src, out, n, tool);
          rmSync(out, { recursive: true, force: true });
          return r;
        });
        progress('extract', tool, n, extract[tool]);
      }
      results.push({ n, inputBytes, build, extract, haveBin });
      rmSync(src, { recursive: true, force: true });
      for (const z of Object.values(zips)) rmSync(z, { force: true });
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }

  report(results, opts);
}

function parseArgs(args) {
  const opts = { sizes: [100, 1000, 10000], runs: 3, build: true };
  for (const a of args) {
    if (a === '--no-build') opts.build = false;
    else if (a.startsWith('--sizes=')) opts.sizes = a.slice(8).split(',').map(Number);
    else if (a.startsWith('--runs=')) opts.runs = Number(a.slice(7));
    else {
      console.error(`unknown argument: ${a}\nusage: node bench/zip-compare.mjs [--sizes=100,1000,10000] [--runs=3] [--no-build]`);
      process.exit(2);
    }
  }
  if (!opts.sizes.every((n) => Number.isInteger(n) && n > 0) || !(opts.runs >= 1)) {
    console.error('--sizes takes positive integers, --runs a number >= 1');
    process.exit(2);
  }
  return opts;
}

function buildBinary() {
  console.log('building fs-sync-core example snapshot_bench (cargo build --release)…');
  const r = spawnSync('cargo', ['build', '--release', '-q', '-p', 'fs-sync-core', '--example', 'snapshot_bench'], {
    cwd: root, stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (r.error || r.status !== 0) {
    console.log(`cargo build failed (${r.error ? r.error.message : `exit ${r.status}`})`);
    return false;
  }
  return existsSync(bin);
}

function runJson(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 16 << 20 });
  if (r.error || r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.error ? r.error.message : `exit ${r.status}`}):\n${r.stderr}`);
  }
  const line = r.stdout.trim().split('\n').pop();
  try {
    return JSON.parse(line);
  } catch {
    throw new Error(`${cmd} ${args.join(' ')} printed no JSON line: ${r.stdout}`);
  }
}

function measure(runs, once) {
  const all = Array.from({ length: runs }, once);
  const ms = all.map((r) => r.ms).sort((x, y) => x - y);
  return {
    ms: ms[Math.floor(ms.length / 2)],
    peak_rss_kb: Math.max(...all.map((r) => r.peak_rss_kb)),
    bytes: all[0].bytes,
    files: all[0].files,
  };
}

function progress(op, tool, n, r) {
  console.log(`  ${op.padEnd(7)} ${tool.padEnd(8)} ${n} files: ${r.ms.toFixed(1)} ms, peak ${(r.peak_rss_kb / 1024).toFixed(0)} MiB`);
}

// The extraction produced every file of the tree, byte for byte (a sample of them).
function checkExtracted(src, out, n, tool) {
  const srcFiles = walk(src).map((p) => relative(src, p));
  const step = Math.max(1, Math.floor(srcFiles.length / 25));
  for (let i = 0; i < srcFiles.length; i += step) {
    const rel = srcFiles[i];
    if (!existsSync(join(out, rel)) || !readFileSync(join(out, rel)).equals(readFileSync(join(src, rel)))) {
      throw new Error(`${tool} extraction of ${n} files: ${rel} is missing or differs`);
    }
  }
}

function report(results, opts) {
  const targets = [];
  console.log(`\n## Snapshot zip: build and extract (median of ${opts.runs}, node ${process.version})\n`);
  for (const { n, inputBytes, build, extract, haveBin } of results) {
    console.log(`### ${n.toLocaleString('en-US')} files, ${(inputBytes / 1e6).toFixed(1)} MB\n`);
    console.log('| op | tool | ms | MB/s | peak RSS MiB | archive bytes | vs fs-sync |');
    console.log('|---|---|---:|---:|---:|---:|---|');
    const row = (op, tool, r, base) => {
      const vs = !base ? '—' : tool === 'fs-sync' ? '1.0x' : `${tool} / fs-sync = ${(r.ms / base.ms).toFixed(1)}x`;
      console.log(`| ${op} | ${tool} | ${r.ms.toFixed(1)} | ${(inputBytes / 1e3 / r.ms).toFixed(0)} | ${(r.peak_rss_kb / 1024).toFixed(0)} | ${r.bytes.toLocaleString('en-US')} | ${vs} |`);
    };
    for (const [tool, r] of Object.entries(build)) row('build', tool, r, build['fs-sync']);
    for (const [tool, r] of Object.entries(extract)) row('extract', tool, r, extract['fs-sync']);
    if (!haveBin) {
      console.log('\n(fs-sync binary not built: no fs-sync rows; unzipper extracted the fflate archive)\n');
      continue;
    }
    const lines = [
      ['build', 'JSZip', build.JSZip.ms / build['fs-sync'].ms, 2],
      ['build', 'fflate', build.fflate.ms / build['fs-sync'].ms, 1.3],
      ['extract', 'unzipper', extract.unzipper.ms / extract['fs-sync'].ms, 2],
    ];
    console.log('');
    for (const [op, tool, ratio, want] of lines) {
      const met = ratio >= want;
      targets.push(met);
      console.log(`- ${op} ≥ ${want}x faster than ${tool}: ${ratio.toFixed(2)}x — ${met ? 'met' : 'NOT met'}`);
    }
    console.log('');
  }
  if (targets.length) {
    console.log(`targets met: ${targets.filter(Boolean).length} of ${targets.length}`);
  }
}

/** Writes `sourceFiles(n, seed)` below `dir`; returns the content bytes. */
function generateTree(dir, n, seed) {
  let total = 0;
  for (const { path, content } of sourceFiles(n, seed)) {
    const file = join(dir, path);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, content);
    total += Buffer.byteLength(content);
  }
  return total;
}
