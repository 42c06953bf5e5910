//! What `/healthz` says: a small state machine fed observations with explicit times, so every
//! rule is unit-tested without a clock, a server or a folder. The agent feeds it ([`Monitor`])
//! and asks it at every idle interval ([`Health::tick`]) whether a problem has persisted.
//!
//! States: `ready` (hydrated, caught up, nothing wrong), `degraded` (`hydrating`, `realtime`,
//! `behind`), `failing` (`auth`, `disk`), the worst reason deciding. Rules:
//!
//! - `hydrating`: from start (and during a re-hydration) until hydrated and caught up.
//! - `auth`: the PostgREST RPCs, or the edge (token refresh, re-hydration snapshot), answered
//!   401/403; active at the first interval tick where the refusal persists (no success of the
//!   same kind since), cleared by the next success.
//! - `realtime`: the channel was not joined for `realtime_intervals` whole intervals in a row;
//!   cleared by a join.
//! - `behind`: a position check shows the server's seq more than `max_behind` events past the
//!   applied seq (and it still is), or the server was ahead at three ticks in a row with nothing
//!   applied in between (not converging for two intervals); cleared once the applied seq reaches
//!   the server's.
//! - `disk`: a write failed with ENOSPC or EDQUOT; cleared by the next successful write.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde_json::{json, Value};

use crate::log::Logger;
use crate::metrics::Metrics;

/// Thresholds, from the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HealthConfig {
    /// Whole intervals without a joined realtime channel before `realtime`.
    pub(crate) realtime_intervals: u32,
    /// Events the server may be ahead of the applied seq at a tick before `behind`.
    pub(crate) max_behind: u64,
}

/// The overall state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum State {
    Ready,
    Degraded,
    Failing,
}

impl State {
    pub(crate) const ALL: [State; 3] = [State::Ready, State::Degraded, State::Failing];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            State::Ready => "ready",
            State::Degraded => "degraded",
            State::Failing => "failing",
        }
    }
}

/// Why the agent is not ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Reason {
    Auth,
    Realtime,
    Behind,
    Disk,
    Hydrating,
}

impl Reason {
    pub(crate) const ALL: [Reason; 5] = [
        Reason::Auth,
        Reason::Realtime,
        Reason::Behind,
        Reason::Disk,
        Reason::Hydrating,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Reason::Auth => "auth",
            Reason::Realtime => "realtime",
            Reason::Behind => "behind",
            Reason::Disk => "disk",
            Reason::Hydrating => "hydrating",
        }
    }

    fn state(self) -> State {
        match self {
            Reason::Auth | Reason::Disk => State::Failing,
            Reason::Realtime | Reason::Behind | Reason::Hydrating => State::Degraded,
        }
    }
}

/// Who refused the credential: the two recover independently (a working RPC says nothing about
/// the edge's refusal to refresh, and the reverse).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum AuthSource {
    /// PostgREST RPCs.
    Rpc,
    /// The edge: token refresh and the re-hydration snapshot.
    Edge,
}

/// Something the agent saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Observation {
    /// Hydration (again) under way, and why.
    Hydrating(String),
    /// Hydrated and caught up.
    Hydrated,
    /// A request was refused as unauthorized.
    AuthRefused(AuthSource, String),
    /// A request of this kind was accepted.
    AuthOk(AuthSource),
    /// The realtime channel is joined.
    Joined,
    /// The realtime channel is down.
    Down(String),
    /// A position check: the server's last seq.
    Position(u64),
    /// The last seq applied to the folder.
    Applied(u64),
    /// A write failed because the disk or quota is full.
    DiskFull(String),
    /// A write succeeded.
    DiskOk,
}

/// One active reason, as `/healthz` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Problem {
    pub(crate) reason: Reason,
    pub(crate) detail: String,
    pub(crate) since: SystemTime,
}

/// The state and its reasons.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Report {
    pub(crate) state: State,
    pub(crate) reasons: Vec<Problem>,
    pub(crate) applied_seq: u64,
    pub(crate) server_seq: Option<u64>,
}

impl Report {
    /// `/healthz`'s body.
    pub(crate) fn to_json(&self) -> Value {
        let reasons: Vec<Value> = self
            .reasons
            .iter()
            .map(|p| {
                json!({"reason": p.reason.as_str(), "detail": p.detail,
                       "since": crate::log::rfc3339_millis(p.since)})
            })
            .collect();
        json!({"state": self.state.as_str(), "reasons": reasons,
               "applied_seq": self.applied_seq, "server_seq": self.server_seq})
    }
}

