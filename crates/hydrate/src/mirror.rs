//! The project folder as the change log says it should be.
//!
//! [`Mirror`] applies events (planned by [`crate::plan`], run by [`crate::exec`]), fetches the
//! contents events do not carry, repairs files that drifted while the agent was down, and keeps
//! the saved state and its journal (see the crate docs, "State").

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{bail, Context as _};
use fs_sync_core::{content_hash, Event};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::api::{Api, ApiError};
use crate::config::Config;
use crate::exec::{execute, Done};
use crate::fsops;
use crate::health::{is_disk_full, Monitor, Observation};
use crate::log::Logger;
use crate::metrics::Metrics;
use crate::plan::{self, Step};
use crate::snapshot;
use crate::state::{self, HeadState, JournalLine, StaleBinary, STATE_FORMAT};

mod rehydrate;
mod repair;

pub(crate) use rehydrate::{prepare as prepare_rehydration, Paths as RehydratePaths, Prepared};

/// Journal lines after which the full state is rewritten.
pub(crate) const JOURNAL_MAX: usize = 256;
/// Paths per `get_project_files` call.
const FILES_PAGE: usize = 500;

/// Contents fetched for (path, version).
enum Fetched {
    Bytes(Vec<u8>),
    Denied(String),
}

#[derive(Serialize)]
struct StateRef<'a> {
    format: &'a str,
    project_id: &'a str,
    seq: u64,
    heads: &'a BTreeMap<String, HeadState>,
    stale: &'a BTreeMap<String, StaleBinary>,
}

/// The project folder as the change log says it should be: applies events, repairs files that
/// drifted, and keeps the state and journal a restart resumes from.
pub(crate) struct Mirror {
    pub(crate) root: PathBuf,
    project_id: String,
    api: Api,
    logger: Logger,
    metrics: Arc<Metrics>,
    health: Arc<Monitor>,
    state_path: PathBuf,
    /// Appended after every applied event; folded into the state file every
    /// [`JOURNAL_MAX`] lines, on the position check and at exit.
    journal_path: PathBuf,
    journal: Option<std::fs::File>,
    pub(crate) journal_lines: usize,
    /// The last seq whose changes are on disk.
    applied: u64,
    pub(crate) heads: BTreeMap<String, HeadState>,
    stale: BTreeMap<String, StaleBinary>,
    /// Heads that did not match the folder; re-fetched after catching up.
    pub(crate) suspects: Vec<String>,
    pub(crate) repair_due: bool,
    pub(crate) stale_due: bool,
    pub(crate) dirty: bool,
}

impl Mirror {
    pub(crate) fn new(
        config: &Config,
        api: Api,
        logger: Logger,
        metrics: Arc<Metrics>,
        health: Arc<Monitor>,
    ) -> Self {
        Mirror {
            root: config.target.clone(),
            project_id: config.project_id.clone(),
            api,
            logger,
            metrics,
            health,
            state_path: state::state_file(&config.state_dir, &config.project_id),
            journal_path: state::journal_file(&config.state_dir, &config.project_id),
            journal: None,
            journal_lines: 0,
            applied: 0,
            heads: BTreeMap::new(),
            stale: BTreeMap::new(),
            suspects: Vec::new(),
            repair_due: true,
            stale_due: true,
            dirty: true,
        }
    }

    /// The last seq whose changes are on disk.
    pub(crate) fn applied(&self) -> u64 {
        self.applied
    }

