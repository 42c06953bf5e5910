//! Safe extraction into a project folder.
//!
//! Everything is first written under the folder's reserved `.fs-sync/` (no project path can be
//! there, so nothing of the project's is ever mistaken for ours) and moved into place only once
//! the whole archive is verified. Moving is a merge: the manifest's files replace what is at their
//! paths, and anything else in the folder (a dev server's caches, `node_modules`) stays. Where an
//! untracked entry is in the way (a folder where a project file goes, a file where a project
//! folder goes, a symbolic link), it is moved aside to `.fs-sync/displaced/`, never deleted and
//! never followed. Staging inside the folder also works when the folder is a mount point, which
//! cannot be renamed.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::{read_snapshot, Limits, SnapshotError};
use crate::manifest::Manifest;
use crate::path::RESERVED_DIR;

/// Prefix of staging folders inside `.fs-sync/`; leftovers of a killed extraction are removed by
/// the next one.
const STAGING_PREFIX: &str = "staging-";
/// Where untracked entries that were in the way go, inside `.fs-sync/`.
const DISPLACED_DIR: &str = "displaced";

/// What [`extract_snapshot`] did.
#[derive(Debug)]
#[non_exhaustive]
pub struct Extraction {
    /// The verified manifest.
    pub manifest: Manifest,
    /// Untracked entries that were in the way, each as `(path, where it went)` relative to the
    /// target.
    pub displaced: Vec<(String, String)>,
    /// Each written file's stamp, by manifest path: what a `stat` of the file in place returns
    /// (moving it into place keeps both), without a second pass over the tree.
    pub stamps: HashMap<String, FileStamp>,
}

/// Size and modification time of a file as extraction left it, read from the open file once its
/// bytes were written (one `fstat`, no path lookup).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStamp {
    /// Bytes.
    pub size: u64,
    /// Modification time in nanoseconds since the Unix epoch (0 where the platform has none).
    pub mtime_ns: u64,
}

impl FileStamp {
    fn of(file: &fs::File) -> io::Result<FileStamp> {
        let meta = file.metadata()?;
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as u64);
        Ok(FileStamp {
            size: meta.len(),
            mtime_ns,
        })
    }
}

/// Written files' stamps, as `(path, stamp)`.
type Stamps = Vec<(String, FileStamp)>;

/// Extracts the snapshot read from `input` into the folder `target` (created if missing).
///
/// `accept` sees the manifest before anything is written (to check it is the expected project,
/// for example). Files are written under `target/.fs-sync/staging-…`; only when the whole archive
/// has been verified are they moved into place. On any error the staging folder is removed and
/// `target` is left as it was. Entry names have passed the path rules, so no entry can land
/// outside the staging folder. Memory stays bounded whatever the files' sizes: large files stream
/// to disk, small ones are written by a few threads with a bounded queue.
///
/// One extraction into a given `target` at a time: each starts by removing the staging folders
/// earlier, killed, extractions left.
pub fn extract_snapshot<R: Read>(
    input: R,
    target: &Path,
    limits: &Limits,
    accept: impl FnOnce(&Manifest) -> Result<(), SnapshotError>,
) -> Result<Extraction, SnapshotError> {
    let made_target = !target.exists();
    fs::create_dir_all(target).map_err(|e| write_error(target, e))?;
    let reserved = target.join(RESERVED_DIR);
    let made_reserved = !reserved.exists();
    fs::create_dir_all(&reserved).map_err(|e| write_error(&reserved, e))?;
    remove_staging_leftovers(target);
    let staging = reserved.join(format!("{STAGING_PREFIX}{}", unique_suffix()));
    fs::create_dir(&staging).map_err(|e| write_error(&staging, e))?;

    let result = write_all(input, &staging, limits, accept).and_then(|(manifest, stamps)| {
        let mut displaced = Vec::new();
        merge(target, &staging, Path::new(""), &mut displaced)?;
        Ok(Extraction {
            manifest,
            displaced,
            stamps: stamps.into_iter().collect(),
        })
    });
    let _ = fs::remove_dir_all(&staging);
    if made_reserved {
        // Only when empty: displaced entries stay.
        let _ = fs::remove_dir(&reserved);
    }
    if result.is_err() && made_target {
        let _ = fs::remove_dir(target);
    }
    result
}

/// Moves the untracked entry at `root/rel` to `root/.fs-sync/displaced/<unique>/rel`, so that a
/// project file can take its place without anything being lost. Returns where it went, relative
/// to `root`.
pub fn displace(root: &Path, rel: &str) -> io::Result<String> {
    let moved = format!("{RESERVED_DIR}/{DISPLACED_DIR}/{}/{rel}", unique_suffix());
    let dest = root.join(&moved);
    if let Some(dir) = dest.parent() {
        fs::create_dir_all(dir)?;
    }
    fs::rename(root.join(rel), &dest)?;
    Ok(moved)
}

