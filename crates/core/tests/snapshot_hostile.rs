//! Hostile archives, written by independent writers (Python's zipfile, the zip CLI), are refused
//! with a clear error and leave the target untouched.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::path::Path;
use std::process::Command;

use common::{python, read_tree, Tree, PROJECT};
use fs_sync_core::{extract_snapshot, read_snapshot, Limits, PathRule, SnapshotError};

struct Fixture {
    dir: tempfile::TempDir,
    zip: std::path::PathBuf,
    target: std::path::PathBuf,
    before: Tree,
}

fn fixture(spec: serde_json::Value, manifest: serde_json::Value, manifest_last: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("hostile.zip");
    python(
        common::HOSTILE_WRITER,
        &[
            zip.to_str().unwrap(),
            &spec.to_string(),
            &manifest.to_string(),
            if manifest_last { "1" } else { "0" },
            PROJECT,
        ],
    );
    with_target(dir, zip)
}

fn with_target(dir: tempfile::TempDir, zip: std::path::PathBuf) -> Fixture {
    let target = dir.path().join("project");
    std::fs::create_dir_all(target.join("src")).unwrap();
    std::fs::write(target.join("src/keep.ts"), b"precious").unwrap();
    let before = read_tree(&target);
    Fixture {
        dir,
        zip,
        target,
        before,
    }
}

impl Fixture {
    fn extract(&self, limits: &Limits) -> SnapshotError {
        let file = std::fs::File::open(&self.zip).unwrap();
        let err = extract_snapshot(file, &self.target, limits, |_| Ok(()))
            .expect_err("hostile archive accepted");
        assert_eq!(read_tree(&self.target), self.before, "target changed");
        let leftovers: Vec<_> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".fs-sync-"))
            .collect();
        assert!(
            leftovers.is_empty(),
            "staging folder left behind: {leftovers:?}"
        );
        assert!(
            !self.dir.path().join("evil.txt").exists()
                && !Path::new("/tmp/fs-sync-evil.txt").exists()
        );
        err
    }
}

fn ok_entry() -> serde_json::Value {
    serde_json::json!({"name": "ok.txt", "data": "fine"})
}

fn ok_manifest() -> serde_json::Value {
    serde_json::json!([{"path": "ok.txt", "data": "fine"}])
}

