//! The agent: join, hydrate (or resume), follow the change log, serve readiness, run the dev
//! server.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context as _};
use fs_sync_core::{content_hash, Change, Disposition, Event, Sequencer};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::api::{Api, ApiError};
use crate::config::Config;
use crate::fsops::{self, Stamp};
use crate::log::{redact_url, Logger};
use crate::metrics::Metrics;
use crate::realtime::{self, RtCommand, RtConfig, RtEvent};
use crate::snapshot;
use crate::state::{self, HeadState, JournalLine, StaleBinary, STATE_FORMAT};

/// Largest page `list_project_events` returns.
const EVENTS_PAGE: u32 = 1000;
/// Journal lines after which the full state is rewritten.
const JOURNAL_MAX: usize = 256;
/// Paths per `get_project_files` call.
const FILES_PAGE: usize = 500;

/// How a run ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum Outcome {
    /// Stopped by a signal (no `--exec` child).
    Stopped,
    /// The `--exec` child exited with this status.
    ChildExited(std::process::ExitStatus),
}

impl Outcome {
    /// The process exit code: 0 when stopped, the child's code, or 128 + the signal that
    /// killed it.
    pub fn exit_code(&self) -> u8 {
        use std::os::unix::process::ExitStatusExt as _;
        match self {
            Outcome::Stopped => 0,
            Outcome::ChildExited(s) => match (s.code(), s.signal()) {
                (Some(c), _) => c as u8,
                (None, Some(sig)) => (128 + sig) as u8,
                (None, None) => 1,
            },
        }
    }
}

/// A configured agent, its metrics port bound.
pub struct Agent {
    config: Config,
    logger: Logger,
    metrics: Arc<Metrics>,
    listener: Option<tokio::net::TcpListener>,
    metrics_addr: Option<SocketAddr>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("project_id", &self.config.project_id)
            .field("target", &self.config.target)
            .field("metrics_addr", &self.metrics_addr)
            .finish_non_exhaustive()
    }
}