/// Moves each entry of `staged` (mirroring `rel` under `root`) into place.
fn merge(
    root: &Path,
    staged: &Path,
    rel: &Path,
    displaced: &mut Vec<(String, String)>,
) -> Result<(), SnapshotError> {
    let entries = fs::read_dir(staged).map_err(|e| write_error(rel, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| write_error(rel, e))?;
        let rel = rel.join(entry.file_name());
        let fail = |e| write_error(&rel, e);
        let from = entry.path();
        let to = root.join(&rel);
        let staged_dir = entry.file_type().map_err(fail)?.is_dir();
        match fs::symlink_metadata(&to) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::rename(&from, &to).map_err(fail)?
            }
            Err(e) => return Err(fail(e)),
            Ok(m) if staged_dir && m.is_dir() => merge(root, &from, &rel, displaced)?,
            Ok(m) if !staged_dir && m.is_file() => fs::rename(&from, &to).map_err(fail)?,
            Ok(_) => {
                let name = rel.to_string_lossy().into_owned();
                let moved = displace(root, &name).map_err(fail)?;
                displaced.push((name, moved));
                fs::rename(&from, &to).map_err(fail)?;
            }
        }
    }
    Ok(())
}

fn write_error(path: &Path, source: io::Error) -> SnapshotError {
    SnapshotError::Write {
        path: path.to_string_lossy().into_owned(),
        source,
    }
}

/// Files at most this large are read whole and handed to the writer threads; larger ones stream
/// to disk from the reading thread, so memory does not grow with file size.
#[cfg(not(target_arch = "wasm32"))]
const SMALL_FILE: u64 = 256 << 10;
/// Small files go to the writers in batches of about this many bytes or [`BATCH_FILES`] files:
/// one hand-off (and at most one wake-up) a batch, not a file, which on tmpfs cost as much as
/// writing the file.
#[cfg(not(target_arch = "wasm32"))]
const BATCH_BYTES: usize = 64 << 10;
#[cfg(not(target_arch = "wasm32"))]
const BATCH_FILES: usize = 32;
/// Batches queued for the writers at most. With the batch being filled, the ones being written
/// and the emptied ones waiting for reuse, at most `QUEUE + WRITERS + 2` batches exist, each under
/// `2 * (BATCH_BYTES + SMALL_FILE)`: 9 MiB in all.
#[cfg(not(target_arch = "wasm32"))]
const QUEUE: usize = 8;
/// Creating a file on a disk can cost more than writing it (an ext4 without a journal scans for
/// an inode not recently deleted, which under churn takes most of a millisecond), so a few
/// writers overlap it; on tmpfs they use the second core while the reading thread inflates and
/// hashes. The reading thread writes a batch itself when they are all busy, and helps them
/// empty the queue at the end.
#[cfg(not(target_arch = "wasm32"))]
const WRITERS: usize = 4;

/// Small files' verified bytes, back to back, and where each goes.
#[cfg(not(target_arch = "wasm32"))]
#[derive(Default)]
struct Batch {
    data: Vec<u8>,
    /// Each file's path (relative to the staging folder) and where its bytes end in `data`.
    files: Vec<(String, usize)>,
}