    /// Resumes from saved state when it still describes the folder, else hydrates from the
    /// snapshot. Returns whether it resumed; [`Mirror::applied`] is then the starting seq.
    pub(crate) async fn resume_or_hydrate(&mut self, config: &Config) -> anyhow::Result<bool> {
        fsops::sweep_leftovers(&self.root);
        state::sweep_state_dir(&config.state_dir);
        match state::load(&self.state_path) {
            Ok(Some(mut s))
                if s.format == STATE_FORMAT
                    && s.project_id == self.project_id
                    && config.target.is_dir() =>
            {
                let t = Instant::now();
                let saved_seq = s.seq;
                let journaled = state::replay_journal(&self.journal_path, &mut s).unwrap_or(0);
                let root = self.root.clone();
                let mut heads = s.heads;
                let (heads, suspects) = tokio::task::spawn_blocking(move || {
                    let suspects = state::verify(&root, &mut heads);
                    (heads, suspects)
                })
                .await
                .context("the verification task failed")?;
                self.logger.info(
                    "state.resume",
                    "resuming from saved state",
                    json!({"seq": s.seq, "saved_seq": saved_seq, "journaled_events": journaled,
                           "files": heads.len(), "mismatched": suspects.len(),
                           "duration_ms": ms(t)}),
                );
                self.applied = s.seq;
                self.heads = heads;
                self.stale = s.stale;
                self.suspects = suspects;
                return Ok(true);
            }
            Ok(Some(_)) => self.logger.warn(
                "state.ignored",
                "saved state is for another project or folder; hydrating from the snapshot",
                Value::Null,
            ),
            Ok(None) => {}
            Err(e) => self.logger.warn(
                "state.ignored",
                "saved state is unreadable; hydrating from the snapshot",
                json!({"error": e.to_string()}),
            ),
        }
        let _ = std::fs::remove_file(&self.state_path);
        let _ = std::fs::remove_file(&self.journal_path);
        let (Some(url), Some(sha)) = (&config.snapshot_url, &config.snapshot_sha256) else {
            bail!(
                "no usable saved state in {} and no SNAPSHOT_URL to hydrate from",
                config.state_dir.display()
            );
        };
        std::fs::create_dir_all(&config.state_dir)
            .with_context(|| format!("creating {}", config.state_dir.display()))?;
        if let Some(parent) = config.target.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let tmp = state::download_file(&config.state_dir);
        let t = Instant::now();
        let downloaded =
            snapshot::download(self.api.client(), url, sha, &tmp, config.progress).await;
        let bytes = match downloaded {
            Ok(b) => b,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        self.logger.info(
            "snapshot.downloaded",
            "snapshot downloaded and verified",
            json!({"bytes": bytes, "duration_ms": ms(t)}),
        );
        let t = Instant::now();
        let cpu = CpuTime::now();
        let extracted =
            snapshot::extract(&tmp, &config.target, &self.project_id, &config.limits).await;
        let extract_ms = ms(t);
        let cpu = CpuTime::now().since(cpu);
        let _ = std::fs::remove_file(&tmp);
        let extracted = extracted?;
        self.log_displaced(&extracted.displaced);
        let t_heads = Instant::now();
        let fs_sync_core::Extraction {
            manifest, stamps, ..
        } = extracted;
        let as_of = manifest.as_of_seq;
        self.heads = manifest
            .files
            .into_iter()
            .map(|e| {
                let head = match stamps.get(&e.path) {
                    Some(&s) => HeadState::new(e.version, e.content_hash, s.into()),
                    // The reader fails unless every manifest entry was written, so this is not
                    // expected; an unstamped head is hashed at the next verification.
                    None => HeadState::unstamped(e.version, e.content_hash),
                };
                (e.path, head)
            })
            .collect();
        self.applied = as_of;
        self.logger.info(
            "snapshot.extracted",
            "snapshot extracted",
            json!({"files": self.heads.len(), "as_of_seq": as_of, "duration_ms": ms(t),
                   "extract_ms": extract_ms, "extract_user_ms": cpu.user_ms,
                   "extract_sys_ms": cpu.sys_ms, "heads_ms": ms(t_heads)}),
        );
        Ok(false)
    }

    /// Says where untracked entries that were in the way of the project's files went.
    pub(crate) fn log_displaced(&self, displaced: &[(String, String)]) {
        for (path, to) in displaced {
            Metrics::inc(&self.metrics.untracked_displaced);
            self.logger.warn(
                "untracked.displaced",
                "an entry the project does not track was in the way of a project file; moved aside, \
                 not deleted",
                json!({"path": path, "moved_to": to}),
            );
        }
    }

    /// Records what an applied event changed, so a restart knows it without a full save.
    fn journal_append(&mut self, seq: u64, touched: &[String]) {
        let mut line = JournalLine {
            seq,
            ..JournalLine::default()
        };
        for p in touched {
            line.heads.insert(p.clone(), self.heads.get(p).cloned());
            line.stale.insert(p.clone(), self.stale.get(p).cloned());
        }
        let mut text = serde_json::to_vec(&line).expect("a journal line encodes");
        text.push(b'\n');
        let result = (|| {
            if self.journal.is_none() {
                if let Some(dir) = self.journal_path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                self.journal = Some(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&self.journal_path)?,
                );
            }
            std::io::Write::write_all(self.journal.as_mut().expect("just opened"), &text)
        })();
        match result {
            Ok(()) => self.journal_lines += 1,
            Err(e) => {
                if is_disk_full(&e) {
                    self.health.observe(Observation::DiskFull(format!(
                        "appending to {}: {e}",
                        self.journal_path.display()
                    )));
                }
                self.journal = None;
                self.dirty = true;
                self.logger.error(
                    "state.journal_failed",
                    "could not append to the journal; saving the full state instead",
                    json!({"error": e.to_string()}),
                );
            }
        }
    }