impl Agent {
    /// Binds the metrics address (if any); nothing else happens until [`Agent::run`].
    pub async fn start(config: Config, logger: Logger) -> anyhow::Result<Agent> {
        let listener = match config.metrics_addr {
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding the metrics address {addr}"))?,
            ),
            None => None,
        };
        let metrics_addr = listener.as_ref().map(|l| l.local_addr()).transpose()?;
        Ok(Agent {
            config,
            logger,
            metrics: Arc::new(Metrics::default()),
            listener,
            metrics_addr,
        })
    }

    /// The metrics, live.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Where `/healthz` and `/metrics` are served.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Runs until a signal arrives on `signals` (with no `--exec` child) or the child exits.
    /// With a child, each signal is forwarded to the child's process group instead.
    ///
    /// Dropping the returned future stops everything the agent started except the child,
    /// which is killed.
    pub async fn run(self, mut signals: mpsc::UnboundedReceiver<i32>) -> anyhow::Result<Outcome> {
        let started = Instant::now();
        let Agent {
            config,
            logger,
            metrics,
            listener,
            metrics_addr,
        } = self;
        let token = Arc::new(RwLock::new(config.token.clone()));
        let api = Api::new(
            &config.supabase_url,
            &config.anon_key,
            config.edge_url.as_deref(),
            &config.project_id,
            token.clone(),
        );
        let (ev_tx, mut ev_rx) = mpsc::unbounded_channel();
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut guard = Guard {
            stop: stop_tx,
            tasks: Vec::new(),
        };
        if let Some(l) = listener {
            guard
                .tasks
                .push(tokio::spawn(crate::http::serve(l, metrics.clone())));
        }
        logger.info(
            "agent.start",
            "fs-sync-hydrate starting",
            json!({
                "target": config.target.display().to_string(),
                "state_dir": config.state_dir.display().to_string(),
                "metrics_addr": metrics_addr.map(|a| a.to_string()),
                "snapshot_url": config.snapshot_url.as_deref().map(redact_url),
                "exec": config.exec.is_some(),
            }),
        );
        guard.tasks.push(realtime::spawn(
            RtConfig {
                url: realtime::websocket_url(&config.supabase_url, &config.anon_key),
                topic: format!("realtime:project:{}", config.project_id),
                token: token.clone(),
                heartbeat: config.heartbeat_interval,
            },
            logger.clone(),
            metrics.clone(),
            ev_tx,
            cmd_rx,
            stop_rx,
        ));

        // 1. Join first and buffer, so nothing committed after the snapshot's cut is missed
        //    (the catch-up after hydration covers the rest).
        let mut buffered = Vec::new();
        let deadline = Instant::now() + config.join_timeout;
        let mut signals_open = true;
        loop {
            tokio::select! {
                m = ev_rx.recv() => match m {
                    Some(RtEvent::Joined) => break,
                    Some(RtEvent::Event(v)) => buffered.push(v),
                    Some(RtEvent::Down) => {}
                    None => bail!("the realtime task ended"),
                },
                _ = tokio::time::sleep_until(deadline) => {
                    logger.warn("realtime.join_slow",
                        "realtime channel not joined yet; hydrating anyway (catch-up follows the join)",
                        json!({"waited_ms": config.join_timeout.as_millis() as u64}));
                    break;
                }
                sig = recv_signal(&mut signals, &mut signals_open) => {
                    logger.info("agent.stop", "stopping before hydration", json!({"signal": sig}));
                    return Ok(Outcome::Stopped);
                }
            }
        }

        // 2. Resume from state, or hydrate from the snapshot.
        let mut f = Follower {
            root: config.target.clone(),
            project_id: config.project_id.clone(),
            api: api.clone(),
            logger: logger.clone(),
            metrics: metrics.clone(),
            state_path: state::state_file(&config.state_dir, &config.project_id),
            journal_path: state::journal_file(&config.state_dir, &config.project_id),
            journal: None,
            journal_lines: 0,
            seq: Sequencer::new(0),
            head_of_line: None,
            heads: BTreeMap::new(),
            stale: BTreeMap::new(),
            suspects: Vec::new(),
            need_catchup: true,
            gap_seen: false,
            repair_due: true,
            stale_due: true,
            caught_up: false,
            dirty: true,
            failures: 0,
            retry_at: None,
        };
        let resumed = tokio::select! {
            r = f.resume_or_hydrate(&config) => r?,
            sig = recv_signal(&mut signals, &mut signals_open) => {
                logger.info("agent.stop", "stopping during hydration", json!({"signal": sig}));
                return Ok(Outcome::Stopped);
            }
        };
        metrics.set_start(f.applied(), resumed);
        for v in buffered {
            f.offer_value(v, false);
        }

        // 3. Follow.
        let mut sync_tick =
            tokio::time::interval_at(Instant::now() + config.sync_interval, config.sync_interval);
        sync_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut token_exp = config.token_expires_at;
        let mut refresh_at = refresh_time(token_exp, config.edge_url.is_some());
        if config.edge_url.is_none() {
            logger.warn(
                "token.no_refresh",
                "EDGE_URL is not set: the container token will not be refreshed",
                Value::Null,
            );
        }
        let mut ready = false;
        let mut child: Option<tokio::process::Child> = None;
        loop {
            f.work().await;
            if !ready && f.caught_up && f.suspects.is_empty() {
                ready = true;
                let secs = started.elapsed().as_secs_f64();
                metrics.set_ready(secs);
                logger.info(
                    "ready",
                    "hydrated and caught up",
                    json!({"hydrate_seconds": secs, "files": f.heads.len(), "seq": f.applied(),
                           "resumed": resumed}),
                );
                if let Some(cmd) = &config.exec {
                    child = Some(spawn_child(cmd, &config.target)?);
                    logger.info(
                        "exec.start",
                        "started the --exec command",
                        json!({"pid": child.as_ref().and_then(tokio::process::Child::id)}),
                    );
                }
            }
            tokio::select! {
                m = ev_rx.recv() => {
                    let Some(m) = m else { bail!("the realtime task ended") };
                    f.handle(m);
                    // Take everything already queued before applying: bursts become batches.
                    while let Ok(m) = ev_rx.try_recv() {
                        f.handle(m);
                    }
                }
                _ = sync_tick.tick() => {
                    f.repair_due = true;
                    f.stale_due = true;
                    if f.journal_lines > 0 {
                        f.dirty = true;
                    }
                    f.check_position().await;
                }
                _ = sleep_opt(refresh_at) => {
                    match api.refresh().await {
                        Ok(r) => {
                            *token.write().expect("token lock") = r.token.clone();
                            let _ = cmd_tx.send(RtCommand::Token(r.token));
                            Metrics::inc(&metrics.token_refreshes);
                            token_exp = r.expires_at;
                            refresh_at = refresh_time(token_exp, true);
                            logger.info("token.refreshed", "container token refreshed through the edge",
                                json!({"expires_at": token_exp.map(rfc3339)}));
                        }
                        Err(e) => {
                            Metrics::inc(&metrics.token_refresh_failures);
                            let left = token_exp
                                .and_then(|t| t.duration_since(SystemTime::now()).ok())
                                .unwrap_or_default();
                            let retry = (left / 4).clamp(Duration::from_secs(1), Duration::from_secs(30));
                            refresh_at = Some(Instant::now() + retry);
                            logger.warn("token.refresh_failed", "token refresh failed; retrying",
                                json!({"error": e.to_string(), "retry_in_ms": retry.as_millis() as u64}));
                        }
                    }
                }
                _ = sleep_opt(f.retry_at) => {
                    f.retry_at = None;
                }
                status = wait_child(&mut child) => {
                    f.save_state().await;
                    let status = status.context("waiting for the --exec command")?;
                    logger.info("exec.exited", "the --exec command exited",
                        json!({"status": status.to_string()}));
                    return Ok(Outcome::ChildExited(status));
                }
                sig = recv_signal(&mut signals, &mut signals_open) => {
                    if let Some(pid) = child.as_ref().and_then(tokio::process::Child::id) {
                        logger.info("exec.signal", "forwarding a signal to the --exec command",
                            json!({"signal": sig, "pid": pid}));
                        // SAFETY: kill(2) has no memory-safety preconditions; the negative pid
                        // addresses the child's process group (it was started with its own).
                        unsafe {
                            libc::kill(-(pid as i32), sig);
                        }
                    } else {
                        f.save_state().await;
                        logger.info("agent.stop", "stopped", json!({"signal": sig, "seq": f.applied()}));
                        return Ok(Outcome::Stopped);
                    }
                }
            }
        }
    }
}

