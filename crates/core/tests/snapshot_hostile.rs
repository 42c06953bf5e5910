//! Hostile archives, written by independent writers (Python's zipfile, the zip CLI), are refused
//! with a clear error and leave the target untouched.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::path::Path;
use std::process::Command;

use common::{python, read_tree, Tree, PROJECT};
use fs_sync_core::{extract_snapshot, Limits, PathRule, SnapshotError};

/// Writes a zip with Python's zipfile. `spec` is a JSON list of entries
/// `{name, data?, data_of?, zeros?, link?, dir?}`; `manifest` lists `{path, data}` whose hashes
/// Python computes itself. The manifest entry is written first unless `manifest_last`.
const WRITER: &str = r#"
import hashlib, json, sys, zipfile
out, spec, manifest, manifest_last = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4] == "1"
files = []
for m in manifest:
    data = m["data"].encode() if "zeros" not in m else b"\0" * m["zeros"]
    files.append({"content_hash": hashlib.sha256(data).hexdigest(), "file_type": "text",
                  "path": m["path"], "size": len(data), "version": 1})
files.sort(key=lambda f: f["path"].encode())
man = json.dumps({"as_of_seq": 1, "files": files, "format": "fs-sync-snapshot/1",
                  "project_id": sys.argv[5]}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    if not manifest_last:
        z.writestr(".fs-sync/manifest.json", man)
    for e in spec:
        info = zipfile.ZipInfo(e["name"])
        info.compress_type = zipfile.ZIP_DEFLATED
        if e.get("link"):
            info.create_system = 3
            info.external_attr = 0o120777 << 16
        if e.get("dir"):
            info.external_attr = (0o040755 << 16) | 0x10
        data = b"\0" * e["zeros"] if "zeros" in e else e.get("data", "").encode()
        z.writestr(info, data)
    if manifest_last:
        z.writestr(".fs-sync/manifest.json", man)
"#;

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
        WRITER,
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
        let err =
            extract_snapshot(file, &self.target, limits).expect_err("hostile archive accepted");
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

#[test]
fn zip_bomb_ratio_is_refused() {
    let f = fixture(
        serde_json::json!([{"name": "zeros.bin", "zeros": 4 << 20}]),
        serde_json::json!([{"path": "zeros.bin", "zeros": 4 << 20, "data": ""}]),
        false,
    );
    let err = f.extract(&Limits::default());
    assert!(
        matches!(err, SnapshotError::CompressionRatio { limit: 100, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("zeros.bin"));
}

#[test]
fn truncated_archive_is_refused() {
    let tree = common::sample_tree();
    let zip = common::write_zip(&tree, 1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.zip");
    std::fs::write(&path, &zip[..zip.len() - 30]).unwrap();
    let f = with_target(dir, path);
    let err = f.extract(&Limits::default());
    assert!(
        matches!(err, SnapshotError::Malformed(_) | SnapshotError::Io(_)),
        "{err}"
    );
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
