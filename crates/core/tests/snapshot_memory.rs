//! Writing and extracting take memory bounded by a piece, not by a file, and no copy of the
//! manifest. Its own test binary: the counting allocator sees every thread of the process, so
//! nothing else may run beside it, and its tests take turns ([`SERIAL`]).
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::sync::Mutex;

use common::alloc::{peak_heap, Counting};
use common::{write_zip, Tree};
use fs_sync_core::{
    extract_snapshot, ContentHasher, Limits, Manifest, ManifestEntry, SnapshotWriter, WriteOptions,
};

#[global_allocator]
static ALLOC: Counting = Counting;

/// Held by each test for its whole run: the counters are process-wide.
static SERIAL: Mutex<()> = Mutex::new(());

const PIECE: usize = 64 << 10;

/// `size` bytes of `path`'s content, piece by piece (never held whole): text that deflates well
/// for a `.csv`; for a `.bin`, one piece of noise over and over, which deflate cannot shrink (it
/// repeats beyond deflate's 32 KiB window).
fn pieces(path: &str, size: usize) -> impl Iterator<Item = Vec<u8>> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let piece: Vec<u8> = if path.ends_with(".csv") {
        b"0123456789,\n"
            .iter()
            .copied()
            .cycle()
            .take(PIECE)
            .collect()
    } else {
        (0..PIECE)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    };
    (0..size / PIECE).map(move |_| piece.clone())
}

/// Regression: a file was handed to the writer whole, so the edge held every binary (up to the
/// 50 MB bucket limit) in memory, and its compressed copy beside it.
#[test]
fn a_file_in_pieces_takes_memory_bounded_by_a_piece() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const SIZE: usize = 8 << 20;
    let files = ["big.bin", "big.csv"];
    let entries = files
        .iter()
        .map(|path| {
            let mut hasher = ContentHasher::new();
            pieces(path, SIZE).for_each(|p| hasher.update(&p));
            ManifestEntry {
                content_hash: hasher.finish(),
                file_type: "binary".into(),
                path: (*path).into(),
                size: SIZE as u64,
                version: 1,
            }
        })
        .collect();
    let manifest = Manifest::new("00000000-0000-0000-0000-000000000001", 1, entries).unwrap();

    let ((_, summary), peak) = peak_heap(|| {
        let mut w =
            SnapshotWriter::new(std::io::sink(), manifest, WriteOptions::default()).unwrap();
        for path in files {
            w.begin_file(path).unwrap();
            pieces(path, SIZE).for_each(|p| w.measure(&p).unwrap());
            w.write_header().unwrap();
            pieces(path, SIZE).for_each(|p| w.write_data(&p).unwrap());
            w.end_file().unwrap();
        }
        w.finish().unwrap()
    });
    // The noise is stored, the text deflated: both paths ran.
    assert!(summary.bytes > SIZE as u64 && summary.bytes < SIZE as u64 + (1 << 20));
    assert!(peak < 2 << 20, "two 8 MiB files took {peak} bytes of heap");
}

/// Regression: the manifest entry was written from a copy of the manifest's canonical JSON
/// (about 10 MB for 60,000 files, in a buffer grown to 16 MiB) beside the manifest itself.
#[test]
fn the_manifest_entry_is_written_without_a_copy_of_the_manifest() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let entries: Vec<ManifestEntry> = (0..60_000)
        .map(|i| {
            ManifestEntry::for_content(
                format!("src/features/f{:03}/components/Component{i}.tsx", i % 600),
                format!("export const c{i} = {i};\n").as_bytes(),
                1,
            )
        })
        .collect();
    let manifest = Manifest::new("00000000-0000-0000-0000-000000000001", 1, entries).unwrap();
    let json = manifest.to_canonical_json().len();
    // The central directory is reserved at its final size up front: 46 bytes and the name a file.
    let directory: usize = manifest.files.iter().map(|f| 46 + f.path.len()).sum();

    let (w, peak) =
        peak_heap(|| SnapshotWriter::new(std::io::sink(), manifest, WriteOptions::default()));
    drop(w.unwrap());
    // Beside the directory: checking the manifest (a set of its paths) and one deflate stream.
    assert!(
        peak < directory + (4 << 20),
        "starting an archive took {peak} bytes of heap for a {json}-byte manifest \
         ({directory} bytes of central directory)"
    );
}

/// Heap bytes the extraction of `tree` needed beyond what was live before it.
fn extraction_peak(tree: &Tree) -> usize {
    let zip = write_zip(tree, 1);
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("project");
    let (done, peak) =
        peak_heap(|| extract_snapshot(&zip[..], &target, &Limits::default(), |_| Ok(())));
    done.unwrap();
    let written = std::fs::metadata(target.join(tree.keys().next().unwrap())).unwrap();
    assert_eq!(written.len(), tree.values().next().unwrap().len() as u64);
    peak
}

/// Regression: a file was held whole in memory, twice (an 11 MB archive of a 1 GB file peaked at
/// 2 GiB). Large files now stream to disk.
#[test]
fn extraction_memory_is_bounded() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let one_big: Tree = [("big.csv".to_owned(), vec![b'7'; 64 << 20])].into();
    let peak = extraction_peak(&one_big);
    assert!(peak < 4 << 20, "a 64 MiB file took {peak} bytes of heap");

    let many: Tree = (0..10_000)
        .map(|i| (format!("src/m{:02}/f{i:05}.ts", i % 50), vec![b'x'; 2_000]))
        .collect();
    let peak = extraction_peak(&many);
    // The manifest (about 1.6 MB for 10,000 entries, parsed) plus the writers' bounded queue.
    assert!(peak < 24 << 20, "10,000 files took {peak} bytes of heap");
}
