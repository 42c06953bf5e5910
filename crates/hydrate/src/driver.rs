//! Drives fs-sync-core's [`Follower`] with the agent's I/O: realtime messages in; catch-up pages,
//! position checks and applying to the folder ([`Mirror`]) out. The rules (ordering, gaps,
//! paging, when to check, backoff) are all the follower's; this only moves data and time.

use std::sync::Arc;
use std::time::Duration;

use fs_sync_core::{Action, Event, Failure, Follower, FollowerConfig, FollowerStats, Input};
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::api::{Api, ApiError};
use crate::log::Logger;
use crate::metrics::Metrics;
use crate::mirror::Mirror;
use crate::realtime::RtEvent;

/// Why following stopped: the agent re-hydrates in place from a fresh snapshot (or, without
/// EDGE_URL to ask for one, stops with this message).
#[derive(Debug, thiserror::Error)]
#[error("the change log cannot bring this folder up to date ({0}); re-hydrating in place needs EDGE_URL (POST /sessions/snapshot): start the container again from a fresh snapshot")]
pub(crate) struct NeedsRehydrate(pub(crate) String);

pub(crate) struct Driver {
    follower: Follower<Event>,
    origin: Instant,
    project_id: String,
    api: Api,
    logger: Logger,
    metrics: Arc<Metrics>,
    seen: FollowerStats,
}

impl Driver {
    /// A driver for a folder that has applied everything up to `seq`.
    pub(crate) fn new(
        seq: u64,
        idle_check: Duration,
        project_id: &str,
        api: Api,
        logger: Logger,
        metrics: Arc<Metrics>,
    ) -> Self {
        let origin = Instant::now();
        let config = FollowerConfig {
            idle_check,
            seed: u64::from(std::process::id()) ^ origin.elapsed().subsec_nanos() as u64,
            ..FollowerConfig::default()
        };
        Driver {
            follower: Follower::new(seq, Duration::ZERO, config),
            origin,
            project_id: project_id.to_owned(),
            api,
            logger,
            metrics,
            seen: FollowerStats::default(),
        }
    }

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    /// Starts following again from `seq` after a re-hydration, keeping the counters (the
    /// exported ones only grow).
    pub(crate) fn reset(&mut self, seq: u64) {
        let now = self.now();
        self.follower.reset(seq, now);
    }

    /// Catches up (and so uses the token) at the next run, e.g. right after a token refresh, so
    /// a refused token shows at once.
    pub(crate) fn catch_up_now(&mut self) {
        self.follower.catch_up_now();
    }

    /// Caught up as far as the follower knows.
    pub(crate) fn caught_up(&self) -> bool {
        self.follower.is_caught_up()
    }

    /// When to call [`Driver::run`] again if no message arrives first.
    pub(crate) fn wakeup(&self) -> Option<Instant> {
        self.follower.next_wakeup().map(|d| self.origin + d)
    }

    /// Feeds one message from the realtime task.
    pub(crate) fn handle(&mut self, m: RtEvent) {
        let now = self.now();
        match m {
            RtEvent::Joined => self.follower.handle(now, Input::Joined),
            RtEvent::Down(_) => self.follower.handle(now, Input::Disconnected),
            RtEvent::Event(v) => {
                if let Some(event) = self.live_event(v) {
                    self.follower.handle(now, Input::Live(event));
                }
            }
        }
    }

    fn live_event(&self, v: Value) -> Option<Event> {
        match serde_json::from_value::<Event>(v) {
            Ok(e) if e.project_id == self.project_id => Some(e),
            Ok(_) => None,
            Err(e) => {
                // The log has it too: a gap or a position check reveals it.
                self.logger.warn(
                    "event.unreadable",
                    "ignored a realtime payload that is not an fs-sync event",
                    json!({"error": e.to_string()}),
                );
                None
            }
        }
    }

    /// Does what the follower asks until it has nothing more to ask now.
    pub(crate) async fn run(&mut self, mirror: &mut Mirror) -> Result<(), NeedsRehydrate> {
        let catchup_from = self.follower.applied();
        let started = Instant::now();
        while let Some(action) = self.follower.poll(self.now()) {
            match action {
                Action::Apply(events) => {
                    let through = mirror.apply_batch(&events).await;
                    self.follower.handle(self.now(), Input::Applied { through });
                }
                Action::FetchEvents { after, limit } => {
                    let input = match self.api.list_events(after, limit).await {
                        Ok(page) => self.page(page),
                        Err(e) => Err(e),
                    };
                    let input = input.unwrap_or_else(|e| self.failed("catch-up", &e));
                    self.follower.handle(self.now(), input);
                }
                Action::CheckPosition => {
                    let input = match self.api.sync_state().await {
                        Ok(seq) => Input::Position(seq),
                        Err(e) => self.failed("position check", &e),
                    };
                    self.follower.handle(self.now(), input);
                }
                Action::Persist { .. } => {}
                Action::Rehydrate { reason } => return Err(NeedsRehydrate(reason)),
            }
        }
        self.report(catchup_from, started);
        Ok(())
    }

    fn page(&self, page: Vec<Value>) -> Result<Input<Event>, ApiError> {
        let mut events = Vec::with_capacity(page.len());
        for v in page {
            let seq = v.get("seq").cloned();
            match serde_json::from_value::<Event>(v) {
                Ok(e) => events.push(e),
                Err(e) => {
                    Metrics::inc(&self.metrics.events_rejected);
                    return Err(ApiError::Protocol {
                        what: "rpc list_project_events".into(),
                        message: format!(
                            "event seq {} is not readable: {e}",
                            seq.unwrap_or_default()
                        ),
                    });
                }
            }
        }
        Ok(Input::Page(events))
    }

    fn failed(&self, what: &str, e: &ApiError) -> Input<Event> {
        let failure = e.failure();
        if failure == Failure::Rehydrate {
            // Not retried: the agent re-hydrates (`rehydrate.start` follows).
            self.logger.info(
                "sync.pruned",
                &format!("the {what} found the log pruned past this folder's position"),
                json!({"error": e.to_string(), "seq": self.follower.applied()}),
            );
        } else {
            self.logger.warn(
                "sync.retry",
                &format!("the {what} failed; retrying"),
                json!({"error": e.to_string(), "seq": self.follower.applied()}),
            );
        }
        Input::Failed(failure)
    }

    /// Metrics and log lines for what the follower counted since the last report.
    fn report(&mut self, from: u64, started: Instant) {
        let s = self.follower.stats();
        self.metrics.set_follower(&s);
        if s.gaps > self.seen.gaps {
            self.logger.info(
                "gap",
                "events missing from the realtime stream; caught up from the log",
                json!({"seq": self.follower.applied(), "gaps": s.gaps}),
            );
        }
        if s.behind > self.seen.behind {
            self.logger.info(
                "sync.behind",
                "a position check found the change log ahead; caught up",
                json!({"seq": self.follower.applied()}),
            );
        }
        if s.catchups > self.seen.catchups {
            self.logger.info(
                "catchup",
                "caught up from the change log",
                json!({"from_seq": from, "seq": self.follower.applied(),
                       "events": s.catchup_events - self.seen.catchup_events,
                       "duration_ms": started.elapsed().as_secs_f64() * 1e3}),
            );
        }
        self.seen = s;
    }
}

impl ApiError {
    /// What a failed read means for following (the rule itself is core's).
    pub(crate) fn failure(&self) -> Failure {
        match self {
            ApiError::Status { status, code, .. } => {
                Failure::classify(Some(*status), code.as_deref())
            }
            _ => Failure::classify(None, None),
        }
    }
}
