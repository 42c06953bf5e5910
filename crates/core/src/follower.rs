//! Following a project's change log: the one state machine every consumer drives.
//!
//! The container agent (tokio), the web client and the React Native build all follow the same
//! log with the same rules (invariant 3 of docs/contracts.md): apply strictly in seq order, drop
//! duplicates, fetch any gap from the log, catch up after every (re)join, and confirm the position
//! now and then because a dropped *last* event has no successor to reveal it.
//!
//! [`Follower`] is sans-IO, in the manner of quinn-proto or rustls: it is fed what happened
//! ([`Follower::handle`] with an [`Input`]: a live event, a page of the log, a position, a
//! connection change, a failure, an apply result) and asked what to do next
//! ([`Follower::poll`] returns an [`Action`]: apply these events, fetch this range, check the
//! position, persist, re-hydrate). Time is an argument (a [`Duration`] since any origin the driver
//! picks), so tests run thousands of interleavings in milliseconds and the same code runs
//! natively, in wasm32 and, translated, on Hermes. Paging, the position-check cadence
//! ([`CheckCadence`]) and backoff with jitter ([`Backoff`]) live here once.
//!
//! ```
//! use std::time::Duration;
//! use fs_sync_core::{Action, Follower, FollowerConfig, Input};
//!
//! let t = Duration::ZERO;
//! let mut f: Follower<u64> = Follower::new(0, t, FollowerConfig::default());
//! f.handle(t, Input::Joined);
//! // After a join the follower catches up from the log.
//! assert_eq!(f.poll(t), Some(Action::FetchEvents { after: 0, limit: 1000 }));
//! f.handle(t, Input::Page(vec![1, 2]));
//! assert_eq!(f.poll(t), Some(Action::Apply(vec![1, 2])));
//! f.handle(t, Input::Applied { through: 2 });
//! assert_eq!(f.poll(t), Some(Action::Persist { seq: 2 }));
//! // A live event beyond a missing one reveals a gap: the range is fetched before applying.
//! f.handle(t, Input::Live(4));
//! assert_eq!(f.poll(t), Some(Action::FetchEvents { after: 2, limit: 1000 }));
//! ```

use std::collections::VecDeque;
use std::time::Duration;

use crate::cadence::CheckCadence;
use crate::error_kind::ErrorKind;
use crate::event::Event;
use crate::sequencer::{Disposition, Sequencer};

/// Something with a position in the change log.
pub trait Sequenced: Clone {
    /// Its seq.
    fn seq(&self) -> u64;
}

impl Sequenced for Event {
    fn seq(&self) -> u64 {
        self.seq
    }
}

impl Sequenced for u64 {
    fn seq(&self) -> u64 {
        *self
    }
}

/// Exponential backoff with equal jitter: attempt `n` waits between half and all of
/// `min(cap, base · 2ⁿ⁻¹)`, so retries spread out but never come at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay.
    pub base: Duration,
    /// The longest delay.
    pub cap: Duration,
}

impl Backoff {
    /// The delay before retry `attempt` (1-based); `unit` is a uniform random number in [0, 1).
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let full = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.cap);
        full.mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0))
    }
}

/// How a follower pages and paces itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FollowerConfig {
    /// Events asked for per `list_project_events` call (the server returns at most 1000).
    pub page_size: u32,
    /// Position checks back off to one per this interval when idle.
    pub idle_check: Duration,
    /// Waits after failed fetches and applies.
    pub backoff: Backoff,
    /// Seeds the jitter (any value; two followers with different seeds spread their retries).
    pub seed: u64,
}

impl Default for FollowerConfig {
    fn default() -> Self {
        FollowerConfig {
            page_size: 1000,
            idle_check: Duration::from_secs(15),
            backoff: Backoff {
                base: Duration::from_millis(250),
                cap: Duration::from_secs(30),
            },
            seed: 0x5eed,
        }
    }
}

