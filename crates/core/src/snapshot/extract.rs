//! Safe extraction: everything lands in a staging folder that replaces the target only on success.

use std::collections::HashSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::{read_snapshot, Limits, SnapshotError};
use crate::manifest::Manifest;

/// Extracts the snapshot read from `input` into `target`, replacing what was there.
///
/// Files are written under a fresh staging folder beside `target`; only when the whole archive has
/// been verified is the staging folder renamed into place. On any error the staging folder is
/// removed and `target` is left exactly as it was. Entry names have passed the path rules, so no
/// entry can land outside the staging folder. Replacing an existing `target` takes two renames
/// (old out, new in); std has no atomic exchange, so a crash between them leaves the old tree
/// beside the target under a `.fs-sync-old-…` name.
pub fn extract_snapshot<R: Read>(
    input: R,
    target: &Path,
    limits: &Limits,
) -> Result<Manifest, SnapshotError> {
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target
        .file_name()
        .ok_or_else(|| SnapshotError::Malformed(format!("target {target:?} has no folder name")))?
        .to_string_lossy()
        .into_owned();
    let staging = unique_sibling(&parent, &name, "staging");
    fs::create_dir(&staging)?;
    let result = write_all(input, &staging, limits);
    let manifest = match result {
        Ok(m) => m,
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    if target.exists() {
        let old = unique_sibling(&parent, &name, "old");
        fs::rename(target, &old)?;
        if let Err(e) = fs::rename(&staging, target) {
            let _ = fs::rename(&old, target);
            let _ = fs::remove_dir_all(&staging);
            return Err(e.into());
        }
        // The new tree is in place; a leftover old tree is garbage, not a failed extraction.
        let _ = fs::remove_dir_all(&old);
    } else {
        fs::rename(&staging, target)?;
    }
    Ok(manifest)
}

/// Files in flight to the writer threads at most; bounds memory to this many files' bytes.
#[cfg(not(target_arch = "wasm32"))]
const QUEUE: usize = 32;
/// Creating files costs mostly filesystem latency, not CPU, so a few writers overlap it.
#[cfg(not(target_arch = "wasm32"))]
const WRITERS: usize = 4;

#[cfg(not(target_arch = "wasm32"))]
fn write_all<R: Read>(input: R, root: &Path, limits: &Limits) -> Result<Manifest, SnapshotError> {
    use std::sync::{mpsc, Mutex};

    let (tx, rx) = mpsc::sync_channel::<(PathBuf, Vec<u8>)>(QUEUE);
    let rx = Mutex::new(rx);
    let failed: Mutex<Option<std::io::Error>> = Mutex::new(None);
    let result = std::thread::scope(|scope| {
        for _ in 0..WRITERS {
            scope.spawn(|| loop {
                let next = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                let Ok((dest, bytes)) = next else { break };
                if let Err(e) = fs::write(&dest, bytes) {
                    failed
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get_or_insert(e);
                }
            });
        }
        let mut made = DirCache::new(root);
        let result = read_snapshot(input, limits, |entry, bytes| {
            if let Some(e) = failed.lock().unwrap_or_else(|e| e.into_inner()).take() {
                return Err(e);
            }
            let dest = made.prepare(&entry.path)?;
            tx.send((dest, bytes.to_vec()))
                .map_err(|_| std::io::Error::other("extraction writers stopped"))
        });
        drop(tx);
        result
    });
    let manifest = result?;
    match failed.into_inner().unwrap_or_else(|e| e.into_inner()) {
        Some(e) => Err(e.into()),
        None => Ok(manifest),
    }
}

#[cfg(target_arch = "wasm32")]
fn write_all<R: Read>(input: R, root: &Path, limits: &Limits) -> Result<Manifest, SnapshotError> {
    let mut made = DirCache::new(root);
    read_snapshot(input, limits, |entry, bytes| {
        fs::write(made.prepare(&entry.path)?, bytes)
    })
}

/// Creates each parent folder once.
struct DirCache<'a> {
    root: &'a Path,
    made: HashSet<PathBuf>,
}

impl<'a> DirCache<'a> {
    fn new(root: &'a Path) -> Self {
        DirCache {
            root,
            made: HashSet::new(),
        }
    }

    /// The destination of `path`, with its folder created.
    fn prepare(&mut self, path: &str) -> std::io::Result<PathBuf> {
        let dest = self.root.join(path);
        if let Some(dir) = dest.parent() {
            if dir != self.root && !self.made.contains(dir) {
                fs::create_dir_all(dir)?;
                self.made.insert(dir.to_path_buf());
            }
        }
        Ok(dest)
    }
}

fn unique_sibling(parent: &Path, name: &str, role: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    parent.join(format!(
        ".{name}.fs-sync-{role}-{}-{nanos}",
        std::process::id()
    ))
}
