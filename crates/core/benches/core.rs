//! Criterion benchmarks: hashing throughput and snapshot build/extract on source-like trees, with
//! extraction's write floor beside it.
//!
//! `cargo bench -p fs-sync-core`. The comparisons with sha256sum, JSZip, fflate and unzipper live
//! in `bench/` (they need other runtimes in the same run).
// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use common::{source_file, source_tree as tree};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use fs_sync_core::{
    content_hash, extract_snapshot, read_snapshot, Limits, Manifest, ManifestEntry, SnapshotWriter,
    WriteOptions,
};

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
            b.iter(|| {
                read_snapshot(&zip[..], &Limits::default(), |_| Ok(()), |_, _| Ok(())).unwrap()
            })
        });
        let dir = tempfile::tempdir().unwrap();
        let mut round = 0u32;
        g.bench_function("extract", |b| {
            b.iter(|| {
                round += 1;
                let target = dir.path().join(format!("t{round}"));
                extract_snapshot(&zip[..], &target, &Limits::default(), |_| Ok(())).unwrap();
            })
        });
        // The floor extraction is held to (bench/extract-floor.mjs): the same files written with
        // create, write, close and each folder made once; no zip, no hashing, no verification.
        g.bench_function("write_floor", |b| {
            b.iter(|| {
                round += 1;
                let target = dir.path().join(format!("t{round}"));
                let mut made = std::collections::HashSet::new();
                for (path, bytes) in &files {
                    let dest = target.join(path);
                    let parent = dest.parent().unwrap().to_path_buf();
                    if made.insert(parent.clone()) {
                        std::fs::create_dir_all(&parent).unwrap();
                    }
                    std::fs::write(&dest, bytes).unwrap();
                }
            })
        });
        g.finish();
    }
}

criterion_group!(benches, hashing, snapshots);
criterion_main!(benches);