/// Stops the realtime task and the HTTP server when the run ends or is dropped.
struct Guard {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn recv_signal(rx: &mut mpsc::UnboundedReceiver<i32>, open: &mut bool) -> i32 {
    if *open {
        if let Some(s) = rx.recv().await {
            return s;
        }
        *open = false;
    }
    std::future::pending().await
}

async fn sleep_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn wait_child(
    child: &mut Option<tokio::process::Child>,
) -> std::io::Result<std::process::ExitStatus> {
    match child {
        Some(c) => c.wait().await,
        None => std::future::pending().await,
    }
}

/// When to refresh a token expiring at `exp`: after 80% of its remaining life.
fn refresh_time(exp: Option<SystemTime>, enabled: bool) -> Option<Instant> {
    if !enabled {
        return None;
    }
    let left = exp?.duration_since(SystemTime::now()).unwrap_or_default();
    Some(Instant::now() + left.mul_f64(0.8))
}

fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn spawn_child(cmd: &str, dir: &Path) -> anyhow::Result<tokio::process::Child> {
    let mut c = tokio::process::Command::new("sh");
    c.arg("-c")
        .arg(cmd)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    // The dev server runs the project's code: it gets no credential of the agent's.
    for name in ["REALTIME_TOKEN", "SNAPSHOT_URL", "TOKEN_EXPIRES_AT"] {
        c.env_remove(name);
    }
    c.spawn()
        .with_context(|| format!("starting --exec {cmd:?} in {}", dir.display()))
}

/// What an event does to one file, once planned.
enum Step {
    Write {
        path: String,
        version: u64,
        hash: String,
        bytes: Vec<u8>,
    },
    Keep {
        path: String,
        version: u64,
        hash: String,
    },
    Fetch {
        path: String,
        version: u64,
        hash: String,
    },
    Stale {
        path: String,
        version: u64,
        hash: String,
        storage_path: String,
    },
    Delete {
        path: String,
    },
    Move {
        from: String,
        to: String,
        version: u64,
        hash: String,
    },
}

/// What happened on disk.
enum Done {
    Written(String, HeadState),
    Kept(String, HeadState),
    Deleted(String, bool),
    Moved(String, String, HeadState),
    Stale(String, StaleBinary),
    Failed {
        path: String,
        intended: Option<(u64, String)>,
        error: String,
    },
}

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

/// Applies the change log to the folder.
struct Follower {
    root: PathBuf,
    project_id: String,
    api: Api,
    logger: Logger,
    metrics: Arc<Metrics>,
    state_path: PathBuf,
    /// Appended after every applied event; folded into the state file every
    /// [`JOURNAL_MAX`] lines, on the position check and at exit.
    journal_path: PathBuf,
    journal: Option<std::fs::File>,
    journal_lines: usize,
    seq: Sequencer<Event>,
    /// An event taken from the sequencer whose application failed; retried first.
    head_of_line: Option<Event>,
    heads: BTreeMap<String, HeadState>,
    stale: BTreeMap<String, StaleBinary>,
    /// Heads that did not match the folder; re-fetched after catching up.
    suspects: Vec<String>,
    need_catchup: bool,
    /// A realtime event arrived beyond a missing seq.
    gap_seen: bool,
    repair_due: bool,
    stale_due: bool,
    caught_up: bool,
    dirty: bool,
    failures: u32,
    retry_at: Option<Instant>,
}

impl Follower {
    /// The last seq whose changes are on disk.
    fn applied(&self) -> u64 {
        self.seq.last_applied() - u64::from(self.head_of_line.is_some())
    }

