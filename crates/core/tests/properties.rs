//! Properties of path validation and sequencing that must hold for any input.
#![cfg(not(target_arch = "wasm32"))]

use std::path::{Component, Path};

use fs_sync_core::{validate_path, Sequencer};
use proptest::prelude::*;

fn hostile_path() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("..".to_string()),
        Just(".".to_string()),
        Just("/".to_string()),
        Just("\\".to_string()),
        Just("".to_string()),
        Just("C:".to_string()),
        Just("\u{0}".to_string()),
        Just("e\u{301}".to_string()),
        "[a-z.]{1,4}",
        any::<String>(),
    ];
    prop::collection::vec(piece, 1..8).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Whatever string comes in, a path that passes the rules stays inside the target.
    #[test]
    fn valid_paths_never_escape(p in hostile_path()) {
        if validate_path(&p).is_ok() {
            let target = Path::new("/srv/project");
            let joined = target.join(&p);
            prop_assert!(joined.starts_with(target));
            prop_assert!(Path::new(&p).components().all(|c| matches!(c, Component::Normal(_))), "{:?}", p);
            prop_assert_eq!(Path::new(&p).components().count(), p.split('/').count());
        }
    }
}

/// An arrival order: every seq 1..=n at least once, shuffled, with repeats, and whether each
/// arrival is followed by a catch-up read of whatever is missing.
fn arrivals() -> impl Strategy<Value = (u64, Vec<(u64, bool)>)> {
    (1u64..150).prop_flat_map(|n| {
        let seqs: Vec<u64> = (1..=n).collect();
        (
            Just(n),
            (
                Just(seqs).prop_shuffle(),
                prop::collection::vec(1..=n, 0..40),
                prop::collection::vec(any::<bool>(), 300),
            )
                .prop_map(|(mut order, dups, catch)| {
                    for (i, d) in dups.into_iter().enumerate() {
                        let at = (i * 7) % (order.len() + 1);
                        order.insert(at, d);
                    }
                    order.into_iter().zip(catch.into_iter().cycle()).collect()
                }),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn sequencer_applies_in_order_exactly_once((n, order) in arrivals()) {
        let mut s = Sequencer::new(0);
        let mut applied = Vec::new();
        let drain = |s: &mut Sequencer<u64>, applied: &mut Vec<u64>| {
            while let Some(x) = s.pop_ready() {
                applied.push(x);
            }
        };
        for (seq, catch_up) in order {
            s.offer(seq, seq);
            drain(&mut s, &mut applied);
            if catch_up {
                // The log (truth) delivers the missing range, possibly overlapping what is pending.
                if let Some((from, to)) = s.missing() {
                    for x in from..=to {
                        s.offer(x, x);
                    }
                    drain(&mut s, &mut applied);
                }
            }
            prop_assert!(applied.windows(2).all(|w| w[1] == w[0] + 1));
        }
        prop_assert_eq!(applied, (1..=n).collect::<Vec<_>>());
        prop_assert_eq!(s.pending_len(), 0);
    }
}
