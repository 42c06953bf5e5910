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

fn write_all<R: Read>(input: R, root: &Path, limits: &Limits) -> Result<Manifest, SnapshotError> {
    let mut made: HashSet<PathBuf> = HashSet::new();
    read_snapshot(input, limits, |entry, bytes| {
        let dest = root.join(&entry.path);
        if let Some(dir) = dest.parent() {
            if dir != root && !made.contains(dir) {
                fs::create_dir_all(dir)?;
                made.insert(dir.to_path_buf());
            }
        }
        fs::write(&dest, bytes)
    })
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
