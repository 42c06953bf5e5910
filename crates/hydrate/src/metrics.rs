//! The agent's counters and gauges, exposed through `prometheus-client` in the Prometheus text
//! format (version 0.0.4) for `GET /metrics`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::health::{Reason, State};

/// One label, e.g. `state="ready"`.
type Label = [(&'static str, &'static str); 1];

/// Upper bounds (seconds) of the `event_lag_seconds` histogram buckets.
const LAG_BUCKETS: [f64; 13] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The agent's metrics. Shared between the agent, its HTTP server and in-process tests.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    hydrate_seconds: Gauge<f64, AtomicU64>,
    ready: Gauge,
    resumed: Gauge,
    /// Not exported: the snapshot's `start_seq`, for tests and logs.
    start_seq: AtomicU64,
    last_applied_seq: Gauge<u64, AtomicU64>,
    pub(crate) events_applied: Counter,
    pub(crate) catchups: Counter,
    pub(crate) catchup_events: Counter,
    pub(crate) gaps: Counter,
    pub(crate) reconnects: Counter,
    pub(crate) skipped_writes: Counter,
    pub(crate) files_written: Counter,
    pub(crate) files_deleted: Counter,
    pub(crate) files_moved: Counter,
    pub(crate) files_repaired: Counter,
    pub(crate) token_refreshes: Counter,
    pub(crate) token_refresh_failures: Counter,
    pub(crate) binary_fetch_failures: Counter,
    pub(crate) apply_errors: Counter,
    pub(crate) events_rejected: Counter,
    pub(crate) position_checks: Counter,
    pub(crate) untracked_displaced: Counter,
    pub(crate) rehydrations: Counter,
    cold_start_seconds: Gauge<f64, AtomicU64>,
    health_state: Family<Label, Gauge>,
    health_reason: Family<Label, Gauge>,
    lag: Histogram,
}

