//! File operations on the project folder: hashing, atomic writes, deletes and moves.
//!
//! Writes go to a temporary file in the destination's folder and are renamed over it, so a reader
//! (the dev server's watcher) never sees a half-written file. Nothing is fsynced: a preview
//! container does not survive its host, and the saved state plus the change log repair what a
//! crash of the agent itself leaves behind.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::UNIX_EPOCH;

use fs_sync_core::ContentHasher;

/// Infix of the agent's temporary files; leftovers of a crash are swept at startup.
pub(crate) const TMP_INFIX: &str = ".fs-sync-tmp.";

/// Size and modification time of a file, for the cheap "unchanged since" check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) size: u64,
    pub(crate) mtime_ns: u64,
}

pub(crate) fn stamp_of(meta: &fs::Metadata) -> Stamp {
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as u64);
    Stamp {
        size: meta.len(),
        mtime_ns,
    }
}

pub(crate) fn path_of(root: &Path, rel: &str) -> PathBuf {
    root.join(rel)
}

/// The content hash and stamp of a regular file, or `None` when there is none at `path`.
pub(crate) fn hash_file(path: &Path) -> io::Result<Option<(String, Stamp)>> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => return Ok(None),
        Err(e) => return Err(e),
    };
    if !meta.is_file() {
        return Ok(None);
    }
    let mut file = fs::File::open(path)?;
    let mut hasher = ContentHasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(Some((hasher.finish(), stamp_of(&meta))))
}

fn tmp_name(dest: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Keep the name short enough for NAME_MAX even when the file's own name is long.
    let short: String = name.chars().take(100).collect();
    dest.with_file_name(format!(
        ".{short}{TMP_INFIX}{}.{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Writes `bytes` to `root/rel` atomically (temporary file in the same folder, then rename).
pub(crate) fn write_atomic(root: &Path, rel: &str, bytes: &[u8]) -> io::Result<Stamp> {
    let dest = path_of(root, rel);
    if let Some(dir) = dest.parent() {
        fs::create_dir_all(dir)?;
    }
    refuse_folder(&dest, rel)?;
    let tmp = tmp_name(&dest);
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        drop(f);
        fs::rename(&tmp, &dest)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(stamp_of(&fs::metadata(&dest)?))
}

/// Removes `root/rel` if it is there, then any folders that became empty (up to `root`).
/// Returns whether a file was removed.
pub(crate) fn remove(root: &Path, rel: &str) -> io::Result<bool> {
    let dest = path_of(root, rel);
    let removed = match fs::remove_file(&dest) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => false,
        Err(e) => return Err(e),
    };
    prune_empty_parents(root, &dest);
    Ok(removed)
}

/// Moves `root/from` to `root/to` (replacing `to`), then prunes `from`'s emptied folders.
pub(crate) fn move_file(root: &Path, from: &str, to: &str) -> io::Result<Stamp> {
    let src = path_of(root, from);
    let dest = path_of(root, to);
    if let Some(dir) = dest.parent() {
        fs::create_dir_all(dir)?;
    }
    refuse_folder(&dest, to)?;
    fs::rename(&src, &dest)?;
    prune_empty_parents(root, &src);
    Ok(stamp_of(&fs::metadata(&dest)?))
}

/// A folder where a file must go means the project holds both `x` and `x/…` as files, which no
/// folder can show; the write fails rather than delete the folder's files.
fn refuse_folder(dest: &Path, rel: &str) -> io::Result<()> {
    if fs::symlink_metadata(dest).is_ok_and(|m| m.is_dir()) {
        return Err(io::Error::other(format!(
            "cannot write {rel:?}: a folder of that name holds other project files"
        )));
    }
    Ok(())
}

fn prune_empty_parents(root: &Path, file: &Path) {
    let mut dir = file.parent();
    while let Some(d) = dir {
        if d == root || !d.starts_with(root) {
            break;
        }
        // Fails (and stops) when the folder is not empty.
        if fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

/// Removes the agent's temporary files left in `dir` by a crash.
pub(crate) fn sweep_tmp(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.contains(TMP_INFIX) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_moves_and_removes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let s = write_atomic(root, "a/b/c.txt", b"hello").unwrap();
        assert_eq!(s.size, 5);
        let (h, _) = hash_file(&root.join("a/b/c.txt")).unwrap().unwrap();
        assert_eq!(h, fs_sync_core::content_hash(b"hello"));
        move_file(root, "a/b/c.txt", "d/e.txt").unwrap();
        assert!(!root.join("a").exists(), "emptied folders are pruned");
        assert_eq!(fs::read(root.join("d/e.txt")).unwrap(), b"hello");
        assert!(remove(root, "d/e.txt").unwrap());
        assert!(!remove(root, "d/e.txt").unwrap());
        assert!(root.exists() && fs::read_dir(root).unwrap().next().is_none());
        assert!(hash_file(&root.join("nope/x")).unwrap().is_none());
        // No temporary file is left behind.
        write_atomic(root, "x", b"").unwrap();
        let names: Vec<_> = fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["x"]);
        fs::write(root.join(format!(".x{TMP_INFIX}1.2")), b"junk").unwrap();
        sweep_tmp(root);
        assert_eq!(fs::read_dir(root).unwrap().count(), 1);
    }
}
