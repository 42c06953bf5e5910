//! Write → read round trips, determinism, and acceptance by independent zip readers.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::process::Command;

use common::{python, read_tree, sample_tree, write_zip, Tree, PROJECT};
use fs_sync_core::{extract_snapshot, read_snapshot, Limits, MANIFEST_PATH};
use proptest::prelude::*;

fn read_back(zip: &[u8]) -> Tree {
    let mut out = Tree::new();
    let manifest = read_snapshot(
        zip,
        &Limits::default(),
        |_| Ok(()),
        |entry, data| {
            let mut bytes = Vec::new();
            data.read_to_end(&mut bytes)?;
            out.insert(entry.path.clone(), bytes);
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(manifest.project_id, PROJECT);
    out
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9_-]{1,10}",
        "[a-z]{1,6}\\.(ts|tsx|json|md|png|css)",
        "[éüñ日本語ファイル]{1,4}",
        "\\.[a-z]{1,5}",
    ]
}

fn tree() -> impl Strategy<Value = Tree> {
    let path = prop::collection::vec(segment(), 1..5).prop_map(|s| s.join("/"));
    let content = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..2000),
        ("[a-z ]{0,40}", 0..200usize).prop_map(|(s, n)| s.repeat(n).into_bytes()),
    ];
    prop::collection::btree_map(path, content, 0..40).prop_map(|mut t| {
        // A path that is also a folder of another path cannot exist on a filesystem.
        let paths: Vec<String> = t.keys().cloned().collect();
        t.retain(|p, _| {
            fs_sync_core::validate_path(p).is_ok()
                && !paths.iter().any(|q| q.starts_with(&format!("{p}/")))
        });
        t
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn round_trip_is_byte_identical(t in tree(), seq in 0u64..1_000_000) {
        let zip = write_zip(&t, seq);
        prop_assert_eq!(read_back(&zip), t.clone());
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("project");
        let done = extract_snapshot(&zip[..], &target, &Limits::default(), |_| Ok(())).unwrap();
        prop_assert_eq!(done.manifest.as_of_seq, seq);
        prop_assert_eq!(read_tree(&target), t);
    }

    #[test]
    fn same_tree_gives_same_bytes(t in tree()) {
        let a = write_zip(&t, 7);
        // Insertion order must not matter: rebuild the map in reverse.
        let reversed: Tree = t.iter().rev().map(|(k, v)| (k.clone(), v.clone())).collect();
        prop_assert_eq!(a, write_zip(&reversed, 7));
    }
}

#[test]
fn manifest_is_first_and_entries_sorted() {
    let dir = tempfile::tempdir().unwrap();
    let zip_path = dir.path().join("s.zip");
    std::fs::write(&zip_path, write_zip(&sample_tree(), 3)).unwrap();
    let names = python(
        "import zipfile,sys,json; print(json.dumps(zipfile.ZipFile(sys.argv[1]).namelist()))",
        &[zip_path.to_str().unwrap()],
    );
    let names: Vec<String> = serde_json::from_str(&names).unwrap();
    assert_eq!(names[0], MANIFEST_PATH);
    let mut sorted = names[1..].to_vec();
    sorted.sort();
    assert_eq!(names[1..], sorted[..]);
}

#[test]
fn python_zipfile_reads_identical_contents() {
    let tree = sample_tree();
    let dir = tempfile::tempdir().unwrap();
    let zip_path = dir.path().join("s.zip");
    std::fs::write(&zip_path, write_zip(&tree, 11)).unwrap();
    let out = python(
        r#"
import zipfile, sys, json, hashlib
z = zipfile.ZipFile(sys.argv[1])
assert z.testzip() is None
print(json.dumps({i.filename: hashlib.sha256(z.read(i)).hexdigest() for i in z.infolist()}))
"#,
        &[zip_path.to_str().unwrap()],
    );
    let hashes: std::collections::BTreeMap<String, String> = serde_json::from_str(&out).unwrap();
    for (path, bytes) in &tree {
        assert_eq!(hashes[path], fs_sync_core::content_hash(bytes), "{path}");
    }
    assert_eq!(hashes.len(), tree.len() + 1);
}

#[test]
fn unzip_cli_tests_and_extracts() {
    let tree = sample_tree();
    let dir = tempfile::tempdir().unwrap();
    let zip_path = dir.path().join("s.zip");
    std::fs::write(&zip_path, write_zip(&tree, 11)).unwrap();
    let test = Command::new("unzip")
        .arg("-t")
        .arg(&zip_path)
        .output()
        .unwrap();
    assert!(
        test.status.success(),
        "{}",
        String::from_utf8_lossy(&test.stdout)
    );
    assert!(String::from_utf8_lossy(&test.stdout).contains("No errors detected"));
    let out = dir.path().join("x");
    let status = Command::new("unzip")
        .arg("-q")
        .arg(&zip_path)
        .arg("-d")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::remove_dir_all(out.join(".fs-sync")).unwrap();
    assert_eq!(read_tree(&out), tree);
}

/// Regression: extraction used to replace the whole target, deleting what a dev server or a
/// package manager had written there, and staged beside the target (impossible on a mount point).
#[test]
fn extraction_keeps_untracked_entries_and_moves_aside_what_is_in_the_way() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("project");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::create_dir_all(target.join("node_modules/x")).unwrap();
    std::fs::write(target.join("node_modules/x/index.js"), b"untracked").unwrap();
    // A folder where the project has a file.
    std::fs::create_dir_all(target.join("package.json")).unwrap();
    std::fs::write(target.join("package.json/cache"), b"in the way").unwrap();
    // A file where the project has a folder.
    std::fs::write(target.join("docs"), b"in the way too").unwrap();
    // A link where the project has a folder: never followed out of the target.
    std::os::unix::fs::symlink(&outside, target.join("src")).unwrap();
    // An old version of a project file: replaced.
    std::fs::create_dir_all(target.join("assets")).unwrap();
    std::fs::write(target.join("assets/logo.png"), b"old logo").unwrap();

    let done = extract_snapshot(
        &write_zip(&sample_tree(), 1)[..],
        &target,
        &Limits::default(),
        |_| Ok(()),
    )
    .unwrap();

    let mut displaced: Vec<&str> = done.displaced.iter().map(|(p, _)| p.as_str()).collect();
    displaced.sort_unstable();
    assert_eq!(displaced, ["docs", "package.json", "src"]);
    assert!(
        std::fs::read_dir(&outside).unwrap().next().is_none(),
        "wrote through a link"
    );
    let mut expected = sample_tree();
    expected.insert("node_modules/x/index.js".into(), b"untracked".to_vec());
    let mut found = Tree::new();
    for (path, bytes) in read_tree_skipping_links(&target) {
        if let Some((_, rest)) = path.split_once(".fs-sync/displaced/") {
            let (_, original) = rest.split_once('/').unwrap();
            found.insert(format!("displaced:{original}"), bytes);
        } else {
            found.insert(path, bytes);
        }
    }
    expected.insert(
        "displaced:package.json/cache".into(),
        b"in the way".to_vec(),
    );
    expected.insert("displaced:docs".into(), b"in the way too".to_vec());
    expected.insert("displaced:src".into(), b"link".to_vec());
    assert_eq!(found, expected);
    let reserved: Vec<_> = std::fs::read_dir(target.join(".fs-sync"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(reserved, ["displaced"], "staging folder left behind");
    let siblings: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(siblings, ["outside", "project"]);
}

/// Regression: staging folders of an extraction killed midway were never removed.
#[test]
fn a_killed_extractions_staging_is_removed_by_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("project");
    let stale = target.join(".fs-sync/staging-1-2-3");
    std::fs::create_dir_all(stale.join("src")).unwrap();
    std::fs::write(stale.join("src/half.ts"), b"half").unwrap();
    extract_snapshot(
        &write_zip(&sample_tree(), 1)[..],
        &target,
        &Limits::default(),
        |_| Ok(()),
    )
    .unwrap();
    assert_eq!(read_tree(&target), sample_tree());
}

/// Like [`read_tree`], but records a symbolic link as the text "link" instead of refusing it.
fn read_tree_skipping_links(root: &std::path::Path) -> Tree {
    let mut out = Tree::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let kind = entry.file_type().unwrap();
            let rel = entry
                .path()
                .strip_prefix(root)
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_symlink() {
                out.insert(rel, b"link".to_vec());
            } else {
                out.insert(rel, std::fs::read(entry.path()).unwrap());
            }
        }
    }
    out
}