    /// Applies `events` in order; returns the last seq applied (less than the last event's when
    /// one failed: the follower retries the rest after a backoff).
    /// A file operation failed: counted, a full disk reported to `/healthz`, logged as `event`
    /// with `fields` plus the path and the error.
    fn report_failed(
        &self,
        event: &str,
        msg: &str,
        path: &str,
        error: &str,
        full: bool,
        mut fields: Value,
    ) {
        Metrics::inc(&self.metrics.apply_errors);
        if full {
            self.health
                .observe(Observation::DiskFull(format!("writing {path}: {error}")));
        }
        fields["path"] = path.into();
        fields["error"] = error.into();
        self.logger.error(event, msg, fields);
    }

    pub(crate) async fn apply_batch(&mut self, events: &[Event]) -> u64 {
        for ev in events {
            if let Err(e) = self.apply_event(ev).await {
                self.logger.warn(
                    "sync.retry",
                    "could not apply an event; retrying",
                    json!({"error": e.to_string(), "seq": ev.seq, "applied": self.applied}),
                );
                break;
            }
        }
        self.applied
    }

    async fn apply_event(&mut self, ev: &Event) -> Result<(), ApiError> {
        let t = Instant::now();
        let changes = match ev.changes() {
            Ok(c) => c,
            Err(e) => {
                Metrics::inc(&self.metrics.events_rejected);
                self.logger.error(
                    "event.rejected",
                    "event refused; skipped",
                    json!({"seq": ev.seq, "error": e.to_string()}),
                );
                self.applied = ev.seq;
                return Ok(());
            }
        };
        // What is on disk now, then the plan.
        let probe = plan::paths_to_probe(&changes);
        let root = self.root.clone();
        let disk: HashMap<String, String> = tokio::task::spawn_blocking(move || {
            probe
                .into_iter()
                .filter_map(|p| {
                    let h = fsops::hash_file(&fsops::path_of(&root, &p)).ok()??.0;
                    Some((p, h))
                })
                .collect()
        })
        .await
        .expect("the hashing task does not panic");
        // Files at paths the project does not track yet: replaced only once moved aside.
        let untracked: HashSet<String> = disk
            .keys()
            .filter(|p| !self.heads.contains_key(*p))
            .cloned()
            .collect();
        let mut steps = plan::plan(changes, &disk);

        // Fetch what the event did not carry.
        let wanted = plan::wanted(&steps);
        if !wanted.is_empty() {
            let mut got = self.fetch(&wanted).await?;
            for s in &mut steps {
                if let Step::Fetch {
                    path,
                    version,
                    hash,
                } = s
                {
                    let key = (std::mem::take(path), *version);
                    let hash = std::mem::take(hash);
                    *s = match got.remove(&key) {
                        Some(Fetched::Bytes(bytes)) => Step::Write {
                            path: key.0,
                            version: key.1,
                            hash,
                            bytes,
                        },
                        Some(Fetched::Denied(storage_path)) => Step::Stale {
                            path: key.0,
                            version: key.1,
                            hash,
                            storage_path,
                        },
                        None => unreachable!("fetch returns every wanted (path, version)"),
                    };
                }
            }
        }

        // Phase 4: apply on disk.
        let root = self.root.clone();
        let (done, displaced) =
            tokio::task::spawn_blocking(move || execute(&root, steps, &untracked))
                .await
                .expect("the apply task does not panic");
        self.log_displaced(&displaced);
        let (mut written, mut skipped) = (0u64, 0u64);
        let mut touched: Vec<String> = Vec::with_capacity(done.len());
        for d in done {
            match &d {
                Done::Written(p, _)
                | Done::Kept(p, _)
                | Done::Deleted(p, _)
                | Done::Stale(p, _)
                | Done::Failed { path: p, .. } => touched.push(p.clone()),
                Done::Moved(from, to, _) => {
                    touched.push(from.clone());
                    touched.push(to.clone());
                }
            }
            match d {
                Done::Written(path, head) => {
                    written += 1;
                    Metrics::inc(&self.metrics.files_written);
                    self.stale.remove(&path);
                    self.heads.insert(path, head);
                }
                Done::Kept(path, head) => {
                    skipped += 1;
                    Metrics::inc(&self.metrics.skipped_writes);
                    self.stale.remove(&path);
                    self.heads.insert(path, head);
                }
                Done::Deleted(path, existed) => {
                    if existed {
                        Metrics::inc(&self.metrics.files_deleted);
                    }
                    self.stale.remove(&path);
                    self.heads.remove(&path);
                }
                Done::Moved(from, to, head) => {
                    Metrics::inc(&self.metrics.files_moved);
                    self.stale.remove(&from);
                    self.stale.remove(&to);
                    self.heads.remove(&from);
                    self.heads.insert(to, head);
                }
                Done::Stale(path, s) => {
                    self.stale.insert(path, s);
                }
                Done::Failed {
                    path,
                    intended,
                    error,
                    full,
                } => {
                    self.report_failed(
                        "apply.failed",
                        "a file operation failed; the file is re-fetched later",
                        &path,
                        &error,
                        full,
                        json!({"seq": ev.seq}),
                    );
                    if let Some((version, hash)) = intended {
                        self.heads
                            .insert(path.clone(), HeadState::unstamped(version, hash));
                        if !self.suspects.contains(&path) {
                            self.suspects.push(path);
                        }
                    }
                }
            }
        }
        if written > 0 {
            self.health.observe(Observation::DiskOk);
        }
        self.journal_append(ev.seq, &touched);
        self.applied = ev.seq;
        Metrics::inc(&self.metrics.events_applied);
        self.metrics.set_last_applied(ev.seq);
        let lag = ev
            .timestamp
            .as_deref()
            .and_then(crate::config::parse_time)
            .and_then(|ts| SystemTime::now().duration_since(ts).ok())
            .map(|d| d.as_secs_f64());
        if let Some(lag) = lag {
            self.metrics.observe_lag(lag);
        }
        self.logger.info(
            "event.applied",
            "event applied",
            json!({"event_type": ev.kind.as_str(), "seq": ev.seq, "duration_ms": ms(t),
                   "lag_ms": lag.map(|l| (l * 1000.0).round()), "written": written,
                   "skipped": skipped}),
        );
        Ok(())
    }