/// A plain copy of the counters, for tests and logs.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// Seconds from start to ready (0 until ready).
    pub hydrate_seconds: f64,
    /// Hydrated (or resumed) and caught up.
    pub ready: bool,
    /// Started from saved state rather than the snapshot.
    pub resumed: bool,
    /// The seq the agent started from (snapshot as_of_seq or saved state).
    pub start_seq: u64,
    /// The last event applied.
    pub last_applied_seq: u64,
    /// Events applied since start.
    pub events_applied: u64,
    /// Catch-ups from the change log that fetched at least one event.
    pub catchups: u64,
    /// Events that came from the change log rather than realtime.
    pub catchup_events: u64,
    /// Gaps seen in the realtime stream.
    pub gaps: u64,
    /// Realtime re-joins after the first join.
    pub reconnects: u64,
    /// Writes skipped because the file already had the content.
    pub skipped_writes: u64,
    /// Files written (created or replaced).
    pub files_written: u64,
    /// Files deleted.
    pub files_deleted: u64,
    /// Files moved by renames.
    pub files_moved: u64,
    /// Files re-fetched at startup because they did not match the saved state.
    pub files_repaired: u64,
    /// Successful token refreshes.
    pub token_refreshes: u64,
    /// Binary contents Storage would not hand out.
    pub binary_fetch_failures: u64,
    /// File operations that failed on disk.
    pub apply_errors: u64,
    /// Position checks (get_project_sync_state) made.
    pub position_checks: u64,
    /// Untracked entries moved aside because a project file or folder needed their place.
    pub untracked_displaced: u64,
    /// Re-hydrations in place (the log no longer held the agent's position).
    pub rehydrations: u64,
    /// Seconds from the session's creation (the container token's `iat`) to ready; 0 until
    /// ready or without `iat`.
    pub cold_start_seconds: f64,
    /// `/healthz`'s state: `ready`, `degraded` or `failing`.
    pub health_state: String,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut m = Metrics {
            registry: Registry::default(),
            hydrate_seconds: Gauge::default(),
            ready: Gauge::default(),
            resumed: Gauge::default(),
            start_seq: AtomicU64::default(),
            last_applied_seq: Gauge::default(),
            events_applied: Counter::default(),
            catchups: Counter::default(),
            catchup_events: Counter::default(),
            gaps: Counter::default(),
            reconnects: Counter::default(),
            skipped_writes: Counter::default(),
            files_written: Counter::default(),
            files_deleted: Counter::default(),
            files_moved: Counter::default(),
            files_repaired: Counter::default(),
            token_refreshes: Counter::default(),
            token_refresh_failures: Counter::default(),
            binary_fetch_failures: Counter::default(),
            apply_errors: Counter::default(),
            events_rejected: Counter::default(),
            position_checks: Counter::default(),
            untracked_displaced: Counter::default(),
            rehydrations: Counter::default(),
            cold_start_seconds: Gauge::default(),
            health_state: Family::default(),
            health_reason: Family::default(),
            lag: Histogram::new(LAG_BUCKETS),
        };
        // The registry holds clones (shared atomics) of the fields. Help texts get their full stop
        // from the registry; counters their `_total` suffix from the encoder.
        let r = &mut m.registry;
        r.register(
            "hydrate_seconds",
            "Seconds from agent start to ready (snapshot downloaded, extracted and caught up)",
            m.hydrate_seconds.clone(),
        );
        r.register(
            "hydrate_ready",
            "1 once hydrated and caught up",
            m.ready.clone(),
        );
        r.register(
            "hydrate_resumed",
            "1 when the agent resumed from saved state instead of the snapshot",
            m.resumed.clone(),
        );
        r.register(
            "last_applied_seq",
            "The change-log seq of the last applied event",
            m.last_applied_seq.clone(),
        );
        for (name, help, c) in [
            (
                "events_applied",
                "Events applied, in seq order",
                &m.events_applied,
            ),
            (
                "catchups",
                "Catch-ups from list_project_events that fetched events",
                &m.catchups,
            ),
            (
                "catchup_events",
                "Events fetched from the change log",
                &m.catchup_events,
            ),
            ("gaps", "Gaps detected in the realtime stream", &m.gaps),
            (
                "reconnects",
                "Realtime re-joins after the first join",
                &m.reconnects,
            ),
            (
                "skipped_writes",
                "Writes skipped because the file on disk already had the content hash",
                &m.skipped_writes,
            ),
            (
                "files_written",
                "Files written atomically (created or replaced)",
                &m.files_written,
            ),
            ("files_deleted", "Files deleted", &m.files_deleted),
            ("files_moved", "Files moved by renames", &m.files_moved),
            (
                "files_repaired",
                "Files re-fetched at startup because they did not match the saved state",
                &m.files_repaired,
            ),
            (
                "token_refreshes",
                "Container token refreshes through the edge",
                &m.token_refreshes,
            ),
            (
                "token_refresh_failures",
                "Failed token refresh attempts",
                &m.token_refresh_failures,
            ),
            (
                "binary_fetch_failures",
                "Binary contents that Storage refused to the container token",
                &m.binary_fetch_failures,
            ),
            (
                "apply_errors",
                "File operations that failed on disk",
                &m.apply_errors,
            ),
            (
                "events_rejected",
                "Events refused because they could not be read",
                &m.events_rejected,
            ),
            (
                "position_checks",
                "Position checks against get_project_sync_state",
                &m.position_checks,
            ),
            (
                "untracked_displaced",
                "Untracked entries moved to .fs-sync/displaced/ to make room for project files",
                &m.untracked_displaced,
            ),
            (
                "hydrate_rehydrations",
                "Re-hydrations in place from a fresh snapshot (the log no longer held the position)",
                &m.rehydrations,
            ),
        ] {
            r.register(name, help, c.clone());
        }
        r.register(
            "hydrate_cold_start_seconds",
            "Seconds from the session's creation (the container token's iat) to ready",
            m.cold_start_seconds.clone(),
        );
        r.register(
            "hydrate_health_state",
            "1 for the /healthz state (ready, degraded or failing), 0 for the others",
            m.health_state.clone(),
        );
        r.register(
            "hydrate_health_reason",
            "1 for each reason /healthz gives now (auth, realtime, behind, disk, hydrating)",
            m.health_reason.clone(),
        );
        r.register(
            "event_lag_seconds",
            "Time from an event's commit (its timestamp) to its application",
            m.lag.clone(),
        );
        // Every series exists from the start: hydrating until ready.
        m.set_health(State::Degraded, &[Reason::Hydrating]);
        m
    }
}

