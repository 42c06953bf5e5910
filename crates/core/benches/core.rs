//! Criterion benchmarks: hashing throughput and snapshot build/extract on source-like trees.
//!
//! `cargo bench -p fs-sync-core`. The comparisons with sha256sum, JSZip, fflate and unzipper live
//! in `bench/` (they need other runtimes in the same run).
// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use fs_sync_core::{
    content_hash, extract_snapshot, read_snapshot, Limits, Manifest, ManifestEntry, SnapshotWriter,
    WriteOptions,
};

/// Deterministic source-like text of about `len` bytes.
fn source_file(seed: u64, len: usize) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "const",
        "export",
        "function",
        "return",
        "import",
        "from",
        "props",
        "state",
        "useEffect",
        "=>",
        "{",
        "}",
        "(",
        ")",
        ";",
        "await",
        "fetch",
        "value",
        "items.map",
        "className",
    ];
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(WORDS[(x % WORDS.len() as u64) as usize].as_bytes());
        out.push(if x % 9 == 0 { b'\n' } else { b' ' });
    }
    out
}

fn tree(n: usize) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = (0..n)
        .map(|i| {
            let path = format!("src/m{}/c{}/file{i}.tsx", i % 17, i % 5);
            (path, source_file(i as u64, 5000))
        })
        .collect();
    files.sort();
    files
}

fn build(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let entries = files
        .iter()
        .map(|(p, b)| ManifestEntry::for_content(p.as_str(), b, 1))
        .collect();
    let manifest = Manifest::new("bench", 1, entries).unwrap();
    let mut w = SnapshotWriter::new(Vec::new(), manifest, WriteOptions::default()).unwrap();
    for (p, b) in files {
        w.add_file(p, b).unwrap();
    }
    w.finish().unwrap().0
}

fn hashing(c: &mut Criterion) {
    let mut g = c.benchmark_group("content_hash");
    for size in [1usize << 10, 16 << 20] {
        let data = source_file(7, size);
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::from_parameter(size), &data, |b, d| {
            b.iter(|| content_hash(d))
        });
    }
    g.finish();
}

fn snapshots(c: &mut Criterion) {
    for n in [100usize, 1_000, 10_000] {
        let files = tree(n);
        let bytes: u64 = files.iter().map(|(_, b)| b.len() as u64).sum();
        let zip = build(&files);
        let mut g = c.benchmark_group(format!("snapshot_{n}_files"));
        g.throughput(Throughput::Bytes(bytes));
        if n >= 10_000 {
            g.sample_size(10);
        }
        g.bench_function("build", |b| b.iter(|| build(&files)));
        g.bench_function("read_verify", |b| {
            b.iter(|| read_snapshot(&zip[..], &Limits::default(), |_, _| Ok(())).unwrap())
        });
        let dir = tempfile::tempdir().unwrap();
        let mut round = 0u32;
        g.bench_function("extract", |b| {
            b.iter(|| {
                round += 1;
                let target = dir.path().join(format!("t{round}"));
                extract_snapshot(&zip[..], &target, &Limits::default()).unwrap();
            })
        });
        g.finish();
    }
}

criterion_group!(benches, hashing, snapshots);
criterion_main!(benches);
