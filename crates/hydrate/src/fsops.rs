//! File operations on the project folder: hashing, atomic writes, deletes and moves.
//!
//! Writes go to a temporary file under the folder's reserved `.fs-sync/tmp/` (no project path can
//! be there, so cleaning it up can never remove a project file) and are renamed into place, so a
//! reader (the dev server's watcher) never sees a half-written file. Nothing is fsynced: a
//! preview container does not survive its host, and the saved state plus the change log repair
//! what a crash of the agent itself leaves behind.
//!
//! Files the project does not track (a dev server's caches, `node_modules`) are never deleted
//! and never block a change: an untracked entry in the way of a project file or folder is moved
//! to `.fs-sync/displaced/` ([`fs_sync_core::displace`]), and symbolic links are never followed.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::UNIX_EPOCH;

use fs_sync_core::{ContentHasher, RESERVED_DIR};

/// Untracked entries moved out of the way, as `(path, where it went)` relative to the root.
pub(crate) type Displaced = Vec<(String, String)>;

/// Size and modification time of a file, for the cheap "unchanged since" check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) size: u64,
    pub(crate) mtime_ns: u64,
}

impl From<fs_sync_core::FileStamp> for Stamp {
    fn from(s: fs_sync_core::FileStamp) -> Stamp {
        Stamp {
            size: s.size,
            mtime_ns: s.mtime_ns,
        }
    }
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

/// The folder of the agent's temporary files; removed whole at startup.
pub(crate) fn tmp_dir(root: &Path) -> PathBuf {
    root.join(RESERVED_DIR).join("tmp")
}

fn tmp_name(root: &Path) -> io::Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = tmp_dir(root);
    fs::create_dir_all(&dir)?;
    Ok(dir.join(format!(
        "{}.{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )))
}

/// Writes `bytes` to `root/rel` atomically (temporary file, then rename). An entry in the way
/// that is not a regular file, or any file when `displace_file` (the path is not tracked and holds
/// other content), is moved aside first.
pub(crate) fn write_atomic(
    root: &Path,
    rel: &str,
    bytes: &[u8],
    displace_file: bool,
    displaced: &mut Displaced,
) -> io::Result<Stamp> {
    let dest = make_room(root, rel, displace_file, displaced)?;
    let tmp = tmp_name(root)?;
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

/// Removes the file `root/rel` if it is there, then any folders that became empty (up to
/// `root`). Returns whether a file was removed. Something else at that path (a folder a dev
/// server made) is not the project's and stays.
pub(crate) fn remove(root: &Path, rel: &str) -> io::Result<bool> {
    let dest = path_of(root, rel);
    if fs::symlink_metadata(&dest).is_ok_and(|m| m.is_dir()) {
        return Ok(false);
    }
    let removed = match fs::remove_file(&dest) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => false,
        Err(e) => return Err(e),
    };
    prune_empty_parents(root, &dest);
    Ok(removed)
}

/// Moves `root/from` to `root/to` (replacing `to` as [`write_atomic`] would), then prunes
/// `from`'s emptied folders.
pub(crate) fn move_file(
    root: &Path,
    from: &str,
    to: &str,
    displace_file: bool,
    displaced: &mut Displaced,
) -> io::Result<Stamp> {
    let src = path_of(root, from);
    let dest = make_room(root, to, displace_file, displaced)?;
    fs::rename(&src, &dest)?;
    prune_empty_parents(root, &src);
    Ok(stamp_of(&fs::metadata(&dest)?))
}

/// Makes `root/rel` writable as a regular file: every parent a real folder (an untracked file or
/// link in the way is displaced, so nothing is written through a link), and nothing but a
/// tracked file at `rel` itself. Returns the destination.
fn make_room(
    root: &Path,
    rel: &str,
    displace_file: bool,
    displaced: &mut Displaced,
) -> io::Result<PathBuf> {
    for (i, _) in rel.match_indices('/') {
        let parent = &rel[..i];
        let dir = path_of(root, parent);
        match fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                displaced.push((parent.to_owned(), fs_sync_core::displace(root, parent)?));
                fs::create_dir(&dir)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Nothing below a missing folder exists either.
                fs::create_dir_all(path_of(root, &rel[..rel.rfind('/').unwrap_or(i)]))?;
                break;
            }
            Err(e) => return Err(e),
        }
    }
    let dest = path_of(root, rel);
    if let Ok(m) = fs::symlink_metadata(&dest) {
        if !m.is_file() || displace_file {
            displaced.push((rel.to_owned(), fs_sync_core::displace(root, rel)?));
        }
    }
    Ok(dest)
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

/// Removes what a killed agent left in the folder: its temporary files and the staging folders
/// of an interrupted extraction.
pub(crate) fn sweep_leftovers(root: &Path) {
    let _ = fs::remove_dir_all(tmp_dir(root));
    fs_sync_core::remove_staging_leftovers(root);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn writes_moves_and_removes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let mut displaced = Displaced::new();
        let s = write_atomic(root, "a/b/c.txt", b"hello", false, &mut displaced).unwrap();
        assert_eq!(s.size, 5);
        let (h, _) = hash_file(&root.join("a/b/c.txt")).unwrap().unwrap();
        assert_eq!(h, fs_sync_core::content_hash(b"hello"));
        move_file(root, "a/b/c.txt", "d/e.txt", false, &mut displaced).unwrap();
        assert!(!root.join("a").exists(), "emptied folders are pruned");
        assert_eq!(fs::read(root.join("d/e.txt")).unwrap(), b"hello");
        assert!(remove(root, "d/e.txt").unwrap());
        assert!(!remove(root, "d/e.txt").unwrap());
        assert!(hash_file(&root.join("nope/x")).unwrap().is_none());
        // No temporary file is left behind, and none ever lands among the project's files.
        write_atomic(root, "x", b"", false, &mut displaced).unwrap();
        assert_eq!(names(root), [".fs-sync", "x"]);
        assert!(names(&tmp_dir(root)).is_empty());
        assert!(displaced.is_empty());
    }

    /// Regression: project files named like the agent's old temporary files
    /// (`.notes.fs-sync-tmp.1.2`) were deleted by the startup sweep.
    #[test]
    fn the_startup_sweep_removes_only_the_agents_own_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let mut displaced = Displaced::new();
        for p in [
            ".notes.fs-sync-tmp.1.2",
            "src/.a.fs-sync-tmp.9.9",
            "staging-1",
        ] {
            write_atomic(root, p, b"project file", false, &mut displaced).unwrap();
        }
        fs::write(tmp_dir(root).join("77.1"), b"half written").unwrap();
        fs::create_dir_all(root.join(".fs-sync/staging-5-6-7/src")).unwrap();
        sweep_leftovers(root);
        assert_eq!(
            names(root),
            [".fs-sync", ".notes.fs-sync-tmp.1.2", "src", "staging-1"]
        );
        assert_eq!(names(&root.join("src")), [".a.fs-sync-tmp.9.9"]);
        assert!(names(&root.join(".fs-sync")).is_empty());
    }

