//! Model-based tests: a reference log, a lossy realtime channel and a flaky server, driven
//! through any interleaving; the follower must apply each seq exactly once, in order, and
//! converge. The schedules come from a seeded generator (runs on native and wasm32) and,
//! natively, from proptest (which shrinks a failing schedule).

use super::*;
use crate::sequencer::Disposition;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// One step of a schedule.
#[derive(Clone, Copy, Debug)]
enum Op {
    /// The server commits the next event; realtime delivers it as told.
    Commit(Delivery),
    /// A held event (by index, modulo) arrives now: reordering.
    Release(usize),
    /// The connection drops; held events are lost.
    Disconnect,
    /// The channel (re)joins.
    Join,
    /// Time passes.
    Advance(u16),
    /// The driver does what the follower asks; `fail` makes a fetch fail, `partial` makes an
    /// apply stop after its first event.
    Step { fail: bool, partial: bool },
}

#[derive(Clone, Copy, Debug)]
enum Delivery {
    Now,
    Held,
    Dropped,
    Twice,
}

struct World {
    committed: u64,
    /// What the follower has been given (live or fetched), to tell when it knows of a gap.
    known: std::collections::BTreeSet<u64>,
    held: Vec<u64>,
    connected: bool,
    applied: Vec<u64>,
    now: Duration,
}

impl World {
    fn deliver(&mut self, f: &mut Follower<u64>, seq: u64) {
        self.known.insert(seq);
        f.handle(self.now, Input::Live(seq));
    }

    /// Serves one action; returns false when there was none.
    fn step(&mut self, f: &mut Follower<u64>, fail: bool, partial: bool) -> bool {
        let Some(action) = f.poll(self.now) else {
            return false;
        };
        match action {
            Action::Apply(batch) => {
                let mut through = 0;
                for (i, seq) in batch.iter().enumerate() {
                    assert_eq!(
                        *seq,
                        self.applied.len() as u64 + 1,
                        "applied out of order or twice: {:?} after {:?}",
                        batch,
                        self.applied.last()
                    );
                    self.applied.push(*seq);
                    through = *seq;
                    if partial && i == 0 && batch.len() > 1 {
                        break;
                    }
                }
                f.handle(self.now, Input::Applied { through });
            }
            Action::FetchEvents { after, limit } => {
                if fail {
                    f.handle(self.now, Input::Failed(Failure::Transient));
                } else {
                    let end = self.committed.min(after + u64::from(limit));
                    self.known.extend(after + 1..=end);
                    f.handle(self.now, Input::Page((after + 1..=end).collect()));
                }
            }
            Action::CheckPosition => {
                let top = self.known.last().copied().unwrap_or(0);
                let applied = self.applied.len() as u64;
                assert!(
                    (applied + 1..top).all(|s| self.known.contains(&s)),
                    "checked the position instead of fetching a gap it knew of"
                );
                if fail {
                    f.handle(self.now, Input::Failed(Failure::Unauthorized));
                } else {
                    f.handle(self.now, Input::Position(self.committed));
                }
            }
            Action::Persist { seq } => assert_eq!(seq, self.applied.len() as u64),
            Action::Rehydrate { reason } => panic!("nothing was pruned: {reason}"),
        }
        true
    }
}