    async fn resume_or_hydrate(&mut self, config: &Config) -> anyhow::Result<bool> {
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
                self.seq = Sequencer::new(s.seq);
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
        let tmp = config
            .state_dir
            .join(format!(".snapshot-{}.zip.part", std::process::id()));
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
        let extracted = snapshot::extract(&tmp, &config.target).await;
        let _ = std::fs::remove_file(&tmp);
        let manifest = extracted?;
        if manifest.project_id != self.project_id {
            bail!(
                "the snapshot is of project {}, not PROJECT_ID {}",
                manifest.project_id,
                self.project_id
            );
        }
        let as_of = manifest.as_of_seq;
        let root = self.root.clone();
        self.heads = tokio::task::spawn_blocking(move || {
            manifest
                .files
                .iter()
                .map(|e| {
                    let stamp = std::fs::metadata(fsops::path_of(&root, &e.path))
                        .map(|m| fsops::stamp_of(&m))
                        .unwrap_or(Stamp {
                            size: e.size,
                            mtime_ns: 0,
                        });
                    (
                        e.path.clone(),
                        HeadState::new(e.version, e.content_hash.clone(), stamp),
                    )
                })
                .collect::<BTreeMap<_, _>>()
        })
        .await
        .context("the stat task failed")?;
        self.seq = Sequencer::new(as_of);
        self.logger.info(
            "snapshot.extracted",
            "snapshot extracted",
            json!({"files": self.heads.len(), "as_of_seq": as_of, "duration_ms": ms(t)}),
        );
        Ok(false)
    }

    /// Takes one message from the realtime task.
    fn handle(&mut self, m: RtEvent) {
        match m {
            RtEvent::Joined => self.need_catchup = true,
            RtEvent::Down => {}
            RtEvent::Event(v) => {
                self.offer_value(v, false);
            }
        }
    }

    fn offer_value(&mut self, v: Value, from_log: bool) -> bool {
        let event: Event = match serde_json::from_value(v) {
            Ok(e) => e,
            Err(e) => {
                // The log has it too: a gap reveals it and the catch-up reads it.
                self.logger.warn(
                    "event.unreadable",
                    "ignored a realtime payload that is not an fs-sync event",
                    json!({"error": e.to_string()}),
                );
                return false;
            }
        };
        if event.project_id != self.project_id {
            return false;
        }
        let seq = event.seq;
        if self.head_of_line.as_ref().is_some_and(|h| h.seq == seq) {
            return false;
        }
        match self.seq.offer(seq, event) {
            Disposition::Duplicate => false,
            Disposition::Apply => true,
            Disposition::Gap { .. } => {
                if !from_log {
                    self.gap_seen = true;
                }
                true
            }
        }
    }

