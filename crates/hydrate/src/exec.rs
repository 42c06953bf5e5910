//! Runs planned file operations on the folder and reports what happened to each.

use std::collections::HashSet;
use std::path::Path;

use crate::fsops::{self, Displaced, Stamp};
use crate::health::is_disk_full;
use crate::plan::Step;
use crate::state::{HeadState, StaleBinary};

/// What happened on disk.
pub(crate) enum Done {
    Written(String, HeadState),
    Kept(String, HeadState),
    Deleted(String, bool),
    Moved(String, String, HeadState),
    Stale(String, StaleBinary),
    Failed {
        path: String,
        intended: Option<(u64, String)>,
        error: String,
        /// The disk or the quota was full (ENOSPC, EDQUOT).
        full: bool,
    },
}

/// Runs planned steps on disk, in order. A write or move onto a path in `untracked` (a file the
/// project does not track, holding other content) moves that file aside first.
pub(crate) fn execute(
    root: &Path,
    steps: Vec<Step>,
    untracked: &HashSet<String>,
) -> (Vec<Done>, Displaced) {
    let mut displaced = Displaced::new();
    let mut out = Vec::with_capacity(steps.len());
    for s in steps {
        out.push(match s {
            Step::Write {
                path,
                version,
                hash,
                bytes,
            } => match fsops::write_atomic(
                root,
                &path,
                &bytes,
                untracked.contains(&path),
                &mut displaced,
            ) {
                Ok(stamp) => Done::Written(path, HeadState::new(version, hash, stamp)),
                Err(e) => Done::Failed {
                    path,
                    intended: Some((version, hash)),
                    error: e.to_string(),
                    full: is_disk_full(&e),
                },
            },
            Step::Keep {
                path,
                version,
                hash,
            } => {
                let stamp = std::fs::metadata(fsops::path_of(root, &path))
                    .map(|m| fsops::stamp_of(&m))
                    .unwrap_or(Stamp {
                        size: 0,
                        mtime_ns: 0,
                    });
                Done::Kept(path, HeadState::new(version, hash, stamp))
            }
            Step::Delete { path } => match fsops::remove(root, &path) {
                Ok(existed) => Done::Deleted(path, existed),
                Err(e) => Done::Failed {
                    path,
                    intended: None,
                    error: e.to_string(),
                    full: is_disk_full(&e),
                },
            },
            Step::Move {
                from,
                to,
                version,
                hash,
            } => {
                match fsops::move_file(root, &from, &to, untracked.contains(&to), &mut displaced) {
                    Ok(stamp) => Done::Moved(from, to, HeadState::new(version, hash, stamp)),
                    Err(e) => Done::Failed {
                        path: to,
                        intended: Some((version, hash)),
                        error: e.to_string(),
                        full: is_disk_full(&e),
                    },
                }
            }
            Step::Stale {
                path,
                version,
                hash,
                storage_path,
            } => Done::Stale(
                path,
                StaleBinary {
                    version,
                    content_hash: hash,
                    storage_path,
                },
            ),
            Step::Fetch { path, .. } => Done::Failed {
                path,
                intended: None,
                error: "internal: content was never fetched".into(),
                full: false,
            },
        });
    }
    (out, displaced)
}
