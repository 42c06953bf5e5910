//! Counters and gauges, rendered in Prometheus text format for `GET /metrics`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

/// Upper bounds (seconds) of the `event_lag_seconds` histogram buckets.
const LAG_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The agent's metrics. Shared between the agent, its HTTP server and in-process tests.
#[derive(Debug, Default)]
pub struct Metrics {
    hydrate_seconds: AtomicU64,
    ready: AtomicBool,
    resumed: AtomicBool,
    start_seq: AtomicU64,
    last_applied_seq: AtomicU64,
    pub(crate) events_applied: AtomicU64,
    pub(crate) catchups: AtomicU64,
    pub(crate) catchup_events: AtomicU64,
    pub(crate) gaps: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) skipped_writes: AtomicU64,
    pub(crate) files_written: AtomicU64,
    pub(crate) files_deleted: AtomicU64,
    pub(crate) files_moved: AtomicU64,
    pub(crate) files_repaired: AtomicU64,
    pub(crate) token_refreshes: AtomicU64,
    pub(crate) token_refresh_failures: AtomicU64,
    pub(crate) binary_fetch_failures: AtomicU64,
    pub(crate) apply_errors: AtomicU64,
    pub(crate) events_rejected: AtomicU64,
    lag: Mutex<Histogram>,
}

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; 13],
    count: u64,
    sum: f64,
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
}

impl Metrics {
    pub(crate) fn inc(c: &AtomicU64) {
        c.fetch_add(1, Relaxed);
    }

    pub(crate) fn set_ready(&self, hydrate_seconds: f64) {
        self.hydrate_seconds
            .store(hydrate_seconds.to_bits(), Relaxed);
        self.ready.store(true, Relaxed);
    }

    pub(crate) fn set_start(&self, seq: u64, resumed: bool) {
        self.start_seq.store(seq, Relaxed);
        self.last_applied_seq.store(seq, Relaxed);
        self.resumed.store(resumed, Relaxed);
    }

    pub(crate) fn set_last_applied(&self, seq: u64) {
        self.last_applied_seq.store(seq, Relaxed);
    }

    /// True once hydrated and caught up: `/healthz` answers 200.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Relaxed)
    }

    pub(crate) fn observe_lag(&self, seconds: f64) {
        let mut h = self.lag.lock().expect("metrics lock");
        for (i, le) in LAG_BUCKETS.iter().enumerate() {
            if seconds <= *le {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
    }

    /// The current values.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let g = |c: &AtomicU64| c.load(Relaxed);
        MetricsSnapshot {
            hydrate_seconds: f64::from_bits(g(&self.hydrate_seconds)),
            ready: self.ready.load(Relaxed),
            resumed: self.resumed.load(Relaxed),
            start_seq: g(&self.start_seq),
            last_applied_seq: g(&self.last_applied_seq),
            events_applied: g(&self.events_applied),
            catchups: g(&self.catchups),
            catchup_events: g(&self.catchup_events),
            gaps: g(&self.gaps),
            reconnects: g(&self.reconnects),
            skipped_writes: g(&self.skipped_writes),
            files_written: g(&self.files_written),
            files_deleted: g(&self.files_deleted),
            files_moved: g(&self.files_moved),
            files_repaired: g(&self.files_repaired),
            token_refreshes: g(&self.token_refreshes),
            binary_fetch_failures: g(&self.binary_fetch_failures),
            apply_errors: g(&self.apply_errors),
        }
    }

    /// Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let s = self.snapshot();
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            );
        };
        metric(
            "hydrate_seconds",
            "gauge",
            "Seconds from agent start to ready (snapshot downloaded, extracted and caught up).",
            fmt_f64(s.hydrate_seconds),
        );
        metric(
            "hydrate_ready",
            "gauge",
            "1 once hydrated and caught up.",
            u8::from(s.ready).to_string(),
        );
        metric(
            "hydrate_resumed",
            "gauge",
            "1 when the agent resumed from saved state instead of the snapshot.",
            u8::from(s.resumed).to_string(),
        );
        metric(
            "last_applied_seq",
            "gauge",
            "The change-log seq of the last applied event.",
            s.last_applied_seq.to_string(),
        );
        let counters: [(&str, &str, u64); 14] = [
            (
                "events_applied_total",
                "Events applied, in seq order.",
                s.events_applied,
            ),
            (
                "catchups_total",
                "Catch-ups from list_project_events that fetched events.",
                s.catchups,
            ),
            (
                "catchup_events_total",
                "Events fetched from the change log.",
                s.catchup_events,
            ),
            (
                "gaps_total",
                "Gaps detected in the realtime stream.",
                s.gaps,
            ),
            (
                "reconnects_total",
                "Realtime re-joins after the first join.",
                s.reconnects,
            ),
            (
                "skipped_writes_total",
                "Writes skipped because the file on disk already had the content hash.",
                s.skipped_writes,
            ),
            (
                "files_written_total",
                "Files written atomically (created or replaced).",
                s.files_written,
            ),
            ("files_deleted_total", "Files deleted.", s.files_deleted),
            (
                "files_moved_total",
                "Files moved by renames.",
                s.files_moved,
            ),
            (
                "files_repaired_total",
                "Files re-fetched at startup because they did not match the saved state.",
                s.files_repaired,
            ),
            (
                "token_refreshes_total",
                "Container token refreshes through the edge.",
                s.token_refreshes,
            ),
            (
                "token_refresh_failures_total",
                "Failed token refresh attempts.",
                self.token_refresh_failures.load(Relaxed),
            ),
            (
                "binary_fetch_failures_total",
                "Binary contents that Storage refused to the container token.",
                s.binary_fetch_failures,
            ),
            (
                "apply_errors_total",
                "File operations that failed on disk.",
                s.apply_errors,
            ),
        ];
        for (name, help, v) in counters {
            metric(name, "counter", help, v.to_string());
        }
        let h = self.lag.lock().expect("metrics lock");
        let _ = write!(
            out,
            "# HELP event_lag_seconds Time from an event's commit (its timestamp) to its application.\n\
             # TYPE event_lag_seconds histogram\n"
        );
        for (i, le) in LAG_BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "event_lag_seconds_bucket{{le=\"{}\"}} {}",
                fmt_f64(*le),
                h.counts[i]
            );
        }
        let _ = write!(
            out,
            "event_lag_seconds_bucket{{le=\"+Inf\"}} {}\nevent_lag_seconds_sum {}\nevent_lag_seconds_count {}\n",
            h.count,
            fmt_f64(h.sum),
            h.count
        );
        out
    }
}

fn fmt_f64(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        "NaN".into()
    }
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
    }
}
