//! Files that drifted: heads that did not match the folder at startup, and binaries Storage
//! refused to the container token.

use std::collections::HashSet;

use fs_sync_core::content_hash;
use serde_json::json;
use tokio::time::Instant;

use super::{ms, Fetched, Mirror};
use crate::api::ApiError;
use crate::exec::{execute, Done};
use crate::fsops::{self, Stamp};
use crate::health::Observation;
use crate::metrics::Metrics;
use crate::plan::Step;
use crate::state::{HeadState, StaleBinary};

impl Mirror {
    /// Re-fetches heads that did not match the folder at startup (after catching up, so only
    /// files no later event rewrote are fetched).
    pub(crate) async fn repair(&mut self) -> Result<(), ApiError> {
        let t = Instant::now();
        let suspects = std::mem::take(&mut self.suspects);
        let root = self.root.clone();
        let heads: Vec<(String, HeadState)> = suspects
            .iter()
            .filter_map(|p| self.heads.get(p).map(|h| (p.clone(), h.clone())))
            .collect();
        let check = heads.clone();
        let mismatched: Vec<(String, u64, String)> = tokio::task::spawn_blocking(move || {
            check
                .into_iter()
                .filter(|(p, h)| {
                    fsops::hash_file(&fsops::path_of(&root, p))
                        .ok()
                        .flatten()
                        .is_none_or(|(d, _)| d != h.content_hash)
                })
                .map(|(p, h)| (p, h.version, h.content_hash))
                .collect()
        })
        .await
        .expect("the hashing task does not panic");
        if mismatched.is_empty() {
            // Later events rewrote them all; refresh the stamps.
            self.restamp(heads.into_iter().map(|(p, _)| p).collect())
                .await;
            return Ok(());
        }
        let mut got = match self.fetch(&mismatched).await {
            Ok(g) => g,
            Err(e) => {
                self.suspects = suspects;
                return Err(e);
            }
        };
        let steps: Vec<Step> = mismatched
            .into_iter()
            .map(
                |(path, version, hash)| match got.remove(&(path.clone(), version)) {
                    Some(Fetched::Bytes(bytes)) => Step::Write {
                        path,
                        version,
                        hash,
                        bytes,
                    },
                    Some(Fetched::Denied(storage_path)) => Step::Stale {
                        path,
                        version,
                        hash,
                        storage_path,
                    },
                    None => unreachable!("fetch returns every wanted (path, version)"),
                },
            )
            .collect();
        let n = steps.len();
        let root = self.root.clone();
        let (done, displaced) =
            tokio::task::spawn_blocking(move || execute(&root, steps, &HashSet::new()))
                .await
                .expect("the apply task does not panic");
        self.log_displaced(&displaced);
        for d in done {
            match d {
                Done::Written(path, head) => {
                    Metrics::inc(&self.metrics.files_repaired);
                    self.health.observe(Observation::DiskOk);
                    self.heads.insert(path, head);
                }
                Done::Stale(path, s) => {
                    self.stale.insert(path, s);
                }
                Done::Failed {
                    path, error, full, ..
                } => {
                    self.report_failed(
                        "repair.failed",
                        "could not repair a file; retrying later",
                        &path,
                        &error,
                        full,
                        json!({}),
                    );
                    self.suspects.push(path);
                }
                _ => {}
            }
        }
        self.dirty = true;
        self.logger.info(
            "repair",
            "re-fetched files that did not match the saved state",
            json!({"files": n, "duration_ms": ms(t)}),
        );
        Ok(())
    }

    async fn restamp(&mut self, paths: Vec<String>) {
        let root = self.root.clone();
        let stamps: Vec<(String, Stamp)> = tokio::task::spawn_blocking(move || {
            paths
                .into_iter()
                .filter_map(|p| {
                    let m = std::fs::metadata(fsops::path_of(&root, &p)).ok()?;
                    Some((p, fsops::stamp_of(&m)))
                })
                .collect()
        })
        .await
        .unwrap_or_default();
        for (p, s) in stamps {
            if let Some(h) = self.heads.get_mut(&p) {
                h.size = s.size;
                h.mtime_ns = s.mtime_ns;
                self.dirty = true;
            }
        }
    }

    /// Tries again to fetch binaries Storage refused earlier.
    pub(crate) async fn retry_stale(&mut self) {
        let stale: Vec<(String, StaleBinary)> = self
            .stale
            .iter()
            .map(|(p, s)| (p.clone(), s.clone()))
            .collect();
        for (path, s) in stale {
            let bytes = match self.api.storage_object(&s.storage_path).await {
                Ok(b) if content_hash(&b) == s.content_hash => b,
                Ok(_) => {
                    self.logger.warn(
                        "binary.mismatch",
                        "a Storage object does not match its content_hash",
                        json!({"path": path, "version": s.version}),
                    );
                    continue;
                }
                Err(e) => {
                    Metrics::inc(&self.metrics.binary_fetch_failures);
                    self.logger.warn(
                        "binary.unavailable",
                        "Storage still refuses a binary to the container token",
                        json!({"path": path, "version": s.version, "error": e.to_string()}),
                    );
                    continue;
                }
            };
            let root = self.root.clone();
            let step = Step::Write {
                path: path.clone(),
                version: s.version,
                hash: s.content_hash.clone(),
                bytes,
            };
            let (done, displaced) =
                tokio::task::spawn_blocking(move || execute(&root, vec![step], &HashSet::new()))
                    .await
                    .expect("the apply task does not panic");
            self.log_displaced(&displaced);
            if let Some(Done::Written(p, head)) = done.into_iter().next() {
                Metrics::inc(&self.metrics.files_written);
                self.stale.remove(&p);
                self.heads.insert(p, head);
                self.dirty = true;
                self.logger.info(
                    "binary.fetched",
                    "fetched a binary Storage had refused before",
                    json!({"path": path, "version": s.version}),
                );
            }
        }
    }
}