/// Runs `ops`, then lets the follower settle with a reliable server (the last event is
/// dropped, so only a position check can find it). Returns the follower for more checks.
fn run(ops: &[Op], page_size: u32) -> Follower<u64> {
    let config = FollowerConfig {
        page_size,
        idle_check: Duration::from_secs(15),
        ..FollowerConfig::default()
    };
    let mut w = World {
        committed: 0,
        known: Default::default(),
        held: Vec::new(),
        connected: false,
        applied: Vec::new(),
        now: Duration::ZERO,
    };
    let mut f = Follower::new(0, w.now, config);
    for op in ops {
        match *op {
            Op::Commit(d) => {
                w.committed += 1;
                let seq = w.committed;
                match d {
                    _ if !w.connected => {}
                    Delivery::Now => w.deliver(&mut f, seq),
                    Delivery::Held => w.held.push(seq),
                    Delivery::Dropped => {}
                    Delivery::Twice => {
                        w.deliver(&mut f, seq);
                        w.deliver(&mut f, seq);
                    }
                }
            }
            Op::Release(i) if !w.held.is_empty() => {
                let seq = w.held.remove(i % w.held.len());
                w.deliver(&mut f, seq);
            }
            Op::Release(_) => {}
            Op::Disconnect => {
                w.connected = false;
                w.held.clear();
                f.handle(w.now, Input::Disconnected);
            }
            Op::Join => {
                w.connected = true;
                f.handle(w.now, Input::Joined);
            }
            Op::Advance(ms) => w.now += Duration::from_millis(u64::from(ms)),
            Op::Step { fail, partial } => {
                w.step(&mut f, fail, partial);
            }
        }
    }
    // Settle: one more commit whose delivery is dropped, then a reliable world.
    let settle_start = w.now;
    if !w.connected {
        w.connected = true;
        f.handle(w.now, Input::Joined);
    }
    w.committed += 1;
    for seq in std::mem::take(&mut w.held) {
        w.deliver(&mut f, seq);
    }
    for _ in 0..100_000 {
        if w.applied.len() as u64 == w.committed && f.is_caught_up() {
            break;
        }
        if !w.step(&mut f, false, false) {
            let at = f
                .next_wakeup()
                .expect("a follower that is behind always wakes up");
            assert!(
                at > w.now || f.poll(w.now).is_some(),
                "stalled at {:?}",
                w.now
            );
            w.now = w.now.max(at);
        }
    }
    let want: Vec<u64> = (1..=w.committed).collect();
    assert_eq!(w.applied, want, "did not converge to the log");
    // Convergence is prompt, not just eventual: at most one backoff left over from the
    // schedule (30 s) plus the check that follows the join.
    assert!(
        w.now - settle_start <= Duration::from_secs(32),
        "took {:?} of simulated time to converge",
        w.now - settle_start
    );
    assert_eq!(f.applied(), w.committed);
    f
}

/// A tiny PRNG for schedules (proptest is native only).
struct Gen(u64);

impl Gen {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        (self.0 >> 33) % n
    }

    fn op(&mut self) -> Op {
        match self.below(12) {
            0..=2 => Op::Commit(match self.below(4) {
                0 => Delivery::Now,
                1 => Delivery::Held,
                2 => Delivery::Dropped,
                _ => Delivery::Twice,
            }),
            3 => Op::Release(self.below(8) as usize),
            4 => Op::Disconnect,
            5 => Op::Join,
            6 => Op::Advance(self.below(20_000) as u16),
            _ => Op::Step {
                fail: self.below(4) == 0,
                partial: self.below(4) == 0,
            },
        }
    }
}

#[test]
fn converges_under_seeded_schedules() {
    for seed in 0..300 {
        let mut g = Gen(seed);
        let ops: Vec<Op> = (0..g.below(300)).map(|_| g.op()).collect();
        run(&ops, 1 + g.below(6) as u32);
    }
}

#[test]
fn a_dropped_last_event_of_a_burst_is_found_within_two_seconds() {
    let s = Duration::from_secs(1);
    let mut f: Follower<u64> = Follower::new(0, Duration::ZERO, FollowerConfig::default());
    f.handle(Duration::ZERO, Input::Joined);
    assert!(matches!(
        f.poll(Duration::ZERO),
        Some(Action::FetchEvents { .. })
    ));
    f.handle(Duration::ZERO, Input::Page(vec![]));
    // A burst at t = 100 s; its last event (3) never arrives.
    let t = 100 * s;
    for seq in [1, 2] {
        f.handle(t, Input::Live(seq));
    }
    assert_eq!(f.poll(t), Some(Action::Apply(vec![1, 2])));
    f.handle(t, Input::Applied { through: 2 });
    assert_eq!(f.poll(t), Some(Action::Persist { seq: 2 }));
    assert_eq!(f.poll(t), None);
    let at = f.next_wakeup().unwrap();
    assert!(at - t < 2 * s, "first check {:?} after the burst", at - t);
    assert_eq!(f.poll(at), Some(Action::CheckPosition));
    f.handle(at, Input::Position(3));
    assert_eq!(
        f.poll(at),
        Some(Action::FetchEvents {
            after: 2,
            limit: 1000
        })
    );
    f.handle(at, Input::Page(vec![3]));
    assert_eq!(f.poll(at), Some(Action::Apply(vec![3])));
    assert_eq!(f.stats().behind, 1);
}