/// A condition seen but not (yet) a reason: when it started and what it was.
#[derive(Clone, Debug)]
struct Seen {
    since: SystemTime,
    detail: String,
}

/// The state machine; see the module docs.
#[derive(Debug)]
pub(crate) struct Health {
    config: HealthConfig,
    hydrating: Option<Seen>,
    refused: BTreeMap<AuthSource, Seen>,
    auth_active: bool,
    down: Option<Seen>,
    /// Ticks at which the channel had been down since before the previous tick.
    down_ticks: u32,
    last_tick: Option<SystemTime>,
    server_seq: Option<u64>,
    applied: u64,
    /// The applied seq at the last tick where the server was ahead, and how many ticks in a row
    /// it stood still while the server was ahead.
    stalled_at: Option<u64>,
    stalled_ticks: u32,
    disk: Option<Seen>,
    active: BTreeMap<Reason, Problem>,
}

impl Health {
    /// A machine for an agent starting at `now`: hydrating, realtime not joined yet.
    pub(crate) fn new(config: HealthConfig, now: SystemTime) -> Health {
        let hydrating = Seen {
            since: now,
            detail: "downloading and extracting the snapshot, then catching up".into(),
        };
        let mut h = Health {
            config,
            hydrating: Some(hydrating),
            refused: BTreeMap::new(),
            auth_active: false,
            down: Some(Seen {
                since: now,
                detail: "not joined yet".into(),
            }),
            down_ticks: 0,
            last_tick: None,
            server_seq: None,
            applied: 0,
            stalled_at: None,
            stalled_ticks: 0,
            disk: None,
            active: BTreeMap::new(),
        };
        h.sync_immediate();
        h
    }

    /// Takes in what the agent saw at `now`.
    pub(crate) fn observe(&mut self, now: SystemTime, o: Observation) {
        match o {
            Observation::Hydrating(detail) => {
                self.hydrating = Some(Seen { since: now, detail });
            }
            Observation::Hydrated => self.hydrating = None,
            Observation::AuthRefused(source, detail) => {
                let seen = self.refused.entry(source).or_insert(Seen {
                    since: now,
                    detail: String::new(),
                });
                seen.detail = detail;
            }
            Observation::AuthOk(source) => {
                self.refused.remove(&source);
                if self.refused.is_empty() {
                    self.auth_active = false;
                }
            }
            Observation::Joined => {
                self.down = None;
                self.down_ticks = 0;
                self.active.remove(&Reason::Realtime);
            }
            Observation::Down(detail) => {
                let seen = self.down.get_or_insert(Seen {
                    since: now,
                    detail: String::new(),
                });
                seen.detail = detail;
            }
            Observation::Position(seq) => {
                self.server_seq = Some(self.server_seq.map_or(seq, |s| s.max(seq)));
                self.judge_behind(now);
            }
            Observation::Applied(seq) => {
                self.applied = seq;
                if self.server_seq.is_none_or(|s| seq >= s) {
                    self.stalled_at = None;
                    self.stalled_ticks = 0;
                    self.active.remove(&Reason::Behind);
                }
            }
            Observation::DiskFull(detail) => {
                let seen = self.disk.get_or_insert(Seen {
                    since: now,
                    detail: String::new(),
                });
                seen.detail = detail;
            }
            Observation::DiskOk => self.disk = None,
        }
        self.sync_immediate();
    }

    /// An idle interval ended at `now`: problems that persisted become reasons.
    pub(crate) fn tick(&mut self, now: SystemTime) {
        if !self.refused.is_empty() {
            self.auth_active = true;
        }
        match &self.down {
            Some(d) if self.last_tick.is_some_and(|t| d.since <= t) => self.down_ticks += 1,
            _ => {}
        }
        if let Some(d) = &self.down {
            if self.down_ticks >= self.config.realtime_intervals {
                let detail = format!(
                    "the realtime channel has not been joined for {} intervals: {}",
                    self.down_ticks, d.detail
                );
                self.activate(Reason::Realtime, d.since, detail);
            }
        }
        let lag = self
            .server_seq
            .map_or(0, |s| s.saturating_sub(self.applied));
        if lag > 0 && self.stalled_at == Some(self.applied) {
            self.stalled_ticks += 1;
        } else {
            self.stalled_at = (lag > 0).then_some(self.applied);
            self.stalled_ticks = 0;
        }
        self.judge_behind(now);
        self.last_tick = Some(now);
        self.sync_immediate();
    }

