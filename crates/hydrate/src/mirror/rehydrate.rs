//! Re-hydrating in place: when the change log no longer holds the agent's position (pruned by
//! retention), the agent asks the edge for a fresh snapshot (`POST /sessions/snapshot`),
//! downloads and verifies it as at start, extracts it with core's `extract_snapshot` into a
//! scratch folder under the target's `.fs-sync/tmp/` (same file system, removed at every start),
//! and then brings the folder to it: files the snapshot no longer has are deleted, the others are
//! moved in from the scratch copy only when the content differs, and untracked files are left as
//! they are (or moved aside when a project file needs their place), exactly as when applying
//! events. The dev server keeps running and sees only the files that changed.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;
use fs_sync_core::{Limits, Manifest};
use serde_json::json;
use tokio::time::Instant;

use super::{ms, Mirror};
use crate::api::Api;
use crate::exec::{execute, Done};
use crate::fsops;
use crate::health::Observation;
use crate::metrics::Metrics;
use crate::plan::Step;
use crate::snapshot;
use crate::state::{self, HeadState};

/// A verified snapshot extracted into a scratch folder inside the target.
#[derive(Debug)]
pub(crate) struct Prepared {
    manifest: Manifest,
    scratch: PathBuf,
    snapshot_id: String,
    reused: bool,
    bytes: u64,
}