/// What happened, as the driver saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input<T> {
    /// The realtime channel is joined (first time or again): whatever was missed while it was
    /// down is in the log.
    Joined,
    /// The realtime channel is down; the driver reconnects (after [`Follower::reconnect_delay`]).
    Disconnected,
    /// An event arrived over realtime.
    Live(T),
    /// The answer to [`Action::FetchEvents`]: events after `after`, in seq order.
    Page(Vec<T>),
    /// The answer to [`Action::CheckPosition`]: the log's last seq.
    Position(u64),
    /// The last [`Action::FetchEvents`] or [`Action::CheckPosition`] failed.
    Failed(Failure),
    /// Everything up to `through` of the last [`Action::Apply`] is applied. Less than the whole
    /// batch means the rest failed and is retried after a backoff.
    Applied {
        /// The last seq applied.
        through: u64,
    },
}

/// Why a request failed, as far as following is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// Network trouble, a timeout, 5xx or 429: retried after a backoff.
    Transient,
    /// The credential was refused (401/403): retried after a backoff too (a refreshed token may
    /// fix it), and counted so health can say the follower cannot authenticate.
    Unauthorized,
    /// The log no longer holds what this follower needs (pruned by retention): start again
    /// from a fresh snapshot.
    Rehydrate,
}

impl Failure {
    /// Classifies a failed request by its HTTP status and PostgREST/SQLSTATE code (no status: no
    /// answer at all) through [`ErrorKind::from_response`]: a position the log no longer holds
    /// means re-hydrate, a refused credential is unauthorized, anything else may pass.
    pub fn classify(status: Option<u16>, code: Option<&str>) -> Failure {
        match status.map(|s| ErrorKind::from_response(code, s)) {
            Some(ErrorKind::Rehydrate) => Failure::Rehydrate,
            Some(ErrorKind::Unauthorized) => Failure::Unauthorized,
            _ => Failure::Transient,
        }
    }
}

/// What the driver should do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action<T> {
    /// Apply these events, in this order, then report [`Input::Applied`].
    Apply(Vec<T>),
    /// Read up to `limit` events with seq > `after` (`list_project_events`), then report
    /// [`Input::Page`] or [`Input::Failed`].
    FetchEvents {
        /// The last seq this follower has.
        after: u64,
        /// The page size.
        limit: u32,
    },
    /// Read the log's position (`get_project_sync_state`), then report [`Input::Position`] or
    /// [`Input::Failed`].
    CheckPosition,
    /// Everything up to `seq` is applied: a good moment to save the position.
    Persist {
        /// The last applied seq.
        seq: u64,
    },
    /// The log cannot bring this follower up to date: hydrate again from a fresh snapshot, then
    /// [`Follower::reset`].
    Rehydrate {
        /// Why, for people.
        reason: String,
    },
}

/// Counters for metrics and logs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FollowerStats {
    /// Gaps revealed by live events.
    pub gaps: u64,
    /// Catch-ups that brought at least one event.
    pub catchups: u64,
    /// Events that came from the log rather than realtime.
    pub catchup_events: u64,
    /// Live or fetched events already applied or waiting.
    pub duplicates: u64,
    /// Position checks made.
    pub position_checks: u64,
    /// Position checks that showed the follower behind.
    pub behind: u64,
    /// Failed fetches and applies.
    pub failures: u64,
    /// Consecutive requests refused as unauthorized (0 once one succeeds).
    pub unauthorized_streak: u64,
    /// Joins after the first.
    pub rejoins: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Request {
    Events { after: u64 },
    Position,
}

/// Follows one project's change log; see the module docs.
#[derive(Clone, Debug)]
pub struct Follower<T> {
    config: FollowerConfig,
    order: Sequencer<T>,
    /// The last seq the driver confirmed applied.
    applied: u64,
    /// Handed out by [`Action::Apply`], not yet confirmed.
    applying: Vec<T>,
    /// A catch-up is owed: after a join, a gap, or a position check that found the log ahead.
    need_catchup: bool,
    /// Events fetched during the current catch-up.
    catchup_fetched: u64,
    in_flight: Option<Request>,
    retry_at: Option<Duration>,
    /// Failures in a row, for the backoff.
    failures: u32,
    cadence: CheckCadence,
    joined_before: bool,
    rehydrate: Option<String>,
    outbox: VecDeque<Action<T>>,
    rng: u64,
    stats: FollowerStats,
}