    /// `behind` as the server's last known seq, the applied seq and the stall count say.
    fn judge_behind(&mut self, now: SystemTime) {
        let server = self.server_seq.unwrap_or_default();
        let lag = server.saturating_sub(self.applied);
        let detail = if lag > self.config.max_behind {
            Some(format!(
                "the server is at seq {server}, {lag} events past the applied seq {} (more than {})",
                self.applied, self.config.max_behind
            ))
        } else if lag > 0 && self.stalled_ticks >= 2 {
            Some(format!(
                "the server is at seq {server}; the applied seq {} has not moved for {} intervals",
                self.applied, self.stalled_ticks
            ))
        } else {
            None
        };
        match detail {
            Some(detail) => self.activate(Reason::Behind, now, detail),
            None => {
                self.active.remove(&Reason::Behind);
            }
        }
    }

    /// Keeps `since` when a reason stays active, updating its detail.
    fn activate(&mut self, reason: Reason, since: SystemTime, detail: String) {
        let p = self.active.entry(reason).or_insert(Problem {
            reason,
            detail: String::new(),
            since,
        });
        p.detail = detail;
    }

    /// The reasons that need no tick: hydrating, disk, and auth once active.
    fn sync_immediate(&mut self) {
        let set = |active: &mut BTreeMap<Reason, Problem>, reason: Reason, seen: Option<&Seen>| {
            match seen {
                Some(s) => {
                    let p = active.entry(reason).or_insert(Problem {
                        reason,
                        detail: String::new(),
                        since: s.since,
                    });
                    p.detail.clone_from(&s.detail);
                }
                None => {
                    active.remove(&reason);
                }
            }
        };
        set(&mut self.active, Reason::Hydrating, self.hydrating.as_ref());
        set(&mut self.active, Reason::Disk, self.disk.as_ref());
        if self.auth_active && !self.refused.is_empty() {
            let since = self.refused.values().map(|s| s.since).min();
            let detail = self
                .refused
                .iter()
                .map(|(source, s)| {
                    let who = match source {
                        AuthSource::Rpc => "the RPCs",
                        AuthSource::Edge => "the edge",
                    };
                    format!("{who} refused the container token: {}", s.detail)
                })
                .collect::<Vec<_>>()
                .join("; ");
            let p = self.active.entry(Reason::Auth).or_insert(Problem {
                reason: Reason::Auth,
                detail: String::new(),
                since: since.expect("refused is not empty"),
            });
            p.detail = detail;
        } else {
            self.active.remove(&Reason::Auth);
        }
    }

    /// The state now.
    pub(crate) fn report(&self) -> Report {
        let reasons: Vec<Problem> = self.active.values().cloned().collect();
        let state = reasons
            .iter()
            .map(|p| p.reason.state())
            .max()
            .unwrap_or(State::Ready);
        Report {
            state,
            reasons,
            applied_seq: self.applied,
            server_seq: self.server_seq,
        }
    }
}

/// The agent's side: feeds [`Health`] with the wall clock, and publishes each change to the
/// metrics and, when the state or its reasons change, to the log.
pub(crate) struct Monitor {
    health: Mutex<(Health, Report)>,
    metrics: Arc<Metrics>,
    logger: Logger,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor").finish_non_exhaustive()
    }
}

impl Monitor {
    pub(crate) fn new(config: HealthConfig, metrics: Arc<Metrics>, logger: Logger) -> Arc<Monitor> {
        let health = Health::new(config, SystemTime::now());
        let report = health.report();
        Arc::new(Monitor {
            health: Mutex::new((health, report)),
            metrics,
            logger,
        })
    }

    /// Takes in an observation made now.
    pub(crate) fn observe(&self, o: Observation) {
        self.update(|h, now| h.observe(now, o));
    }

    /// An idle interval ended now.
    pub(crate) fn tick(&self) {
        self.update(Health::tick);
    }