impl Metrics {
    pub(crate) fn inc(c: &Counter) {
        c.inc();
    }

    pub(crate) fn set_ready(&self, hydrate_seconds: f64) {
        self.hydrate_seconds.set(hydrate_seconds);
        self.ready.set(1);
    }

    pub(crate) fn set_start(&self, seq: u64, resumed: bool) {
        self.start_seq.store(seq, Relaxed);
        self.last_applied_seq.set(seq);
        self.resumed.set(i64::from(resumed));
    }

    /// Copies the follower's counters (it owns gaps, catch-ups and position checks). Its totals
    /// only grow, so storing them keeps the exported counters monotonic.
    pub(crate) fn set_follower(&self, s: &fs_sync_core::FollowerStats) {
        self.gaps.inner().store(s.gaps, Relaxed);
        self.catchups.inner().store(s.catchups, Relaxed);
        self.catchup_events.inner().store(s.catchup_events, Relaxed);
        self.position_checks
            .inner()
            .store(s.position_checks, Relaxed);
    }

    /// The /healthz state and its reasons as 0/1 gauges, every label value present.
    pub(crate) fn set_health(&self, state: State, reasons: &[Reason]) {
        for s in State::ALL {
            self.health_state
                .get_or_create(&[("state", s.as_str())])
                .set(i64::from(s == state));
        }
        for r in Reason::ALL {
            self.health_reason
                .get_or_create(&[("reason", r.as_str())])
                .set(i64::from(reasons.contains(&r)));
        }
    }

    pub(crate) fn set_cold_start(&self, seconds: f64) {
        self.cold_start_seconds.set(seconds);
    }

    /// The state the health gauges say.
    fn health_state(&self) -> String {
        State::ALL
            .into_iter()
            .find(|s| {
                self.health_state
                    .get_or_create(&[("state", s.as_str())])
                    .get()
                    == 1
            })
            .map_or("", State::as_str)
            .to_owned()
    }

    pub(crate) fn set_last_applied(&self, seq: u64) {
        self.last_applied_seq.set(seq);
    }

    /// True once hydrated and caught up (the first time; `/healthz` says whether it still is).
    pub fn is_ready(&self) -> bool {
        self.ready.get() == 1
    }

    pub(crate) fn observe_lag(&self, seconds: f64) {
        self.lag.observe(seconds);
    }

