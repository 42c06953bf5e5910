//! Shared builders for the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use fs_sync_core::{Manifest, ManifestEntry, SnapshotWriter, WriteOptions};

pub mod alloc;

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

/// Deterministic source-like text of about `len` bytes.
pub fn source_file(seed: u64, len: usize) -> Vec<u8> {
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

/// `n` source-like files of about 5 KB in nested folders, sorted by path.
pub fn source_tree(n: usize) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = (0..n)
        .map(|i| {
            let path = format!("src/m{}/c{}/file{i}.tsx", i % 17, i % 5);
            (path, source_file(i as u64, 5000))
        })
        .collect();
    files.sort();
    files
}

/// Writes a zip with Python's zipfile. `spec` is a JSON list of entries
/// `{name, data?, data_of?, zeros?, link?, dir?}`; `manifest` lists `{path, data}` whose hashes
/// Python computes itself. The manifest entry is written first unless `manifest_last`.
pub const HOSTILE_WRITER: &str = r#"
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
