//! The agent's saved state: last applied seq and the head of every file it wrote.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fsops::{self, Stamp};

pub(crate) const STATE_FORMAT: &str = "fs-sync-hydrate-state/1";

/// Infix of temporary files in the state folder (saves and downloads in progress); a killed
/// agent's are removed at startup by [`sweep_state_dir`].
pub(crate) const TMP_SUFFIX: &str = ".tmp.";

/// The snapshot download in progress, in the state folder.
pub(crate) fn download_file(state_dir: &Path) -> PathBuf {
    state_dir.join(format!(".snapshot{TMP_SUFFIX}{}.zip", std::process::id()))
}

/// Removes temporary files a killed agent left in the state folder (it holds nothing of the
/// project's, so a name match is enough).
pub(crate) fn sweep_state_dir(state_dir: &Path) {
    let Ok(entries) = fs::read_dir(state_dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().contains(TMP_SUFFIX) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Where the agent keeps the state of `project_id` under `state_dir`.
pub fn state_file(state_dir: &Path, project_id: &str) -> PathBuf {
    state_dir.join(format!("{project_id}.json"))
}

/// The journal beside the state file: one line per applied event since the last full save.
pub(crate) fn journal_file(state_dir: &Path, project_id: &str) -> PathBuf {
    state_dir.join(format!("{project_id}.journal"))
}

/// What one applied event changed: heads set (`Some`) or removed (`None`), and the same for
/// stale binaries.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct JournalLine {
    pub(crate) seq: u64,
    #[serde(default)]
    pub(crate) heads: BTreeMap<String, Option<HeadState>>,
    #[serde(default)]
    pub(crate) stale: BTreeMap<String, Option<StaleBinary>>,
}

/// Applies the journal's lines that follow `state.seq`, in order; stops at the first line that
/// does not parse or does not follow on (a write torn by a crash). Returns how many applied.
pub(crate) fn replay_journal(path: &Path, state: &mut State) -> io::Result<usize> {
    let text = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut applied = 0;
    for line in text.split(|b| *b == b'\n') {
        if line.is_empty() {
            continue;
        }
        let Ok(j) = serde_json::from_slice::<JournalLine>(line) else {
            break;
        };
        if j.seq <= state.seq {
            continue;
        }
        if j.seq != state.seq + 1 {
            break;
        }
        for (p, h) in j.heads {
            match h {
                Some(h) => state.heads.insert(p, h),
                None => state.heads.remove(&p),
            };
        }
        for (p, st) in j.stale {
            match st {
                Some(st) => state.stale.insert(p, st),
                None => state.stale.remove(&p),
            };
        }
        state.seq = j.seq;
        applied += 1;
    }
    Ok(applied)
}

/// The head of one live file, as last written to disk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct HeadState {
    pub(crate) version: u64,
    pub(crate) content_hash: String,
    pub(crate) size: u64,
    /// Modification time (ns since the epoch) right after the agent wrote the file.
    pub(crate) mtime_ns: u64,
}

impl HeadState {
    pub(crate) fn new(version: u64, content_hash: String, stamp: Stamp) -> HeadState {
        HeadState {
            version,
            content_hash,
            size: stamp.size,
            mtime_ns: stamp.mtime_ns,
        }
    }

    /// The head a failed write meant to leave, with no stamp: verification fails until a repair
    /// writes the file.
    pub(crate) fn unstamped(version: u64, content_hash: String) -> HeadState {
        HeadState {
            version,
            content_hash,
            size: u64::MAX,
            mtime_ns: 0,
        }
    }
}

/// A binary version the agent could not fetch from Storage; the file keeps its previous head.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StaleBinary {
    pub(crate) version: u64,
    pub(crate) content_hash: String,
    pub(crate) storage_path: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct State {
    pub(crate) format: String,
    pub(crate) project_id: String,
    pub(crate) seq: u64,
    pub(crate) heads: BTreeMap<String, HeadState>,
    #[serde(default)]
    pub(crate) stale: BTreeMap<String, StaleBinary>,
}