    /// Contents of exact (path, version) pairs, verified against their hashes. A binary whose
    /// Storage object the container token may not read comes back as `Denied`.
    async fn fetch(
        &self,
        wanted: &[(String, u64, String)],
    ) -> Result<HashMap<(String, u64), Fetched>, ApiError> {
        let mut rows = HashMap::new();
        for chunk in wanted.chunks(FILES_PAGE) {
            let paths: Vec<String> = chunk.iter().map(|w| w.0.clone()).collect();
            let versions: Vec<u64> = chunk.iter().map(|w| w.1).collect();
            for row in self.api.files(&paths, &versions).await? {
                rows.insert((row.file_path.clone(), row.version), row);
            }
        }
        let protocol = |message: String| ApiError::Protocol {
            what: "rpc get_project_files".into(),
            message,
        };
        let mut out = HashMap::new();
        for (path, version, hash) in wanted {
            let key = (path.clone(), *version);
            let Some(row) = rows.remove(&key) else {
                return Err(protocol(format!("no row for {path:?} version {version}")));
            };
            if row.is_deleted {
                return Err(protocol(format!(
                    "{path:?} version {version} is a tombstone"
                )));
            }
            let bytes = if let Some(content) = row.content {
                content.into_bytes()
            } else if let Some(sp) = row.storage_path {
                match self.api.storage_object(&sp).await {
                    Ok(b) => b,
                    Err(e) if e.is_denied() => {
                        Metrics::inc(&self.metrics.binary_fetch_failures);
                        self.logger.warn(
                            "binary.unavailable",
                            "Storage refused a binary to the container token; the file keeps its \
                             previous content until a later retry succeeds",
                            json!({"path": path, "version": version, "storage_path": sp,
                                   "error": e.to_string()}),
                        );
                        out.insert(key, Fetched::Denied(sp));
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            } else {
                return Err(protocol(format!(
                    "{path:?} version {version} has neither content nor storage_path"
                )));
            };
            let actual = content_hash(&bytes);
            if &actual != hash || row.content_hash.as_ref().is_some_and(|h| h != hash) {
                return Err(protocol(format!(
                    "{path:?} version {version} has hash {actual}, expected {hash}"
                )));
            }
            out.insert(key, Fetched::Bytes(bytes));
        }
        Ok(out)
    }

    pub(crate) async fn save_state(&mut self) {
        let st = StateRef {
            format: STATE_FORMAT,
            project_id: &self.project_id,
            seq: self.applied,
            heads: &self.heads,
            stale: &self.stale,
        };
        let bytes = match serde_json::to_vec(&st) {
            Ok(b) => b,
            Err(e) => {
                self.logger.error(
                    "state.save_failed",
                    "could not encode state",
                    json!({"error": e.to_string()}),
                );
                return;
            }
        };
        let path = self.state_path.clone();
        match tokio::task::spawn_blocking(move || state::save(&path, &bytes)).await {
            Ok(Ok(())) => {
                self.dirty = false;
                // Everything journaled is in the state file now.
                if let Some(j) = &self.journal {
                    if j.set_len(0).is_err() {
                        self.journal = None;
                        let _ = std::fs::remove_file(&self.journal_path);
                    }
                } else {
                    let _ = std::fs::remove_file(&self.journal_path);
                }
                self.journal_lines = 0;
            }
            Ok(Err(e)) => {
                if is_disk_full(&e) {
                    self.health.observe(Observation::DiskFull(format!(
                        "saving {}: {e}",
                        self.state_path.display()
                    )));
                }
                self.logger.error(
                    "state.save_failed",
                    "could not save state",
                    json!({"error": e.to_string(), "path": self.state_path.display().to_string()}),
                );
            }
            Err(e) => self.logger.error(
                "state.save_failed",
                "the state task failed",
                json!({"error": e.to_string()}),
            ),
        }
    }
}

fn ms(t: Instant) -> f64 {
    (t.elapsed().as_secs_f64() * 1e6).round() / 1e3
}

/// CPU time of the whole process (every thread), split into user and kernel (system) time: over
/// an extraction, user time is inflating and verifying, kernel time mostly creating and writing
/// the files (which on some file systems costs far more than writing their bytes).
#[derive(Clone, Copy, Debug, Default)]
struct CpuTime {
    user_ms: f64,
    sys_ms: f64,
}

impl CpuTime {
    fn now() -> CpuTime {
        // SAFETY: getrusage only writes the struct it is given.
        let usage = unsafe {
            let mut usage = std::mem::zeroed::<libc::rusage>();
            if libc::getrusage(libc::RUSAGE_SELF, &mut usage) != 0 {
                return CpuTime::default();
            }
            usage
        };
        let ms = |t: libc::timeval| t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3;
        CpuTime {
            user_ms: ms(usage.ru_utime),
            sys_ms: ms(usage.ru_stime),
        }
    }

    /// The time spent since `earlier`, rounded to µs.
    fn since(self, earlier: CpuTime) -> CpuTime {
        let round = |v: f64| (v * 1e3).round() / 1e3;
        CpuTime {
            user_ms: round(self.user_ms - earlier.user_ms),
            sys_ms: round(self.sys_ms - earlier.sys_ms),
        }
    }
}