#[cfg(not(target_arch = "wasm32"))]
impl Batch {
    fn is_full(&self) -> bool {
        self.data.len() >= BATCH_BYTES || self.files.len() >= BATCH_FILES
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn write_all<R: Read>(
    input: R,
    root: &Path,
    limits: &Limits,
    accept: impl FnOnce(&Manifest) -> Result<(), SnapshotError>,
) -> Result<(Manifest, Stamps), SnapshotError> {
    use std::sync::mpsc::{self, TrySendError};
    use std::sync::Mutex;

    let (tx, rx) = mpsc::sync_channel::<Batch>(QUEUE);
    let rx = Mutex::new(rx);
    // Written batches come back emptied, so their buffers are reused rather than grown anew.
    let (spent_tx, spent_rx) = mpsc::channel::<Batch>();
    let failed: Mutex<Option<SnapshotError>> = Mutex::new(None);
    // Takes queued batches until the queue is closed and empty.
    let drain = |made: &mut DirCache<'_>, stamps: &mut Stamps| loop {
        let next = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
        let Ok(mut batch) = next else { break };
        if let Err(e) = write_batch(&mut batch, made, stamps) {
            failed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_or_insert(e);
        }
        let _ = spent_tx.send(batch);
    };
    let result = std::thread::scope(|scope| {
        let writers: Vec<_> = (0..WRITERS)
            .map(|_| {
                scope.spawn(|| {
                    let mut stamps = Stamps::new();
                    drain(&mut DirCache::new(root), &mut stamps);
                    stamps
                })
            })
            .collect();
        let mut made = DirCache::new(root);
        let mut stamps = Stamps::new();
        // Inflating into a larger buffer copies less through deflate's 32 KiB window: 10% less
        // time for a large deflated file than with 64 KiB.
        let mut buf = vec![0u8; 1 << 20];
        let mut batch = Batch::default();
        let result = read_snapshot(input, limits, accept, |entry, data| {
            if let Some(e) = failed.lock().unwrap_or_else(|e| e.into_inner()).take() {
                return Err(io::Error::other(e));
            }
            if entry.size > SMALL_FILE {
                let stamp = stream_to(&made.prepare(&entry.path)?, data, &mut buf)?;
                stamps.push((entry.path.clone(), stamp));
                return Ok(());
            }
            // Exactly the declared size (`read_to_end` would clear kilobytes of spare capacity
            // per file); the reader verifies the end once this returns.
            let start = batch.data.len();
            batch.data.resize(start + entry.size as usize, 0);
            data.read_exact(&mut batch.data[start..])?;
            batch.files.push((entry.path.clone(), batch.data.len()));
            if !batch.is_full() {
                return Ok(());
            }
            let next = spent_rx.try_recv().unwrap_or_default();
            match tx.try_send(std::mem::replace(&mut batch, next)) {
                Ok(()) => Ok(()),
                // Every writer is busy (or not scheduled, on a loaded machine): rather than
                // wait, this thread writes the batch itself.
                Err(TrySendError::Full(mut own)) => {
                    write_batch(&mut own, &mut made, &mut stamps).map_err(io::Error::other)?;
                    batch = own;
                    Ok(())
                }
                Err(TrySendError::Disconnected(_)) => {
                    Err(io::Error::other("extraction writers stopped"))
                }
            }
        });
        let result = result.and_then(|manifest| {
            write_batch(&mut batch, &mut made, &mut stamps)?;
            Ok(manifest)
        });
        // Closes the queue, then helps the writers with what is left in it.
        drop(tx);
        drain(&mut made, &mut stamps);
        for writer in writers {
            match writer.join() {
                Ok(theirs) => stamps.extend(theirs),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        result.map(|manifest| (manifest, stamps))
    });
    let written = result?;
    match failed.into_inner().unwrap_or_else(|e| e.into_inner()) {
        Some(e) => Err(e),
        None => Ok(written),
    }
}

/// Writes each file of `batch` under the staging folder, making each folder once (per writer),
/// and adds its stamp to `stamps`. Leaves `batch` empty for reuse.
#[cfg(not(target_arch = "wasm32"))]
fn write_batch(
    batch: &mut Batch,
    made: &mut DirCache<'_>,
    stamps: &mut Stamps,
) -> Result<(), SnapshotError> {
    let mut start = 0;
    let result = batch.files.drain(..).try_for_each(|(path, end)| {
        let bytes = &batch.data[start..end];
        start = end;
        let stamp = made
            .prepare(&path)
            .and_then(|dest| {
                let mut file = fs::File::create(dest)?;
                file.write_all(bytes)?;
                FileStamp::of(&file)
            })
            .map_err(|e| write_error(Path::new(&path), e))?;
        stamps.push((path, stamp));
        Ok(())
    });
    batch.data.clear();
    result
}

#[cfg(target_arch = "wasm32")]
fn write_all<R: Read>(
    input: R,
    root: &Path,
    limits: &Limits,
    accept: impl FnOnce(&Manifest) -> Result<(), SnapshotError>,
) -> Result<(Manifest, Stamps), SnapshotError> {
    let mut made = DirCache::new(root);
    let mut buf = vec![0u8; 64 << 10];
    let mut stamps = Stamps::new();
    let manifest = read_snapshot(input, limits, accept, |entry, data| {
        let stamp = stream_to(&made.prepare(&entry.path)?, data, &mut buf)?;
        stamps.push((entry.path.clone(), stamp));
        Ok(())
    })?;
    Ok((manifest, stamps))
}

/// Copies `data` into a new file at `dest` through `buf`; returns the file's stamp.
fn stream_to(dest: &Path, data: &mut dyn Read, buf: &mut [u8]) -> io::Result<FileStamp> {
    let mut file = fs::File::create(dest)?;
    loop {
        match data.read(buf) {
            Ok(0) => return FileStamp::of(&file),
            Ok(n) => file.write_all(&buf[..n])?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
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
    fn prepare(&mut self, path: &str) -> io::Result<PathBuf> {
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

/// Removes the staging folders that killed extractions left in `target` (each extraction does
/// this first; a consumer that resumes without extracting calls it itself).
pub fn remove_staging_leftovers(target: &Path) {
    let Ok(entries) = fs::read_dir(target.join(RESERVED_DIR)) else {
        return;
    };
    for entry in entries.flatten() {
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(STAGING_PREFIX)
        {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// A name no other extraction or displacement of this process or another uses at the same time.
fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!(
        "{millis}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}