impl<T: Sequenced> Follower<T> {
    /// A follower that has applied everything up to `last_applied` (a snapshot's `as_of_seq` or
    /// a saved position). It catches up from the log first.
    pub fn new(last_applied: u64, now: Duration, config: FollowerConfig) -> Self {
        Follower {
            order: Sequencer::new(last_applied),
            applied: last_applied,
            applying: Vec::new(),
            need_catchup: true,
            catchup_fetched: 0,
            in_flight: None,
            retry_at: None,
            failures: 0,
            cadence: CheckCadence::new(now, config.idle_check),
            joined_before: false,
            rehydrate: None,
            outbox: VecDeque::new(),
            rng: config.seed | 1,
            stats: FollowerStats::default(),
            config,
        }
    }

    /// Starts again at `last_applied` after a re-hydration, forgetting everything else but the
    /// counters.
    pub fn reset(&mut self, last_applied: u64, now: Duration) {
        let stats = self.stats;
        *self = Follower::new(last_applied, now, self.config.clone());
        self.stats = stats;
    }

    /// The last seq applied (confirmed by the driver).
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// The highest seq known to exist (applied, handed out or waiting).
    pub fn highest_seen(&self) -> u64 {
        self.order.highest_seen()
    }

    /// Caught up as far as it knows: nothing owed, in flight or waiting.
    pub fn is_caught_up(&self) -> bool {
        !self.need_catchup
            && self.in_flight.is_none()
            && self.applying.is_empty()
            && self.order.pending_len() == 0
            && self.rehydrate.is_none()
    }

    /// The counters.
    pub fn stats(&self) -> FollowerStats {
        self.stats
    }

    /// How long to wait before reconnecting after `attempt` failed connections in a row.
    pub fn reconnect_delay(&mut self, attempt: u32) -> Duration {
        let unit = self.random();
        self.config.backoff.delay(attempt, unit)
    }

    /// When [`Follower::poll`] may have something new to say if no input arrives first.
    pub fn next_wakeup(&self) -> Option<Duration> {
        if self.rehydrate.is_some() {
            return None;
        }
        if let Some(at) = self.retry_at {
            return Some(at);
        }
        if !self.applying.is_empty() || self.in_flight.is_some() {
            // The driver owes an answer.
            return None;
        }
        Some(self.cadence.due())
    }

    /// Takes in what happened at `now`.
    pub fn handle(&mut self, now: Duration, input: Input<T>) {
        match input {
            Input::Joined => {
                if self.joined_before {
                    self.stats.rejoins += 1;
                }
                self.joined_before = true;
                self.need_catchup = true;
                self.cadence.activity(now);
            }
            Input::Disconnected => {}
            Input::Live(item) => {
                self.offer(now, item);
            }
            Input::Page(items) => {
                let Some(Request::Events { after }) = self.in_flight.take() else {
                    return;
                };
                self.succeeded();
                self.take_page(now, after, items);
            }
            Input::Position(seq) => {
                if self.in_flight.take() != Some(Request::Position) {
                    return;
                }
                self.succeeded();
                self.cadence.checked(now);
                if seq < self.applied {
                    self.rehydrate = Some(format!(
                        "the log ends at seq {seq}, before the {} already applied here",
                        self.applied
                    ));
                } else if seq > self.order.highest_seen() {
                    self.stats.behind += 1;
                    self.need_catchup = true;
                }
            }
            Input::Failed(failure) => {
                let Some(request) = self.in_flight.take() else {
                    return;
                };
                if request == Request::Position {
                    self.cadence.checked(now);
                }
                match failure {
                    Failure::Rehydrate => {
                        self.rehydrate = Some(format!(
                            "the log no longer holds the events after seq {}",
                            self.applied
                        ));
                    }
                    Failure::Unauthorized => {
                        self.stats.unauthorized_streak += 1;
                        self.back_off(now);
                    }
                    Failure::Transient => self.back_off(now),
                }
            }
            Input::Applied { through } => {
                let done = self
                    .applying
                    .iter()
                    .take_while(|e| e.seq() <= through)
                    .count();
                let rest = self.applying.split_off(done);
                if let Some(last) = self.applying.last() {
                    self.applied = last.seq();
                    self.outbox.push_back(Action::Persist { seq: self.applied });
                }
                self.applying.clear();
                if rest.is_empty() {
                    self.failures = 0;
                } else {
                    // Handed out again, first, once the backoff passes.
                    self.applying = rest;
                    self.back_off(now);
                }
            }
        }
    }