#[test]
fn an_idle_follower_checks_once_per_idle_interval() {
    let ops = [
        Op::Join,
        Op::Step {
            fail: false,
            partial: false,
        },
    ];
    let mut f = run(&ops, 10);
    let mut now = Duration::from_secs(100);
    let mut checks = 0;
    while now < Duration::from_secs(500) {
        match f.poll(now) {
            Some(Action::CheckPosition) => {
                // Counted once the checks that follow the last activity have passed.
                checks += u32::from(now >= Duration::from_secs(200));
                f.handle(now, Input::Position(f.applied()));
            }
            Some(Action::Persist { .. }) => {}
            Some(other) => panic!("an idle follower asked for {other:?}"),
            None => now = f.next_wakeup().unwrap().max(now + Duration::from_millis(1)),
        }
    }
    assert!((19..=21).contains(&checks), "{checks} checks in 300 s idle");
}

#[test]
fn pages_are_followed_until_a_short_one() {
    let t = Duration::ZERO;
    let mut f: Follower<u64> = Follower::new(
        0,
        t,
        FollowerConfig {
            page_size: 2,
            ..FollowerConfig::default()
        },
    );
    f.handle(t, Input::Joined);
    assert_eq!(f.poll(t), Some(Action::FetchEvents { after: 0, limit: 2 }));
    f.handle(t, Input::Page(vec![1, 2]));
    assert_eq!(f.poll(t), Some(Action::Apply(vec![1, 2])));
    f.handle(t, Input::Applied { through: 2 });
    assert_eq!(f.poll(t), Some(Action::Persist { seq: 2 }));
    assert_eq!(f.poll(t), Some(Action::FetchEvents { after: 2, limit: 2 }));
    f.handle(t, Input::Page(vec![3]));
    assert_eq!(f.poll(t), Some(Action::Apply(vec![3])));
    f.handle(t, Input::Applied { through: 3 });
    assert_eq!(f.poll(t), Some(Action::Persist { seq: 3 }));
    assert_eq!(f.poll(t), None);
    assert!(f.is_caught_up());
    assert_eq!(f.stats().catchups, 1);
}

#[test]
fn a_pruned_log_asks_for_a_fresh_snapshot() {
    let t = Duration::ZERO;
    let mut f: Follower<u64> = Follower::new(5, t, FollowerConfig::default());
    assert!(matches!(
        f.poll(t),
        Some(Action::FetchEvents { after: 5, .. })
    ));
    f.handle(t, Input::Page(vec![9, 10]));
    assert!(matches!(f.poll(t), Some(Action::Rehydrate { .. })));
    assert!(
        matches!(f.poll(t), Some(Action::Rehydrate { .. })),
        "until reset"
    );
    f.reset(10, t);
    assert!(matches!(
        f.poll(t),
        Some(Action::FetchEvents { after: 10, .. })
    ));
    f.handle(t, Input::Failed(Failure::Rehydrate));
    assert!(matches!(f.poll(t), Some(Action::Rehydrate { .. })));
}