    /// The current values.
    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            hydrate_seconds: self.hydrate_seconds.get(),
            ready: self.is_ready(),
            resumed: self.resumed.get() == 1,
            start_seq: self.start_seq.load(Relaxed),
            last_applied_seq: self.last_applied_seq.get(),
            events_applied: self.events_applied.get(),
            catchups: self.catchups.get(),
            catchup_events: self.catchup_events.get(),
            gaps: self.gaps.get(),
            reconnects: self.reconnects.get(),
            skipped_writes: self.skipped_writes.get(),
            files_written: self.files_written.get(),
            files_deleted: self.files_deleted.get(),
            files_moved: self.files_moved.get(),
            files_repaired: self.files_repaired.get(),
            token_refreshes: self.token_refreshes.get(),
            binary_fetch_failures: self.binary_fetch_failures.get(),
            apply_errors: self.apply_errors.get(),
            position_checks: self.position_checks.get(),
            untracked_displaced: self.untracked_displaced.get(),
            rehydrations: self.rehydrations.get(),
            cold_start_seconds: self.cold_start_seconds.get(),
            health_state: self.health_state(),
        }
    }

    /// Prometheus text exposition format (version 0.0.4), served as [`Metrics::CONTENT_TYPE`].
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_text::encode(&mut out, &self.registry)
            .expect("encoding into a String cannot fail");
        out
    }

    /// The `Content-Type` of [`Metrics::render`]'s text.
    pub const CONTENT_TYPE: &'static str = prometheus_text::CONTENT_TYPE;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.set_ready(1.25);
        Metrics::inc(&m.events_applied);
        m.observe_lag(0.02);
        m.observe_lag(3.0);
        let text = m.render();
        assert!(text.contains("# TYPE hydrate_seconds gauge\nhydrate_seconds 1.25\n"));
        assert!(text.contains("events_applied_total 1\n"));
        assert!(text.contains("event_lag_seconds_bucket{le=\"0.025\"} 1\n"));
        assert!(text.contains("event_lag_seconds_bucket{le=\"5\"} 2\n"));
        assert!(text.contains("event_lag_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(text.contains("event_lag_seconds_count 2\n"));
        for name in ["catchups_total", "reconnects_total", "skipped_writes_total"] {
            assert!(
                text.contains(&format!("# TYPE {name} counter\n{name} 0\n")),
                "{name}"
            );
        }
        assert!(text
            .contains("# HELP last_applied_seq The change-log seq of the last applied event.\n"));
        for line in [
            "hydrate_health_state{state=\"degraded\"} 1\n",
            "hydrate_health_state{state=\"ready\"} 0\n",
            "hydrate_health_reason{reason=\"hydrating\"} 1\n",
            "hydrate_health_reason{reason=\"auth\"} 0\n",
            "hydrate_rehydrations_total 0\n",
            "hydrate_cold_start_seconds 0.0\n",
        ] {
            assert!(text.contains(line), "{line:?} in\n{text}");
        }
        m.set_health(State::Failing, &[Reason::Auth, Reason::Realtime]);
        m.set_cold_start(2.5);
        Metrics::inc(&m.rehydrations);
        let text = m.render();
        for line in [
            "hydrate_health_state{state=\"failing\"} 1\n",
            "hydrate_health_state{state=\"degraded\"} 0\n",
            "hydrate_health_reason{reason=\"auth\"} 1\n",
            "hydrate_health_reason{reason=\"realtime\"} 1\n",
            "hydrate_health_reason{reason=\"hydrating\"} 0\n",
            "hydrate_rehydrations_total 1\n",
            "hydrate_cold_start_seconds 2.5\n",
        ] {
            assert!(text.contains(line), "{line:?} in\n{text}");
        }
        let s = m.snapshot();
        assert_eq!((s.health_state.as_str(), s.rehydrations), ("failing", 1));
    }

    #[test]
    fn follower_totals_and_the_snapshot_agree_with_the_text() {
        let m = Metrics::default();
        m.set_start(7, true);
        let mut stats = fs_sync_core::FollowerStats::default();
        (stats.gaps, stats.catchups, stats.catchup_events) = (2, 3, 40);
        stats.position_checks = 5;
        m.set_follower(&stats);
        let s = m.snapshot();
        assert_eq!((s.start_seq, s.last_applied_seq, s.resumed), (7, 7, true));
        assert_eq!((s.gaps, s.catchups, s.catchup_events), (2, 3, 40));
        assert!(!m.is_ready());
        let text = m.render();
        for line in [
            "hydrate_resumed 1\n",
            "hydrate_ready 0\n",
            "last_applied_seq 7\n",
            "gaps_total 2\n",
            "catchup_events_total 40\n",
            "position_checks_total 5\n",
        ] {
            assert!(text.contains(line), "{line:?} in\n{text}");
        }
    }
}