    /// [`Input::Live`], returning how the event stands against what was applied (a gap is
    /// judged again at the next poll, so events merely reordered within what the driver fed in
    /// one go are no gap).
    pub fn offer(&mut self, now: Duration, item: T) -> Disposition {
        self.cadence.activity(now);
        let d = self.order.offer(item.seq(), item);
        if d == Disposition::Duplicate {
            self.stats.duplicates += 1;
        }
        d
    }

    /// Asks for a catch-up from the log at the next poll (the driver knows something the follower
    /// cannot: an app resumed from the background, say).
    pub fn catch_up_now(&mut self) {
        self.need_catchup = true;
    }

    /// Everything up to `seq` is reflected by a consistent reload (files and the seq they
    /// correspond to, from one read): that counts as a catch-up. Never moves backwards.
    pub fn advance_to(&mut self, seq: u64) {
        if seq <= self.applied {
            return;
        }
        self.order.advance_to(seq);
        self.applying.retain(|e| e.seq() > seq);
        self.applied = seq;
        if self.in_flight.is_none() {
            self.need_catchup = false;
        }
    }

    /// What to do next at `now`, or `None` until an input arrives or [`Follower::next_wakeup`].
    pub fn poll(&mut self, now: Duration) -> Option<Action<T>> {
        if let Some(reason) = self.rehydrate.take() {
            self.outbox.clear();
            // Stays set (nothing else happens) until reset.
            self.rehydrate = Some(reason.clone());
            return Some(Action::Rehydrate { reason });
        }
        if let Some(a) = self.outbox.pop_front() {
            return Some(a);
        }
        if self.retry_at.is_some_and(|at| now < at) {
            return None;
        }
        self.retry_at = None;
        if !self.applying.is_empty() {
            // A batch that failed part-way, after its backoff.
            return Some(Action::Apply(self.applying.clone()));
        }
        if self.in_flight.is_some() {
            return None;
        }
        let mut batch = Vec::new();
        while let Some(item) = self.order.pop_ready() {
            batch.push(item);
        }
        if !batch.is_empty() {
            self.applying = batch.clone();
            return Some(Action::Apply(batch));
        }
        if self.order.missing().is_some() && !self.need_catchup {
            self.stats.gaps += 1;
            self.need_catchup = true;
        }
        if self.need_catchup {
            let after = self.order.last_applied();
            self.in_flight = Some(Request::Events { after });
            return Some(Action::FetchEvents {
                after,
                limit: self.config.page_size,
            });
        }
        if now >= self.cadence.due() {
            self.stats.position_checks += 1;
            self.in_flight = Some(Request::Position);
            return Some(Action::CheckPosition);
        }
        None
    }

    fn take_page(&mut self, now: Duration, after: u64, items: Vec<T>) {
        let full = items.len() >= self.config.page_size as usize;
        if items.first().is_some_and(|e| e.seq() > after + 1) {
            self.rehydrate = Some(format!(
                "the log's oldest event after seq {after} is {}: the events between were pruned",
                items[0].seq()
            ));
            return;
        }
        let mut fresh = 0u64;
        for item in items {
            match self.order.offer(item.seq(), item) {
                Disposition::Duplicate => self.stats.duplicates += 1,
                _ => fresh += 1,
            }
        }
        self.catchup_fetched += fresh;
        self.stats.catchup_events += fresh;
        if full && fresh > 0 {
            // More pages follow; apply this one first (poll does), then fetch on.
            self.need_catchup = true;
            return;
        }
        self.need_catchup = false;
        if self.catchup_fetched > 0 {
            self.stats.catchups += 1;
        }
        self.catchup_fetched = 0;
        if self.order.missing().is_some() {
            // Live events wait beyond what the log returned: the log is behind the stream
            // (a read replica, say). Ask again, not at once.
            self.need_catchup = true;
            self.back_off(now);
        }
    }

    fn succeeded(&mut self) {
        self.failures = 0;
        self.stats.unauthorized_streak = 0;
    }

    fn back_off(&mut self, now: Duration) {
        self.failures += 1;
        self.stats.failures += 1;
        let unit = self.random();
        self.retry_at = Some(now + self.config.backoff.delay(self.failures, unit));
    }

    /// xorshift64*: jitter needs spread, not secrecy, and no clock or OS randomness here.
    fn random(&mut self) -> f64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests;