impl Drop for Prepared {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

/// Where [`prepare`] writes, for one attempt.
#[derive(Clone, Debug)]
pub(crate) struct Paths {
    pub(crate) root: PathBuf,
    pub(crate) state_dir: PathBuf,
    pub(crate) project_id: String,
    pub(crate) limits: Limits,
}

/// Asks the edge for a fresh snapshot, downloads and verifies it, and extracts it into a scratch
/// folder. Touches nothing of the project's: [`Mirror::adopt`] does that. The network part of a
/// re-hydration, run as its own task so the agent keeps serving signals, the token and health.
pub(crate) async fn prepare(api: Api, paths: Paths) -> anyhow::Result<Prepared> {
    let info = api
        .session_snapshot()
        .await
        .context("asking the edge for a fresh snapshot to re-hydrate from")?;
    std::fs::create_dir_all(&paths.state_dir)
        .with_context(|| format!("creating {}", paths.state_dir.display()))?;
    let tmp = state::download_file(&paths.state_dir);
    let downloaded = snapshot::download(api.client(), &info.signed_url, &info.sha256, &tmp, false)
        .await
        .context("downloading the fresh snapshot");
    let bytes = match downloaded {
        Ok(b) => b,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    static ATTEMPT: AtomicU64 = AtomicU64::new(0);
    let scratch = fsops::tmp_dir(&paths.root).join(format!(
        "rehydrate-{}-{}",
        std::process::id(),
        ATTEMPT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&scratch);
    let extracted = snapshot::extract(&tmp, &scratch, &paths.project_id, &paths.limits).await;
    let _ = std::fs::remove_file(&tmp);
    let prepared = match extracted {
        Ok(x) => Prepared {
            manifest: x.manifest,
            scratch,
            snapshot_id: info.snapshot_id,
            reused: info.reused,
            bytes,
        },
        Err(e) => {
            let _ = std::fs::remove_dir_all(&scratch);
            return Err(e);
        }
    };
    if prepared.manifest.as_of_seq != info.as_of_seq {
        // Dropping `prepared` removes the scratch folder.
        anyhow::bail!(
            "the edge said the snapshot is as of seq {}, its manifest says {}",
            info.as_of_seq,
            prepared.manifest.as_of_seq
        );
    }
    Ok(prepared)
}

/// What bringing the folder to the snapshot did.
#[derive(Debug, Default)]
struct Tally {
    written: u64,
    kept: u64,
    deleted: u64,
    failed: Vec<String>,
}

impl Mirror {
    /// Brings the folder to the prepared snapshot in place and starts over from its `as_of_seq`
    /// (returned). Saves the state at once, so a restart resumes from the snapshot's position.
    pub(crate) async fn adopt(&mut self, prepared: Prepared) -> anyhow::Result<u64> {
        let t = Instant::now();
        let as_of = prepared.manifest.as_of_seq;
        let root = self.root.clone();
        let scratch = prepared
            .scratch
            .strip_prefix(&root)
            .context("the scratch folder is inside the target")?
            .to_string_lossy()
            .into_owned();
        let heads = self.heads.clone();
        let files: Vec<(String, u64, String)> = prepared
            .manifest
            .files
            .iter()
            .map(|e| (e.path.clone(), e.version, e.content_hash.clone()))
            .collect();
        let (done, displaced) = tokio::task::spawn_blocking(move || {
            let (steps, untracked) = plan(&root, &scratch, &heads, files);
            execute(&root, steps, &untracked)
        })
        .await
        .context("the re-hydration task failed")?;
        self.log_displaced(&displaced);

        let mut tally = Tally::default();
        let mut heads = BTreeMap::new();
        for d in done {
            match d {
                Done::Kept(path, head) => {
                    tally.kept += 1;
                    heads.insert(path, head);
                }
                Done::Moved(_, path, head) => {
                    tally.written += 1;
                    Metrics::inc(&self.metrics.files_written);
                    heads.insert(path, head);
                }
                Done::Deleted(_, existed) => {
                    if existed {
                        tally.deleted += 1;
                        Metrics::inc(&self.metrics.files_deleted);
                    }
                }
                Done::Failed {
                    path,
                    intended,
                    error,
                    full,
                } => {
                    self.report_failed(
                        "apply.failed",
                        "a file operation of the re-hydration failed; the file is re-fetched later",
                        &path,
                        &error,
                        full,
                        json!({}),
                    );
                    if let Some((version, hash)) = intended {
                        heads.insert(path.clone(), HeadState::unstamped(version, hash));
                        tally.failed.push(path);
                    }
                }
                Done::Written(..) | Done::Stale(..) => {}
            }
        }
        if tally.written > 0 {
            self.health.observe(Observation::DiskOk);
        }
        let previous = self.applied;
        self.heads = heads;
        // The snapshot carries every content, binaries included.
        self.stale.clear();
        self.suspects = std::mem::take(&mut tally.failed);
        self.repair_due = true;
        self.applied = as_of;
        self.metrics.set_last_applied(as_of);
        // The journal describes the folder before the snapshot.
        self.journal = None;
        self.journal_lines = 0;
        let _ = std::fs::remove_file(&self.journal_path);
        self.save_state().await;
        self.logger.info(
            "rehydrate.applied",
            "the folder now holds the fresh snapshot; following from its seq",
            json!({"snapshot_id": prepared.snapshot_id, "reused": prepared.reused,
                   "bytes": prepared.bytes,
                   "as_of_seq": as_of, "previous_seq": previous, "files": self.heads.len(),
                   "written": tally.written, "kept": tally.kept, "deleted": tally.deleted,
                   "failed": self.suspects.len(), "duration_ms": ms(t)}),
        );
        Ok(as_of)
    }
}

/// The steps that bring the folder from `heads` to the snapshot's `files`, extracted under
/// `root/scratch`: deletes first (a file may give way to a folder), then each snapshot file kept
/// when the folder already holds its content, else moved in from the scratch copy. Also returns
/// the snapshot paths the agent did not track, which an untracked file there gives way to.
fn plan(
    root: &Path,
    scratch: &str,
    heads: &BTreeMap<String, HeadState>,
    files: Vec<(String, u64, String)>,
) -> (Vec<Step>, HashSet<String>) {
    let wanted: HashSet<&str> = files.iter().map(|f| f.0.as_str()).collect();
    let mut steps: Vec<Step> = heads
        .keys()
        .filter(|p| !wanted.contains(p.as_str()))
        .map(|p| Step::Delete { path: p.clone() })
        .collect();
    let mut untracked = HashSet::new();
    for (path, version, hash) in files {
        let full = fsops::path_of(root, &path);
        // Trust an unchanged stamp of a head with this content, as a resume does; hash the rest.
        let trusted = heads.get(&path).is_some_and(|h| {
            h.content_hash == hash
                && std::fs::symlink_metadata(&full)
                    .ok()
                    .filter(std::fs::Metadata::is_file)
                    .map(|m| fsops::stamp_of(&m))
                    .is_some_and(|s| s.size == h.size && s.mtime_ns == h.mtime_ns)
        });
        let same = trusted
            || fsops::hash_file(&full)
                .ok()
                .flatten()
                .is_some_and(|(h, _)| h == hash);
        if same {
            steps.push(Step::Keep {
                path,
                version,
                hash,
            });
            continue;
        }
        if !heads.contains_key(&path) {
            untracked.insert(path.clone());
        }
        steps.push(Step::Move {
            from: format!("{scratch}/{path}"),
            to: path,
            version,
            hash,
        });
    }
    (steps, untracked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsops::Displaced;

    fn head(root: &Path, path: &str, content: &str) -> (String, HeadState) {
        let stamp =
            fsops::write_atomic(root, path, content.as_bytes(), false, &mut Displaced::new())
                .unwrap();
        (
            path.to_owned(),
            HeadState::new(1, fs_sync_core::content_hash(content.as_bytes()), stamp),
        )
    }

    #[test]
    fn plans_deletes_first_keeps_what_matches_and_moves_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let heads: BTreeMap<String, HeadState> = [
            head(root, "same.txt", "same"),
            head(root, "changed.txt", "old"),
            head(root, "gone.txt", "gone"),
            head(root, "a", "a file that becomes a folder"),
        ]
        .into_iter()
        .collect();
        std::fs::write(root.join("untracked.txt"), "the user's").unwrap();
        std::fs::write(root.join("notes.txt"), "same bytes").unwrap();
        let h = |c: &str| fs_sync_core::content_hash(c.as_bytes());
        let files = vec![
            ("a/b.txt".to_owned(), 2, h("b")),
            ("changed.txt".to_owned(), 2, h("new")),
            ("notes.txt".to_owned(), 1, h("same bytes")),
            ("same.txt".to_owned(), 1, h("same")),
            ("untracked.txt".to_owned(), 1, h("project's")),
        ];
        let (steps, untracked) = plan(root, ".fs-sync/tmp/x", &heads, files);
        let kinds: Vec<String> = steps
            .iter()
            .map(|s| match s {
                Step::Delete { path } => format!("delete {path}"),
                Step::Keep { path, .. } => format!("keep {path}"),
                Step::Move { from, to, .. } => format!("move {from} {to}"),
                _ => "other".into(),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "delete a",
                "delete gone.txt",
                "move .fs-sync/tmp/x/a/b.txt a/b.txt",
                "move .fs-sync/tmp/x/changed.txt changed.txt",
                "keep notes.txt",
                "keep same.txt",
                "move .fs-sync/tmp/x/untracked.txt untracked.txt",
            ]
        );
        assert_eq!(
            untracked,
            ["a/b.txt".to_owned(), "untracked.txt".to_owned()].into()
        );
    }
}