    /// Applies what is ready, catches up and repairs as needed; on an error, backs off.
    async fn work(&mut self) {
        if self.retry_at.is_some() {
            return;
        }
        let result = async {
            self.apply_ready().await?;
            // Judged after a whole batch, so events merely reordered within it are no gap.
            if let Some((from, to)) = self.seq.missing().filter(|_| self.gap_seen) {
                self.gap_seen = false;
                Metrics::inc(&self.metrics.gaps);
                self.logger.info(
                    "gap",
                    "events missing from the realtime stream; catching up from the log",
                    json!({"seq": self.applied(), "missing_from": from, "missing_to": to}),
                );
            }
            if self.need_catchup || self.seq.missing().is_some() {
                self.catch_up().await?;
            }
            if self.repair_due && !self.suspects.is_empty() {
                self.repair_due = false;
                self.repair().await?;
            }
            if self.stale_due && !self.stale.is_empty() {
                self.stale_due = false;
                self.retry_stale().await;
            }
            Ok::<(), ApiError>(())
        }
        .await;
        match result {
            Ok(()) => self.failures = 0,
            Err(e) => {
                self.failures += 1;
                let delay = realtime::backoff(self.failures, realtime::jitter());
                self.retry_at = Some(Instant::now() + delay);
                self.logger.warn(
                    "sync.retry",
                    "could not sync; retrying",
                    json!({"error": e.to_string(), "seq": self.applied(),
                           "retry_in_ms": delay.as_millis() as u64}),
                );
            }
        }
        if self.dirty || self.journal_lines >= JOURNAL_MAX {
            self.save_state().await;
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

    async fn apply_ready(&mut self) -> Result<(), ApiError> {
        loop {
            let Some(ev) = self.head_of_line.take().or_else(|| self.seq.pop_ready()) else {
                return Ok(());
            };
            if let Err(e) = self.apply_event(&ev).await {
                self.head_of_line = Some(ev);
                return Err(e);
            }
        }
    }

    async fn catch_up(&mut self) -> Result<(), ApiError> {
        let t = Instant::now();
        let from = self.applied();
        let mut fetched = 0u64;
        loop {
            let page = self
                .api
                .list_events(self.seq.last_applied(), EVENTS_PAGE)
                .await?;
            let n = page.len();
            for v in page {
                if let Some(seq) = v.get("seq").and_then(Value::as_u64) {
                    if seq <= self.seq.last_applied() {
                        continue;
                    }
                }
                let raw = v.clone();
                if let Err(e) = serde_json::from_value::<Event>(raw) {
                    Metrics::inc(&self.metrics.events_rejected);
                    return Err(ApiError::Protocol {
                        what: "rpc list_project_events".into(),
                        message: format!("event seq {} is not readable: {e}", v["seq"]),
                    });
                }
                if self.offer_value(v, true) {
                    fetched += 1;
                    Metrics::inc(&self.metrics.catchup_events);
                }
            }
            self.apply_ready().await?;
            if n < EVENTS_PAGE as usize {
                break;
            }
        }
        self.need_catchup = false;
        self.caught_up = true;
        if fetched > 0 {
            Metrics::inc(&self.metrics.catchups);
            self.logger.info(
                "catchup",
                "caught up from the change log",
                json!({"from_seq": from, "seq": self.applied(), "events": fetched,
                       "duration_ms": ms(t)}),
            );
        }
        Ok(())
    }

    /// Confirms the position: a dropped last event has no successor to reveal it.
    async fn check_position(&mut self) {
        match self.api.sync_state().await {
            Ok(server) if server > self.seq.highest_seen() => {
                self.logger.info(
                    "sync.behind",
                    "the change log is ahead; catching up",
                    json!({"seq": self.applied(), "server_seq": server}),
                );
                self.need_catchup = true;
            }
            Ok(_) => {}
            Err(e) => self.logger.warn(
                "sync.check_failed",
                "could not read the project's sync state",
                json!({"error": e.to_string()}),
            ),
        }
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
                return Ok(());
            }
        };
        // Phase 1: what is on disk now.
        let mut probe: Vec<String> = Vec::new();
        for c in &changes {
            match c {
                Change::Write { path, .. } => probe.push(path.clone()),
                Change::Rename { from, to, .. } => {
                    probe.push(to.clone());
                    probe.push(from.clone());
                }
                Change::Delete { .. } => {}
            }
        }
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
        let on_disk = |p: &str, h: &str| disk.get(p).is_some_and(|d| d == h);

        // Phase 2: plan.
        let mut steps = Vec::with_capacity(changes.len());
        for c in changes {
            match c {
                Change::Write {
                    path,
                    version,
                    content_hash: hash,
                    content,
                } => steps.push(if on_disk(&path, &hash) {
                    Step::Keep {
                        path,
                        version,
                        hash,
                    }
                } else if let Some(content) = content {
                    Step::Write {
                        path,
                        version,
                        hash,
                        bytes: content.into_bytes(),
                    }
                } else {
                    Step::Fetch {
                        path,
                        version,
                        hash,
                    }
                }),
                Change::Delete { path, .. } => steps.push(Step::Delete { path }),
                Change::Rename {
                    from,
                    to,
                    version,
                    content_hash: hash,
                    ..
                } => {
                    if on_disk(&to, &hash) {
                        steps.push(Step::Keep {
                            path: to,
                            version,
                            hash,
                        });
                        steps.push(Step::Delete { path: from });
                    } else if on_disk(&from, &hash) {
                        steps.push(Step::Move {
                            from,
                            to,
                            version,
                            hash,
                        });
                    } else {
                        steps.push(Step::Fetch {
                            path: to,
                            version,
                            hash,
                        });
                        steps.push(Step::Delete { path: from });
                    }
                }
            }
        }

        // Phase 3: fetch what the event did not carry.
        let wanted: Vec<(String, u64, String)> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Fetch {
                    path,
                    version,
                    hash,
                } => Some((path.clone(), *version, hash.clone())),
                _ => None,
            })
            .collect();
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
        let done = tokio::task::spawn_blocking(move || execute(&root, steps))
            .await
            .expect("the apply task does not panic");
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
                } => {
                    Metrics::inc(&self.metrics.apply_errors);
                    self.logger.error(
                        "apply.failed",
                        "a file operation failed; the file is re-fetched later",
                        json!({"seq": ev.seq, "path": path, "error": error}),
                    );
                    if let Some((version, hash)) = intended {
                        // Record the intended head with no stamp: verification fails until a
                        // repair writes it.
                        let head = HeadState {
                            version,
                            content_hash: hash,
                            size: u64::MAX,
                            mtime_ns: 0,
                        };
                        self.heads.insert(path.clone(), head);
                        if !self.suspects.contains(&path) {
                            self.suspects.push(path);
                        }
                    }
                }
            }
        }
        self.journal_append(ev.seq, &touched);
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

    /// Re-fetches heads that did not match the folder at startup (after catching up, so only
    /// files no later event rewrote are fetched).
    async fn repair(&mut self) -> Result<(), ApiError> {
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
        let done = tokio::task::spawn_blocking(move || execute(&root, steps))
            .await
            .expect("the apply task does not panic");
        for d in done {
            match d {
                Done::Written(path, head) => {
                    Metrics::inc(&self.metrics.files_repaired);
                    self.heads.insert(path, head);
                }
                Done::Stale(path, s) => {
                    self.stale.insert(path, s);
                }
                Done::Failed { path, error, .. } => {
                    Metrics::inc(&self.metrics.apply_errors);
                    self.logger.error(
                        "repair.failed",
                        "could not repair a file; retrying later",
                        json!({"path": path, "error": error}),
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
    async fn retry_stale(&mut self) {
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
            let done = tokio::task::spawn_blocking(move || execute(&root, vec![step]))
                .await
                .expect("the apply task does not panic");
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

    async fn save_state(&mut self) {
        let st = StateRef {
            format: STATE_FORMAT,
            project_id: &self.project_id,
            seq: self.applied(),
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
            Ok(Err(e)) => self.logger.error(
                "state.save_failed",
                "could not save state",
                json!({"error": e.to_string(), "path": self.state_path.display().to_string()}),
            ),
            Err(e) => self.logger.error(
                "state.save_failed",
                "the state task failed",
                json!({"error": e.to_string()}),
            ),
        }
    }
}

/// Runs planned steps on disk, in order.
fn execute(root: &Path, steps: Vec<Step>) -> Vec<Done> {
    let mut out = Vec::with_capacity(steps.len());
    for s in steps {
        out.push(match s {
            Step::Write {
                path,
                version,
                hash,
                bytes,
            } => match fsops::write_atomic(root, &path, &bytes) {
                Ok(stamp) => Done::Written(path, HeadState::new(version, hash, stamp)),
                Err(e) => Done::Failed {
                    path,
                    intended: Some((version, hash)),
                    error: e.to_string(),
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
                },
            },
            Step::Move {
                from,
                to,
                version,
                hash,
            } => match fsops::move_file(root, &from, &to) {
                Ok(stamp) => Done::Moved(from, to, HeadState::new(version, hash, stamp)),
                Err(e) => Done::Failed {
                    path: to,
                    intended: Some((version, hash)),
                    error: e.to_string(),
                },
            },
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
            },
        });
    }
    out
}

fn ms(t: Instant) -> f64 {
    (t.elapsed().as_secs_f64() * 1e6).round() / 1e3
}