#[test]
fn zip_slip_is_refused() {
    let f = fixture(
        serde_json::json!([ok_entry(), {"name": "../evil.txt", "data": "x"}]),
        ok_manifest(),
        false,
    );
    let err = f.extract(&Limits::default());
    assert!(
        matches!(
            err,
            SnapshotError::UnsafePath {
                rule: PathRule::DotSegment,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("../evil.txt"), "{err}");
}

#[test]
fn absolute_path_is_refused() {
    let f = fixture(
        serde_json::json!([ok_entry(), {"name": "/tmp/fs-sync-evil.txt", "data": "x"}]),
        ok_manifest(),
        false,
    );
    let err = f.extract(&Limits::default());
    assert!(
        matches!(
            err,
            SnapshotError::UnsafePath {
                rule: PathRule::Absolute,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn backslash_path_is_refused() {
    let f = fixture(
        serde_json::json!([ok_entry(), {"name": "..\\evil.txt", "data": "x"}]),
        ok_manifest(),
        false,
    );
    let err = f.extract(&Limits::default());
    assert!(
        matches!(
            err,
            SnapshotError::UnsafePath {
                rule: PathRule::Backslash,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn symlink_is_refused() {
    // Listed in the manifest with the right hash: only its link mode gives it away.
    let f = fixture(
        serde_json::json!([ok_entry(), {"name": "link", "data": "/etc/passwd", "link": true}]),
        serde_json::json!([{"path": "ok.txt", "data": "fine"}, {"path": "link", "data": "/etc/passwd"}]),
        false,
    );
    let err = f.extract(&Limits::default());
    assert!(matches!(err, SnapshotError::Symlink { .. }), "{err}");
}

#[test]
fn symlink_from_zip_cli_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join(".fs-sync")).unwrap();
    let target_hash = fs_sync_core::content_hash(b"/etc/passwd");
    let manifest = format!(
        r#"{{"as_of_seq":1,"files":[{{"content_hash":"{target_hash}","file_type":"text","path":"link","size":11,"version":1}}],"format":"fs-sync-snapshot/1","project_id":"{PROJECT}"}}"#
    );
    std::fs::write(src.join(".fs-sync/manifest.json"), manifest).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", src.join("link")).unwrap();
    let zip = dir.path().join("cli.zip");
    let status = Command::new("zip")
        .current_dir(&src)
        .args(["-q", "-X", "--symlinks"])
        .arg(&zip)
        .args([".fs-sync/manifest.json", "link"])
        .status()
        .unwrap();
    assert!(status.success());
    let f = with_target(dir, zip);
    let err = f.extract(&Limits::default());
    assert!(matches!(err, SnapshotError::Symlink { .. }), "{err}");
}

#[test]
fn duplicate_entry_is_refused() {
    let f = fixture(
        serde_json::json!([ok_entry(), ok_entry()]),
        ok_manifest(),
        false,
    );
    let err = f.extract(&Limits::default());
    assert!(matches!(err, SnapshotError::Duplicate { .. }), "{err}");
}

#[test]
fn entry_absent_from_manifest_is_refused() {
    let f = fixture(
        serde_json::json!([ok_entry(), {"name": "extra.txt", "data": "x"}]),
        ok_manifest(),
        false,
    );
    let err = f.extract(&Limits::default());
    assert!(
        matches!(err, SnapshotError::NotInManifest { ref path } if path == "extra.txt"),
        "{err}"
    );
}

#[test]
fn manifest_entry_missing_from_archive_is_refused() {
    let f = fixture(
        serde_json::json!([ok_entry()]),
        serde_json::json!([{"path": "ok.txt", "data": "fine"}, {"path": "gone.txt", "data": "x"}]),
        false,
    );
    let err = f.extract(&Limits::default());
    assert!(
        matches!(err, SnapshotError::Missing { ref path } if path == "gone.txt"),
        "{err}"
    );
}

#[test]
fn content_not_matching_manifest_is_refused() {
    let f = fixture(
        serde_json::json!([{"name": "ok.txt", "data": "fin3"}]),
        ok_manifest(),
        false,
    );
    let err = f.extract(&Limits::default());
    assert!(matches!(err, SnapshotError::HashMismatch { .. }), "{err}");
    let f = fixture(
        serde_json::json!([{"name": "ok.txt", "data": "fine!"}]),
        ok_manifest(),
        false,
    );
    let err = f.extract(&Limits::default());
    assert!(matches!(err, SnapshotError::SizeMismatch { .. }), "{err}");
}

#[test]
fn manifest_must_come_first() {
    let f = fixture(serde_json::json!([ok_entry()]), ok_manifest(), true);
    let err = f.extract(&Limits::default());
    assert!(
        matches!(err, SnapshotError::ManifestNotFirst { .. }),
        "{err}"
    );
}

#[test]
fn directory_entry_is_refused() {
    let f = fixture(
        serde_json::json!([ok_entry(), {"name": "dir/", "dir": true}]),
        ok_manifest(),
        false,
    );
    let err = f.extract(&Limits::default());
    assert!(matches!(err, SnapshotError::DirectoryEntry { .. }), "{err}");
}

#[test]
fn archives_over_the_limits_are_refused() {
    let entries: Vec<_> = (0..5)
        .map(|i| serde_json::json!({"name": format!("f{i}.txt"), "data": "0123456789"}))
        .collect();
    let listed: Vec<_> = (0..5)
        .map(|i| serde_json::json!({"path": format!("f{i}.txt"), "data": "0123456789"}))
        .collect();
    let f = fixture(serde_json::json!(entries), serde_json::json!(listed), false);
    let err = f.extract(&Limits {
        max_entries: 3,
        ..Limits::default()
    });
    assert!(
        matches!(
            err,
            SnapshotError::TooManyEntries {
                limit: 3,
                actual: 5
            }
        ),
        "{err}"
    );
    let err = f.extract(&Limits {
        max_total_bytes: 40,
        ..Limits::default()
    });
    assert!(
        matches!(
            err,
            SnapshotError::TooLarge {
                limit: 40,
                actual: 50
            }
        ),
        "{err}"
    );
}

/// Regression: a per-entry ratio rule refused legitimate compressible files (1.5 MB of zeros
/// expands more than 100x), so no container of such a project could start.
#[test]
fn highly_compressible_files_extract() {
    let mut tree = common::sample_tree();
    tree.insert("data/zeros.csv".into(), vec![b'0'; 1_500_000]);
    tree.insert("data/big.bin".into(), vec![0; 24 << 20]);
    let zip = common::write_zip(&tree, 1);
    assert!(zip.len() < 200_000, "the test wants a high ratio");
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("project");
    extract_snapshot(&zip[..], &target, &Limits::default(), |_| Ok(())).unwrap();
    assert_eq!(read_tree(&target), tree);
}

/// Regression: a bomb split into many entries each under the ratio rule's threshold wrote far
/// more than any limit. The manifest's declared total is now checked before the first byte.
#[test]
fn archives_declaring_more_than_the_limit_write_nothing() {
    let entries: Vec<_> = (0..9)
        .map(|i| serde_json::json!({"name": format!("z{i}.bin"), "zeros": 1 << 20}))
        .collect();
    let listed: Vec<_> = (0..9)
        .map(|i| serde_json::json!({"path": format!("z{i}.bin"), "zeros": 1 << 20, "data": ""}))
        .collect();
    let f = fixture(serde_json::json!(entries), serde_json::json!(listed), false);
    let limits = Limits {
        max_total_bytes: 8 << 20,
        ..Limits::default()
    };
    let mut handed_out = 0;
    let err = read_snapshot(
        std::fs::File::open(&f.zip).unwrap(),
        &limits,
        |_| Ok(()),
        |_, _| {
            handed_out += 1;
            Ok(())
        },
    )
    .unwrap_err();
    assert_eq!(
        handed_out, 0,
        "files handed out before the total was checked"
    );
    assert!(
        matches!(err, SnapshotError::TooLarge { limit, actual } if limit == 8 << 20 && actual == 9 << 20),
        "{err}"
    );
    let err = f.extract(&limits);
    assert!(matches!(err, SnapshotError::TooLarge { .. }), "{err}");
}

/// Finds `name` in the local header and the central directory and makes both declare `size`.
fn declare_size(zip: &mut [u8], name: &[u8], size: u32) {
    let at: Vec<usize> = zip
        .windows(name.len())
        .enumerate()
        .filter(|(_, w)| *w == name)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        at.len(),
        2,
        "once in the local header, once in the central directory"
    );
    // The name follows the 30-byte local header (size at 22) and the 46-byte central record
    // (size at 24).
    zip[at[0] - 30 + 22..at[0] - 30 + 26].copy_from_slice(&size.to_le_bytes());
    zip[at[1] - 46 + 24..at[1] - 46 + 28].copy_from_slice(&size.to_le_bytes());
}

/// An entry whose data inflates past what its header and the manifest declare is cut off at the
/// declared size: no accepted or refused archive hands out more than it declared.
#[test]
fn an_entry_never_yields_more_than_declared() {
    let f = fixture(
        serde_json::json!([{"name": "liar.bin", "zeros": 4 << 20}]),
        serde_json::json!([{"path": "liar.bin", "zeros": 10, "data": ""}]),
        false,
    );
    let mut zip = std::fs::read(&f.zip).unwrap();
    declare_size(&mut zip, b"liar.bin", 10);
    std::fs::write(&f.zip, &zip).unwrap();
    let mut got = 0u64;
    let err = read_snapshot(
        &zip[..],
        &Limits::default(),
        |_| Ok(()),
        |_, data| {
            got = std::io::copy(data, &mut std::io::sink())?;
            Ok(())
        },
    )
    .unwrap_err();
    assert!(got <= 10, "{got} bytes handed out for a 10-byte entry");
    assert!(
        matches!(&err, SnapshotError::SizeMismatch { path, expected: 10, actual: 11 } if path == "liar.bin"),
        "{err}"
    );
    let err = f.extract(&Limits::default());
    assert!(matches!(err, SnapshotError::SizeMismatch { .. }), "{err}");
}

/// Regression: the project check ran after the extracted tree replaced the target, so a snapshot
/// of another project destroyed it. `accept` runs before anything is written.
#[test]
fn a_refused_manifest_leaves_the_target_untouched() {
    let tree = common::sample_tree();
    let zip = common::write_zip(&tree, 1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.zip");
    std::fs::write(&path, &zip).unwrap();
    let f = with_target(dir, path);
    let err = extract_snapshot(&zip[..], &f.target, &Limits::default(), |m| {
        Err(SnapshotError::WrongProject {
            expected: "another".into(),
            found: m.project_id.clone(),
        })
    })
    .unwrap_err();
    assert!(matches!(err, SnapshotError::WrongProject { .. }), "{err}");
    assert_eq!(read_tree(&f.target), f.before, "target changed");
}

/// Regression: a failed write surfaced as a bare i/o error naming no entry.
#[test]
fn write_failures_name_the_entry() {
    let zip = common::write_zip(&common::sample_tree(), 1);
    let err = read_snapshot(
        &zip[..],
        &Limits::default(),
        |_| Ok(()),
        |entry, _| {
            if entry.path == "src/App.tsx" {
                return Err(std::io::Error::other("disk full"));
            }
            Ok(())
        },
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "writing \"src/App.tsx\": disk full");
}

/// Regression: an archive cut inside its end record gave a bare "failed to fill whole buffer".
#[test]
fn truncated_archive_is_refused() {
    let tree = common::sample_tree();
    let zip = common::write_zip(&tree, 1);
    for (cut, inside) in [
        (10, "the end of central directory record"),
        (30, "a central directory"),
        (zip.len() - 200, "is truncated"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cut.zip");
        std::fs::write(&path, &zip[..zip.len() - cut]).unwrap();
        let f = with_target(dir, path);
        let err = f.extract(&Limits::default());
        assert!(matches!(err, SnapshotError::Malformed(_)), "{err}");
        assert!(err.to_string().contains(inside), "cut {cut}: {err}");
    }
}

#[test]
fn central_directory_disagreeing_with_local_headers_is_refused() {
    // A name that differs between the local header and the central directory is how archives
    // show one file to one reader and another to the next.
    let mut zip = common::write_zip(&common::sample_tree(), 1);
    let name = b"src/App.tsx";
    let positions: Vec<usize> = zip
        .windows(name.len())
        .enumerate()
        .filter(|(_, w)| w == name)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        positions.len(),
        2,
        "once in the local header, once in the central directory"
    );
    zip[positions[1] + 4] = b'B';
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mismatch.zip");
    std::fs::write(&path, &zip).unwrap();
    let f = with_target(dir, path);
    let err = f.extract(&Limits::default());
    assert!(matches!(err, SnapshotError::CentralMismatch(_)), "{err}");
}

#[test]
fn file_that_is_also_a_folder_is_refused() {
    let f = fixture(
        serde_json::json!([{"name": "src", "data": "x"}, {"name": "src/a.ts", "data": "y"}]),
        serde_json::json!([{"path": "src", "data": "x"}, {"path": "src/a.ts", "data": "y"}]),
        false,
    );
    let err = f.extract(&Limits::default());
    assert!(
        matches!(
            err,
            SnapshotError::Manifest(fs_sync_core::ManifestError::PathConflict { .. })
        ),
        "{err}"
    );
}
