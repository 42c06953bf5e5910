//! The agent's supervisor: join, hydrate (or resume), then follow the change log while serving
//! health, refreshing the token, re-hydrating in place when the log no longer holds the position,
//! forwarding signals and running the dev server (`--exec`). Following is [`crate::driver`]'s,
//! the folder [`crate::mirror`]'s, health [`crate::health`]'s.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context as _};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::api::Api;
use crate::config::Config;
use crate::driver::{Driver, NeedsRehydrate};
use crate::health::{is_disk_full, HealthConfig, Monitor, Observation};
use crate::log::{redact_url, Logger};
use crate::metrics::Metrics;
use crate::mirror::{self, Mirror, Prepared, JOURNAL_MAX};
use crate::realtime::{self, RtCommand, RtConfig, RtEvent};

/// The PATH the `--exec` command gets when the agent has none (Docker's default).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

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
        let health = Monitor::new(
            HealthConfig {
                realtime_intervals: config.health_realtime_intervals,
                max_behind: config.health_max_behind,
            },
            metrics.clone(),
            logger.clone(),
        );
        let token = Arc::new(RwLock::new(config.token.clone()));
        let api = Api::new(
            &config.supabase_url,
            &config.anon_key,
            config.edge_url.as_deref(),
            &config.project_id,
            token.clone(),
            health.clone(),
        );
        let (ev_tx, mut ev_rx) = mpsc::unbounded_channel();
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut guard = Guard {
            stop: stop_tx,
            tasks: Vec::new(),
        };
        if let Some(l) = listener {
            guard.tasks.push(tokio::spawn(crate::http::serve(
                l,
                metrics.clone(),
                health.clone(),
            )));
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

        // 1. Join realtime and hydrate (or resume) at once. The snapshot was cut before the
        //    container started, so its download need not wait for the join; only the catch-up
        //    (step 2) must follow the join, so that whatever was committed after the cut comes
        //    from the log or, once joined, from realtime, and nothing falls in between.
        let mut mirror = Mirror::new(
            &config,
            api.clone(),
            logger.clone(),
            metrics.clone(),
            health.clone(),
        );
        let mut buffered = Vec::new();
        let deadline = Instant::now() + config.join_timeout;
        let mut signals_open = true;
        let mut joining = true;
        let mut hydrated = None;
        let resumed = {
            let hydrating = mirror.resume_or_hydrate(&config);
            tokio::pin!(hydrating);
            loop {
                if let (false, Some(resumed)) = (joining, hydrated) {
                    break resumed;
                }
                tokio::select! {
                    r = &mut hydrating, if hydrated.is_none() => hydrated = Some(r?),
                    m = ev_rx.recv(), if joining => match m {
                        Some(RtEvent::Joined) => {
                            health.observe(Observation::Joined);
                            joining = false;
                        }
                        Some(m) => {
                            observe_realtime(&health, &m);
                            buffered.push(m);
                        }
                        None => bail!("the realtime task ended"),
                    },
                    _ = tokio::time::sleep_until(deadline), if joining => {
                        logger.warn("realtime.join_slow",
                            "realtime channel not joined yet; catching up anyway (another catch-up follows the join)",
                            json!({"waited_ms": config.join_timeout.as_millis() as u64}));
                        joining = false;
                    }
                    sig = recv_signal(&mut signals, &mut signals_open) => {
                        let msg = match hydrated {
                            None => "stopping during hydration",
                            Some(_) => "stopping before the join",
                        };
                        logger.info("agent.stop", msg, json!({"signal": sig}));
                        return Ok(Outcome::Stopped);
                    }
                }
            }
        };
        metrics.set_start(mirror.applied(), resumed);
        let mut driver = Driver::new(
            mirror.applied(),
            config.sync_interval,
            &config.project_id,
            api.clone(),
            logger.clone(),
            metrics.clone(),
        );
        driver.handle(RtEvent::Joined);
        for m in buffered {
            driver.handle(m);
        }

        // 2. Follow, catching up first. Housekeeping (repairs, binaries Storage refused, folding
        //    the journal) runs on the idle interval; position checks on the follower's own cadence.
        let mut housekeeping =
            tokio::time::interval_at(Instant::now() + config.sync_interval, config.sync_interval);
        housekeeping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
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
        let mut healthy = false;
        let mut rehydration: Option<Rehydration> = None;
        // Re-hydrations since the agent was last settled: a snapshot the log cannot follow on
        // from (one older than the oldest kept event) must not make it ask again and again.
        let mut rehydrations_in_a_row = 0u32;
        let mut child: Option<tokio::process::Child> = None;
        loop {
            if rehydration.is_none() {
                if let Err(NeedsRehydrate(reason)) = driver.run(&mut mirror).await {
                    if config.edge_url.is_none() {
                        bail!(NeedsRehydrate(reason));
                    }
                    Metrics::inc(&metrics.rehydrations);
                    logger.warn(
                        "rehydrate.start",
                        "the change log no longer holds this folder's position; re-hydrating in \
                         place from a fresh snapshot",
                        json!({"reason": reason, "seq": mirror.applied()}),
                    );
                    health.observe(Observation::Hydrating(format!(
                        "re-hydrating from a fresh snapshot: {reason}"
                    )));
                    healthy = false;
                    rehydrations_in_a_row += 1;
                    let wait = (rehydrations_in_a_row > 1)
                        .then(|| realtime::backoff(rehydrations_in_a_row - 1, realtime::jitter()));
                    rehydration = Some(Rehydration {
                        task: None,
                        attempts: 0,
                        retry_at: wait.map(|w| Instant::now() + w),
                    });
                }
            }
            health.observe(Observation::Applied(mirror.applied()));
            if let Some(r) = &mut rehydration {
                if r.task.is_none() && r.retry_at.is_none_or(|at| at <= Instant::now()) {
                    let paths = mirror::RehydratePaths {
                        root: config.target.clone(),
                        state_dir: config.state_dir.clone(),
                        project_id: config.project_id.clone(),
                        limits: config.limits.clone(),
                    };
                    r.task = Some(tokio::spawn(mirror::prepare_rehydration(
                        api.clone(),
                        paths,
                    )));
                    r.retry_at = None;
                }
            } else if driver.caught_up() {
                // After catching up, so only files no later event rewrote are fetched.
                if mirror.repair_due && !mirror.suspects.is_empty() {
                    mirror.repair_due = false;
                    if let Err(e) = mirror.repair().await {
                        logger.warn(
                            "repair.retry",
                            "could not re-fetch files that drifted; retrying on the next interval",
                            json!({"error": e.to_string()}),
                        );
                    }
                }
                if mirror.stale_due {
                    mirror.stale_due = false;
                    mirror.retry_stale().await;
                }
            }
            if mirror.dirty || mirror.journal_lines >= JOURNAL_MAX {
                mirror.save_state().await;
            }
            let settled = rehydration.is_none() && driver.caught_up() && mirror.suspects.is_empty();
            if settled && !healthy {
                healthy = true;
                rehydrations_in_a_row = 0;
                health.observe(Observation::Hydrated);
            }
            if !ready && settled {
                ready = true;
                let secs = started.elapsed().as_secs_f64();
                metrics.set_ready(secs);
                let cold_start = cold_start_seconds(&config.token);
                if let Some(c) = cold_start {
                    metrics.set_cold_start(c);
                }
                logger.info(
                    "ready",
                    "hydrated and caught up",
                    json!({"hydrate_seconds": secs, "cold_start_seconds": cold_start,
                           "files": mirror.heads.len(), "seq": mirror.applied(),
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
            let following = rehydration.is_none();
            let retry_at = rehydration.as_ref().and_then(|r| r.retry_at);
            tokio::select! {
                m = ev_rx.recv() => {
                    let Some(m) = m else { bail!("the realtime task ended") };
                    observe_realtime(&health, &m);
                    driver.handle(m);
                    // Take everything already queued before applying: bursts become batches.
                    while let Ok(m) = ev_rx.try_recv() {
                        observe_realtime(&health, &m);
                        driver.handle(m);
                    }
                }
                _ = sleep_opt(driver.wakeup()), if following => {}
                _ = housekeeping.tick() => {
                    mirror.repair_due = true;
                    mirror.stale_due = true;
                    if mirror.journal_lines > 0 {
                        mirror.dirty = true;
                    }
                    health.observe(Observation::Applied(mirror.applied()));
                    health.tick();
                }
                prepared = join_opt(rehydration.as_mut().and_then(|r| r.task.as_mut())) => {
                    let r = rehydration.as_mut().expect("a task runs only while re-hydrating");
                    r.task = None;
                    match prepared {
                        Ok(prepared) => {
                            let seq = mirror.adopt(prepared).await?;
                            driver.reset(seq);
                            rehydration = None;
                        }
                        Err(e) => {
                            if e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(is_disk_full)) {
                                health.observe(Observation::DiskFull(format!("{e:#}")));
                            }
                            r.attempts += 1;
                            let retry = realtime::backoff(r.attempts, realtime::jitter());
                            r.retry_at = Some(Instant::now() + retry);
                            logger.warn("rehydrate.retry", "re-hydration failed; retrying",
                                json!({"error": format!("{e:#}"), "attempt": r.attempts,
                                       "retry_in_ms": retry.as_millis() as u64}));
                        }
                    }
                }
                _ = sleep_opt(retry_at) => {}
                _ = sleep_opt(refresh_at) => {
                    match api.refresh().await {
                        Ok(r) => {
                            *token.write().expect("token lock") = r.token.clone();
                            let _ = cmd_tx.send(RtCommand::Token(r.token));
                            Metrics::inc(&metrics.token_refreshes);
                            token_exp = r.expires_at;
                            refresh_at = refresh_time(token_exp, true);
                            // Use the new token at once, so a token the server refuses shows
                            // within an interval.
                            driver.catch_up_now();
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
                status = wait_child(&mut child) => {
                    mirror.save_state().await;
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
                        mirror.save_state().await;
                        logger.info("agent.stop", "stopped", json!({"signal": sig, "seq": mirror.applied()}));
                        return Ok(Outcome::Stopped);
                    }
                }
            }
        }
    }
}

/// A re-hydration in progress: the network part runs as its own task (aborted if the run ends
/// first); failed attempts are retried with core's backoff.
struct Rehydration {
    task: Option<tokio::task::JoinHandle<anyhow::Result<Prepared>>>,
    attempts: u32,
    retry_at: Option<Instant>,
}

impl Drop for Rehydration {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

/// What the realtime connection's news means for health.
fn observe_realtime(health: &Monitor, m: &RtEvent) {
    match m {
        RtEvent::Joined => health.observe(Observation::Joined),
        RtEvent::Down(reason) => health.observe(Observation::Down(reason.clone())),
        RtEvent::Event(_) => {}
    }
}

/// Seconds from the container token's `iat` (when the edge created the session) to now; the
/// token is only decoded for the timestamp, not verified.
fn cold_start_seconds(token: &str) -> Option<f64> {
    let iat = crate::config::jwt_claims(token)?.get("iat")?.as_f64()?;
    let now = SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs_f64();
    Some((now - iat).max(0.0))
}

async fn join_opt(
    task: Option<&mut tokio::task::JoinHandle<anyhow::Result<Prepared>>>,
) -> anyhow::Result<Prepared> {
    match task {
        Some(t) => match t.await {
            Ok(r) => r,
            Err(e) => Err(anyhow::anyhow!("the re-hydration task failed: {e}")),
        },
        None => std::future::pending().await,
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
    // /bin/sh by path, and a default PATH for the command, so the agent needs none itself.
    let mut c = tokio::process::Command::new("/bin/sh");
    if std::env::var_os("PATH").is_none() {
        c.env("PATH", DEFAULT_PATH);
    }
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