#[test]
fn failures_back_off_with_jitter_and_recover() {
    let t = Duration::ZERO;
    let mut f: Follower<u64> = Follower::new(0, t, FollowerConfig::default());
    let mut waits = Vec::new();
    let mut now = t;
    for _ in 0..8 {
        assert!(matches!(f.poll(now), Some(Action::FetchEvents { .. })));
        f.handle(now, Input::Failed(Failure::Unauthorized));
        assert_eq!(f.poll(now), None);
        let at = f.next_wakeup().unwrap();
        waits.push(at - now);
        now = at;
    }
    assert_eq!(f.stats().unauthorized_streak, 8);
    assert!(waits.windows(2).take(5).all(|w| w[1] > w[0] / 2));
    assert!(waits.iter().all(|w| *w <= Duration::from_secs(30)));
    assert!(matches!(f.poll(now), Some(Action::FetchEvents { .. })));
    f.handle(now, Input::Page(vec![]));
    assert_eq!(f.stats().unauthorized_streak, 0);
    assert!(f.is_caught_up());
}

#[test]
fn failures_are_classified_by_status_and_code() {
    assert_eq!(Failure::classify(None, None), Failure::Transient);
    assert_eq!(Failure::classify(Some(503), None), Failure::Transient);
    assert_eq!(
        Failure::classify(Some(429), Some("PT429")),
        Failure::Transient
    );
    assert_eq!(
        Failure::classify(Some(401), Some("PGRST301")),
        Failure::Unauthorized
    );
    assert_eq!(
        Failure::classify(Some(403), Some("42501")),
        Failure::Unauthorized
    );
    assert_eq!(
        Failure::classify(Some(410), Some("PT410")),
        Failure::Rehydrate
    );
}

#[test]
fn a_reload_counts_as_a_catch_up_and_never_moves_back() {
    let t = Duration::ZERO;
    let mut f: Follower<u64> = Follower::new(0, t, FollowerConfig::default());
    f.advance_to(7);
    assert_eq!(f.applied(), 7);
    assert_eq!(f.poll(t), None, "nothing owed after a consistent reload");
    assert_eq!(f.offer(t, 9), Disposition::Gap { from: 8, to: 8 });
    assert_eq!(f.offer(t, 6), Disposition::Duplicate);
    f.advance_to(5);
    assert_eq!(f.applied(), 7);
    assert!(matches!(
        f.poll(t),
        Some(Action::FetchEvents { after: 7, .. })
    ));
    f.handle(t, Input::Page(vec![8, 9]));
    assert_eq!(f.poll(t), Some(Action::Apply(vec![8, 9])));
    f.catch_up_now();
    f.handle(t, Input::Applied { through: 9 });
    assert_eq!(f.poll(t), Some(Action::Persist { seq: 9 }));
    assert!(matches!(
        f.poll(t),
        Some(Action::FetchEvents { after: 9, .. })
    ));
}

#[test]
fn backoff_stays_within_half_and_all_of_the_cap() {
    let b = Backoff {
        base: Duration::from_millis(100),
        cap: Duration::from_secs(2),
    };
    assert_eq!(b.delay(1, 0.0), Duration::from_millis(50));
    assert_eq!(b.delay(1, 1.0), Duration::from_millis(100));
    assert_eq!(b.delay(3, 1.0), Duration::from_millis(400));
    assert_eq!(b.delay(40, 1.0), Duration::from_secs(2));
    assert_eq!(b.delay(40, 0.0), Duration::from_secs(1));
}

#[cfg(not(target_arch = "wasm32"))]
mod properties {
    use super::{run, Delivery, Op};
    use proptest::prelude::*;

    fn op() -> impl Strategy<Value = Op> {
        let delivery = prop_oneof![
            Just(Delivery::Now),
            Just(Delivery::Held),
            Just(Delivery::Dropped),
            Just(Delivery::Twice)
        ];
        prop_oneof![
            3 => delivery.prop_map(Op::Commit),
            1 => any::<usize>().prop_map(Op::Release),
            1 => Just(Op::Disconnect),
            1 => Just(Op::Join),
            1 => any::<u16>().prop_map(Op::Advance),
            5 => (any::<bool>(), any::<bool>())
                .prop_map(|(fail, partial)| Op::Step { fail, partial }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn converges_to_the_log_applying_each_seq_once_in_order(
            ops in prop::collection::vec(op(), 0..400),
            page_size in 1u32..8,
        ) {
            run(&ops, page_size);
        }
    }
}