    /// The state now.
    pub(crate) fn report(&self) -> Report {
        self.health.lock().expect("health lock").1.clone()
    }

    fn update(&self, f: impl FnOnce(&mut Health, SystemTime)) {
        let mut guard = self.health.lock().expect("health lock");
        let (health, last) = &mut *guard;
        f(health, SystemTime::now());
        let report = health.report();
        let kinds = |r: &Report| r.reasons.iter().map(|p| p.reason).collect::<Vec<_>>();
        let (before, now) = (kinds(last), kinds(&report));
        let changed = last.state != report.state || before != now;
        *last = report.clone();
        drop(guard);
        if !changed {
            return;
        }
        self.metrics.set_health(report.state, &now);
        let fields = report.to_json();
        match report.state {
            State::Ready => self.logger.info("health.changed", "healthy", fields),
            _ => self.logger.warn(
                "health.changed",
                &format!("health is {}", report.state.as_str()),
                fields,
            ),
        }
    }
}

/// ENOSPC or EDQUOT: the disk or the quota is full.
pub(crate) fn is_disk_full(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_000_000 + secs)
    }

    fn ready_machine() -> Health {
        let mut h = Health::new(
            HealthConfig {
                realtime_intervals: 2,
                max_behind: 100,
            },
            at(0),
        );
        h.observe(at(0), Observation::Joined);
        h.observe(at(1), Observation::Position(5));
        h.observe(at(1), Observation::Applied(5));
        h.observe(at(1), Observation::Hydrated);
        h
    }

    fn reasons(h: &Health) -> Vec<&'static str> {
        h.report()
            .reasons
            .iter()
            .map(|p| p.reason.as_str())
            .collect()
    }

    #[test]
    fn hydrating_until_hydrated_then_ready() {
        let mut h = Health::new(
            HealthConfig {
                realtime_intervals: 2,
                max_behind: 100,
            },
            at(0),
        );
        let r = h.report();
        assert_eq!((r.state, reasons(&h)), (State::Degraded, vec!["hydrating"]));
        assert_eq!(r.reasons[0].since, at(0));
        h.observe(at(0), Observation::Joined);
        h.observe(at(2), Observation::Hydrated);
        assert_eq!(h.report().state, State::Ready);
        assert!(h.report().reasons.is_empty());
        // A re-hydration says so until it is done.
        h.observe(at(9), Observation::Hydrating("pruned".into()));
        assert_eq!(
            (h.report().state, reasons(&h)),
            (State::Degraded, vec!["hydrating"])
        );
        h.observe(at(10), Observation::Hydrated);
        assert_eq!(h.report().state, State::Ready);
    }

    #[test]
    fn auth_fails_at_the_first_tick_where_the_refusal_persists() {
        let mut h = ready_machine();
        h.observe(
            at(10),
            Observation::AuthRefused(AuthSource::Rpc, "HTTP 401".into()),
        );
        // Not at once: a single refusal followed by a success is no reason.
        assert_eq!(h.report().state, State::Ready);
        h.observe(at(10), Observation::AuthOk(AuthSource::Rpc));
        h.tick(at(11));
        assert_eq!(h.report().state, State::Ready);

        h.observe(
            at(12),
            Observation::AuthRefused(AuthSource::Rpc, "HTTP 401".into()),
        );
        h.observe(
            at(12),
            Observation::AuthRefused(AuthSource::Rpc, "HTTP 403".into()),
        );
        h.tick(at(13));
        let r = h.report();
        assert_eq!((r.state, reasons(&h)), (State::Failing, vec!["auth"]));
        assert_eq!(r.reasons[0].since, at(12), "since the first refusal");
        assert!(r.reasons[0].detail.contains("HTTP 403"), "{:?}", r.reasons);
        // A success of the other kind does not clear it; one of the same kind does.
        h.observe(at(14), Observation::AuthOk(AuthSource::Edge));
        assert_eq!(h.report().state, State::Failing);
        h.observe(at(14), Observation::AuthOk(AuthSource::Rpc));
        assert_eq!(h.report().state, State::Ready);
    }

    #[test]
    fn an_edge_refusal_is_not_cleared_by_working_rpcs() {
        let mut h = ready_machine();
        h.observe(
            at(5),
            Observation::AuthRefused(AuthSource::Edge, "session_ended".into()),
        );
        h.observe(at(5), Observation::AuthOk(AuthSource::Rpc));
        h.tick(at(6));
        let r = h.report();
        assert_eq!(r.state, State::Failing);
        assert!(r.reasons[0].detail.starts_with("the edge refused"), "{r:?}");
        h.observe(at(7), Observation::AuthOk(AuthSource::Edge));
        assert_eq!(h.report().state, State::Ready);
    }

    #[test]
    fn realtime_degrades_after_n_whole_intervals_down() {
        let mut h = ready_machine();
        h.tick(at(10));
        h.observe(at(11), Observation::Down("connect refused".into()));
        h.tick(at(12)); // down for part of this interval only
        assert_eq!(h.report().state, State::Ready);
        h.tick(at(14));
        assert_eq!(h.report().state, State::Ready, "one whole interval");
        h.tick(at(16));
        let r = h.report();
        assert_eq!((r.state, reasons(&h)), (State::Degraded, vec!["realtime"]));
        assert_eq!(r.reasons[0].since, at(11));
        assert!(r.reasons[0].detail.contains("connect refused"));
        h.observe(at(17), Observation::Joined);
        assert_eq!(h.report().state, State::Ready);
        // A drop and a rejoin within an interval never counts.
        h.observe(at(17), Observation::Down("x".into()));
        h.tick(at(18));
        h.observe(at(18), Observation::Joined);
        h.tick(at(20));
        h.tick(at(22));
        assert_eq!(h.report().state, State::Ready);
    }

    #[test]
    fn behind_by_more_than_n_or_not_converging() {
        let mut h = ready_machine();
        // Far behind: degraded as soon as a position check shows it.
        h.observe(at(10), Observation::Position(500));
        let r = h.report();
        assert_eq!((r.state, reasons(&h)), (State::Degraded, vec!["behind"]));
        assert!(r.reasons[0].detail.contains("495 events past"), "{r:?}");
        assert_eq!((r.server_seq, r.reasons[0].since), (Some(500), at(10)));
        h.tick(at(11));
        assert_eq!(h.report().reasons[0].since, at(10), "still since the check");
        // Caught up: ready as soon as it is applied.
        h.observe(at(12), Observation::Applied(500));
        assert_eq!(h.report().state, State::Ready);

        // A little behind but catching up: fine.
        h.observe(at(20), Observation::Position(510));
        h.tick(at(21));
        h.observe(at(21), Observation::Applied(505));
        h.tick(at(22));
        h.observe(at(22), Observation::Applied(508));
        h.tick(at(23));
        assert_eq!(h.report().state, State::Ready);
        // Not moving for two intervals while the server is ahead: degraded.
        h.tick(at(24));
        assert_eq!(h.report().state, State::Ready);
        h.tick(at(25));
        assert_eq!(reasons(&h), ["behind"]);
        assert!(h.report().reasons[0]
            .detail
            .contains("has not moved for 2 intervals"));
        h.observe(at(26), Observation::Applied(510));
        assert_eq!(h.report().state, State::Ready);
    }

    #[test]
    fn disk_full_fails_until_a_write_succeeds_and_the_worst_reason_decides() {
        let mut h = ready_machine();
        h.observe(
            at(3),
            Observation::DiskFull("No space left on device".into()),
        );
        assert_eq!(
            (h.report().state, reasons(&h)),
            (State::Failing, vec!["disk"])
        );
        h.observe(at(4), Observation::Position(1000));
        h.tick(at(5));
        assert_eq!(h.report().state, State::Failing);
        assert_eq!(reasons(&h), ["behind", "disk"]);
        h.observe(at(6), Observation::DiskOk);
        assert_eq!(h.report().state, State::Degraded);
        let json = h.report().to_json();
        assert_eq!(json["state"], "degraded");
        assert_eq!(json["reasons"][0]["reason"], "behind");
        assert!(json["reasons"][0]["since"].as_str().unwrap().ends_with('Z'));

        assert!(is_disk_full(&std::io::Error::from_raw_os_error(
            libc::ENOSPC
        )));
        assert!(is_disk_full(&std::io::Error::from_raw_os_error(
            libc::EDQUOT
        )));
        assert!(!is_disk_full(&std::io::Error::from_raw_os_error(
            libc::EACCES
        )));
    }
}