    /// Regression: a folder a dev server had written into, where the project then put a file,
    /// blocked the project forever with a message blaming "other project files".
    #[test]
    fn untracked_entries_in_the_way_are_moved_aside_never_deleted_or_followed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("project");
        let outside = dir.path().join("outside");
        fs::create_dir_all(&outside).unwrap();
        fs::create_dir_all(root.join("dist/cache")).unwrap();
        fs::write(root.join("dist/cache/x"), b"build output").unwrap();
        fs::write(root.join("lib"), b"a file where the project wants a folder").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("linked")).unwrap();
        fs::write(root.join("notes.txt"), b"the user's own notes").unwrap();
        fs::create_dir_all(root.join("gone")).unwrap();

        let mut displaced = Displaced::new();
        write_atomic(&root, "dist", b"now a file", false, &mut displaced).unwrap();
        write_atomic(&root, "lib/a.ts", b"a", false, &mut displaced).unwrap();
        write_atomic(&root, "linked/b.ts", b"b", false, &mut displaced).unwrap();
        write_atomic(&root, "notes.txt", b"project notes", true, &mut displaced).unwrap();
        // A folder at a tracked path is not the project's file: left alone.
        assert!(!remove(&root, "gone").unwrap());

        assert!(names(&outside).is_empty(), "wrote through a link");
        assert_eq!(fs::read(root.join("dist")).unwrap(), b"now a file");
        assert_eq!(fs::read(root.join("linked/b.ts")).unwrap(), b"b");
        assert!(root.join("gone").is_dir());
        let moved: Vec<&str> = displaced.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(moved, ["dist", "lib", "linked", "notes.txt"]);
        for (path, to) in &displaced {
            assert!(to.starts_with(".fs-sync/displaced/") && to.ends_with(path.as_str()));
        }
        let kept = |to: &str| fs::read(root.join(to)).unwrap();
        assert_eq!(
            kept(&format!("{}/cache/x", displaced[0].1)),
            b"build output"
        );
        assert_eq!(kept(&displaced[3].1), b"the user's own notes");
    }
}
