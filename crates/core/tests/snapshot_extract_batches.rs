//! Extraction of trees large enough that small files travel to the writer threads in many batches
//! (and the reading thread writes some itself) while large files stream beside them: the output
//! is byte-equal, each file's stamp is what a `stat` of it returns, and an entry found corrupt
//! after thousands of files were written still leaves the target exactly as it was.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::path::Path;
use std::time::UNIX_EPOCH;

use common::{read_tree, write_zip, Tree};
use fs_sync_core::{extract_snapshot, Limits, SnapshotError};

/// 3,000 small source files in 60 folders, with files over the small-file threshold (256 KiB)
/// among them, and a last file that sorts after everything.
fn big_tree() -> Tree {
    let mut tree: Tree = (0..3_000)
        .map(|i| {
            let body = format!("export const value{i} = {i};\n").repeat(1 + i % 40);
            (
                format!("src/m{:02}/file{i:04}.ts", i % 60),
                body.into_bytes(),
            )
        })
        .collect();
    for i in 0..3 {
        let large = format!("{i},row,{}\n", i * 7).repeat(40_000);
        tree.insert(
            format!("src/m{:02}/large{i}.csv", i * 20),
            large.into_bytes(),
        );
    }
    tree.insert("zz-last.ts".into(), b"export const last = 1;\n".to_vec());
    tree
}

/// No staging folder (or anything else of an extraction's) left under `target`.
fn assert_no_staging(target: &Path) {
    let reserved = target.join(".fs-sync");
    let left: Vec<_> = std::fs::read_dir(&reserved)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left in {reserved:?}: {left:?}");
}

#[test]
fn many_batches_extract_byte_equal_into_a_fresh_and_an_existing_target() {
    let tree = big_tree();
    let zip = write_zip(&tree, 1);
    let dir = tempfile::tempdir().unwrap();

    let fresh = dir.path().join("fresh");
    let done = extract_snapshot(&zip[..], &fresh, &Limits::default(), |_| Ok(())).unwrap();
    assert_eq!(done.manifest.files.len(), tree.len());
    assert_eq!(read_tree(&fresh), tree);

    let existing = dir.path().join("existing");
    std::fs::create_dir_all(existing.join("src/m07")).unwrap();
    std::fs::write(existing.join("src/m07/file0007.ts"), b"stale").unwrap();
    std::fs::write(existing.join("src/m07/untracked.ts"), b"mine").unwrap();
    extract_snapshot(&zip[..], &existing, &Limits::default(), |_| Ok(())).unwrap();
    let mut expected = tree.clone();
    expected.insert("src/m07/untracked.ts".into(), b"mine".to_vec());
    assert_eq!(read_tree(&existing), expected);
    assert_no_staging(&existing);
}

#[test]
fn a_corrupt_last_entry_leaves_the_target_as_it_was() {
    let tree = big_tree();
    let mut zip = write_zip(&tree, 1);
    // The first occurrence of the name is the local header's; its data follows (no extra field).
    let name = b"zz-last.ts";
    let at = zip
        .windows(name.len())
        .position(|w| w == name)
        .expect("last entry's local header");
    zip[at + name.len()] ^= 0x55;

    let dir = tempfile::tempdir().unwrap();
    let existing = dir.path().join("existing");
    std::fs::create_dir_all(existing.join("src/m07")).unwrap();
    std::fs::write(existing.join("src/m07/file0007.ts"), b"stale").unwrap();
    std::fs::write(existing.join("keep.txt"), b"precious").unwrap();
    let before = read_tree(&existing);
    let err = extract_snapshot(&zip[..], &existing, &Limits::default(), |_| Ok(())).unwrap_err();
    assert!(
        matches!(
            err,
            SnapshotError::CrcMismatch { .. }
                | SnapshotError::HashMismatch { .. }
                | SnapshotError::Malformed(_)
        ),
        "{err}"
    );
    assert!(err.to_string().contains("zz-last.ts"), "{err}");
    assert_eq!(read_tree(&existing), before, "target changed");
    assert_no_staging(&existing);

    let fresh = dir.path().join("fresh");
    extract_snapshot(&zip[..], &fresh, &Limits::default(), |_| Ok(())).unwrap_err();
    assert!(!fresh.exists(), "a refused archive left {fresh:?} behind");
}

#[test]
fn each_written_file_has_the_stamp_a_stat_in_place_returns() {
    let tree = big_tree();
    let zip = write_zip(&tree, 1);
    let dir = tempfile::tempdir().unwrap();
    // A fresh target (top-level folders moved in whole) and one whose folder already exists
    // (files moved in one by one, one of them over a stale copy).
    let existing = dir.path().join("existing");
    std::fs::create_dir_all(existing.join("src/m07")).unwrap();
    std::fs::write(existing.join("src/m07/file0007.ts"), b"stale").unwrap();
    for target in [dir.path().join("fresh"), existing] {
        let done = extract_snapshot(&zip[..], &target, &Limits::default(), |_| Ok(())).unwrap();
        let mut paths: Vec<&String> = done.stamps.keys().collect();
        paths.sort();
        assert_eq!(paths, tree.keys().collect::<Vec<_>>(), "one stamp per file");
        for (path, stamp) in &done.stamps {
            let meta = std::fs::metadata(target.join(path)).unwrap();
            let mtime = meta.modified().unwrap().duration_since(UNIX_EPOCH).unwrap();
            assert_eq!(
                (stamp.size, stamp.mtime_ns),
                (meta.len(), mtime.as_nanos() as u64),
                "{path} in {target:?}"
            );
        }
    }
}