pub(crate) fn load(path: &Path) -> io::Result<Option<State>> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Writes the state atomically (temporary file, then rename).
pub(crate) fn save(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("json{TMP_SUFFIX}{}", std::process::id()));
    fs::write(&tmp, bytes)?;
    fs::rename(&tmp, path)
}

/// Checks every head against the folder. A file whose size and mtime equal the recorded ones is
/// trusted; any other is hashed. Returns the paths that are missing or differ; refreshes the
/// stamps of files that were touched but still hold the recorded content.
pub(crate) fn verify(root: &Path, heads: &mut BTreeMap<String, HeadState>) -> Vec<String> {
    let mut suspects = Vec::new();
    for (path, head) in heads.iter_mut() {
        let full = fsops::path_of(root, path);
        let fast = fs::symlink_metadata(&full)
            .ok()
            .filter(fs::Metadata::is_file)
            .map(|m| fsops::stamp_of(&m));
        match fast {
            None => suspects.push(path.clone()),
            Some(s) if s.size == head.size && s.mtime_ns == head.mtime_ns => {}
            Some(_) => match fsops::hash_file(&full) {
                Ok(Some((hash, stamp))) if hash == head.content_hash => {
                    head.size = stamp.size;
                    head.mtime_ns = stamp.mtime_ns;
                }
                _ => suspects.push(path.clone()),
            },
        }
    }
    suspects
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_trusts_stamps_and_hashes_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let mut heads = BTreeMap::new();
        for (p, c) in [("a.txt", "a"), ("b/c.txt", "c"), ("gone.txt", "g")] {
            let stamp = fsops::write_atomic(root, p, c.as_bytes(), false, &mut Vec::new()).unwrap();
            heads.insert(
                p.to_owned(),
                HeadState::new(1, fs_sync_core::content_hash(c.as_bytes()), stamp),
            );
        }
        fs::remove_file(root.join("gone.txt")).unwrap();
        // Same content, new mtime: still fine, and the stamp is refreshed.
        heads.get_mut("a.txt").unwrap().mtime_ns -= 1;
        // Different content of the same size: caught by the hash.
        fs::write(root.join("b/c.txt"), "x").unwrap();
        heads.get_mut("b/c.txt").unwrap().mtime_ns -= 1;
        let suspects = verify(root, &mut heads);
        assert_eq!(suspects, ["b/c.txt", "gone.txt"]);
        assert_eq!(verify(root, &mut heads), ["b/c.txt", "gone.txt"]);

        let file = state_file(root, "p");
        let state = State {
            format: STATE_FORMAT.into(),
            project_id: "p".into(),
            seq: 9,
            heads,
            stale: BTreeMap::new(),
        };
        save(&file, &serde_json::to_vec(&state).unwrap()).unwrap();
        let back = load(&file).unwrap().unwrap();
        assert_eq!(back.seq, 9);
        assert_eq!(back.heads, state.heads);
        assert!(load(&root.join("none.json")).unwrap().is_none());

        // The journal carries on from the saved seq; a torn last line is ignored.
        let journal = journal_file(root, "p");
        let line = |seq: u64, path: &str, head: Option<HeadState>| {
            let mut j = JournalLine {
                seq,
                ..JournalLine::default()
            };
            j.heads.insert(path.to_owned(), head);
            let mut s = serde_json::to_string(&j).unwrap();
            s.push('\n');
            s
        };
        let h = HeadState::new(
            2,
            "ab".repeat(32),
            Stamp {
                size: 1,
                mtime_ns: 5,
            },
        );
        let text = [
            line(8, "old.txt", None),
            line(10, "a.txt", None),
            line(11, "new.txt", Some(h.clone())),
            "{\"seq\":12,\"hea".to_owned(),
        ]
        .concat();
        fs::write(&journal, text).unwrap();
        let mut back = back;
        assert_eq!(replay_journal(&journal, &mut back).unwrap(), 2);
        assert_eq!(back.seq, 11);
        assert!(!back.heads.contains_key("a.txt"));
        assert_eq!(back.heads["new.txt"], h);
    }
}
