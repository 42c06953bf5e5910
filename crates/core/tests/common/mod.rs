//! Shared builders for the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use fs_sync_core::{Manifest, ManifestEntry, SnapshotWriter, WriteOptions};

pub const PROJECT: &str = "6f1c9a52-3d0e-4b7a-9c1f-0a2b3c4d5e6f";

/// A project tree: path → bytes.
pub type Tree = BTreeMap<String, Vec<u8>>;

pub fn manifest_for(tree: &Tree, as_of_seq: u64) -> Manifest {
    let files = tree
        .iter()
        .map(|(path, bytes)| ManifestEntry::for_content(path.as_str(), bytes, 1))
        .collect();
    Manifest::new(PROJECT, as_of_seq, files).unwrap()
}

pub fn write_zip(tree: &Tree, as_of_seq: u64) -> Vec<u8> {
    let mut w = SnapshotWriter::new(
        Vec::new(),
        manifest_for(tree, as_of_seq),
        WriteOptions::default(),
    )
    .unwrap();
    for (path, bytes) in tree {
        w.add_file(path, bytes).unwrap();
    }
    w.finish().unwrap().0
}

/// Reads every regular file under `root` into a tree (paths relative, `/`-separated).
pub fn read_tree(root: &Path) -> Tree {
    fn walk(root: &Path, dir: &Path, out: &mut Tree) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let kind = entry.file_type().unwrap();
            assert!(!kind.is_symlink(), "symlink at {path:?}");
            if kind.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .replace('\\', "/");
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = Tree::new();
    walk(root, root, &mut out);
    out
}

pub fn sample_tree() -> Tree {
    let mut t = Tree::new();
    t.insert(
        "package.json".into(),
        br#"{"name":"demo","version":"1.0.0"}"#.to_vec(),
    );
    t.insert(
        "src/App.tsx".into(),
        "export default function App() { return null }\n"
            .repeat(40)
            .into_bytes(),
    );
    t.insert("src/empty.ts".into(), Vec::new());
    t.insert(
        "docs/café/日本語.md".into(),
        "# こんにちは\n".repeat(20).into_bytes(),
    );
    t.insert(
        "assets/logo.png".into(),
        (0..3000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect(),
    );
    t
}

/// Runs python3 with `script` and `args`, panicking with its stderr on failure.
pub fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs (the bootstrap installs it)");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
