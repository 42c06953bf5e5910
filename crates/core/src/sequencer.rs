//! Ordering realtime events by change-log seq: apply in order, drop duplicates, report gaps.

use std::collections::BTreeMap;

/// What to do with an event, given the last seq applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// `seq == last + 1`: apply it now.
    Apply,
    /// `seq <= last`: already applied; ignore it.
    Duplicate,
    /// `seq > last + 1`: events `from..=to` are missing and must be fetched from the log first.
    Gap {
        /// First missing seq.
        from: u64,
        /// Last missing seq.
        to: u64,
    },
}

/// Classifies `seq` against the last applied seq.
pub fn classify(last_applied: u64, seq: u64) -> Disposition {
    match seq {
        s if s <= last_applied => Disposition::Duplicate,
        s if s == last_applied + 1 => Disposition::Apply,
        s => Disposition::Gap {
            from: last_applied + 1,
            to: s - 1,
        },
    }
}

/// Puts events back into seq order.
///
/// Events are [`offer`](Sequencer::offer)ed as they arrive, from realtime or from a catch-up read
/// of the log, in any order and with repeats; [`pop_ready`](Sequencer::pop_ready) hands them out
/// strictly as last+1, last+2, …, and [`missing`](Sequencer::missing) says which range to fetch
/// when the next one has not arrived.
///
/// ```
/// use fs_sync_core::{Disposition, Sequencer};
///
/// let mut seq = Sequencer::new(10);
/// assert_eq!(seq.offer(13, "c"), Disposition::Gap { from: 11, to: 12 });
/// assert_eq!(seq.missing(), Some((11, 12)));
/// seq.offer(11, "a");
/// seq.offer(12, "b");
/// let order: Vec<_> = std::iter::from_fn(|| seq.pop_ready()).collect();
/// assert_eq!(order, ["a", "b", "c"]);
/// assert_eq!(seq.last_applied(), 13);
/// ```
#[derive(Clone, Debug)]
pub struct Sequencer<T> {
    last: u64,
    pending: BTreeMap<u64, T>,
}

impl<T> Sequencer<T> {
    /// A sequencer that has applied everything up to `last_applied` (a snapshot's `as_of_seq`).
    pub fn new(last_applied: u64) -> Self {
        Sequencer {
            last: last_applied,
            pending: BTreeMap::new(),
        }
    }

    /// The last seq handed out by [`pop_ready`](Sequencer::pop_ready) (or given to `new`).
    pub fn last_applied(&self) -> u64 {
        self.last
    }

    /// Classifies `seq` against what has been applied.
    pub fn classify(&self, seq: u64) -> Disposition {
        classify(self.last, seq)
    }

    /// Accepts an event; keeps it unless it is a duplicate (applied or already waiting).
    pub fn offer(&mut self, seq: u64, item: T) -> Disposition {
        let disposition = self.classify(seq);
        if disposition != Disposition::Duplicate {
            if self.pending.contains_key(&seq) {
                return Disposition::Duplicate;
            }
            self.pending.insert(seq, item);
        }
        disposition
    }

    /// The next event in order, if it has arrived; marks it applied.
    pub fn pop_ready(&mut self) -> Option<T> {
        let item = self.pending.remove(&(self.last + 1))?;
        self.last += 1;
        Some(item)
    }

    /// The first range of seqs that must be fetched before anything waiting can be applied.
    pub fn missing(&self) -> Option<(u64, u64)> {
        let (&first, _) = self.pending.iter().next()?;
        (first > self.last + 1).then(|| (self.last + 1, first - 1))
    }

    /// Marks everything up to `seq` applied (a full reload reflects it), dropping what waited
    /// at or below it. Never moves backwards.
    pub fn advance_to(&mut self, seq: u64) {
        if seq > self.last {
            self.last = seq;
            self.pending = self.pending.split_off(&(seq + 1));
        }
    }

    /// How many events wait for an earlier one.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// The highest seq seen so far, applied or waiting.
    pub fn highest_seen(&self) -> u64 {
        self.pending
            .keys()
            .next_back()
            .copied()
            .unwrap_or(self.last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn classifies() {
        assert_eq!(classify(5, 6), Disposition::Apply);
        assert_eq!(classify(5, 5), Disposition::Duplicate);
        assert_eq!(classify(5, 1), Disposition::Duplicate);
        assert_eq!(classify(5, 9), Disposition::Gap { from: 6, to: 8 });
        assert_eq!(classify(0, 1), Disposition::Apply);
    }

    #[test]
    fn duplicates_of_waiting_events_are_dropped() {
        let mut s = Sequencer::new(0);
        assert!(matches!(s.offer(3, 'x'), Disposition::Gap { .. }));
        assert_eq!(s.offer(3, 'y'), Disposition::Duplicate);
        assert_eq!(s.pending_len(), 1);
        assert_eq!(s.highest_seen(), 3);
        assert_eq!(s.pop_ready(), None);
        s.offer(1, 'a');
        s.offer(2, 'b');
        assert_eq!(s.pop_ready(), Some('a'));
        assert_eq!(s.pop_ready(), Some('b'));
        assert_eq!(s.pop_ready(), Some('x'));
        assert_eq!(s.missing(), None);
        assert_eq!(s.offer(2, 'z'), Disposition::Duplicate);
    }

    #[test]
    fn advance_to_skips_what_a_reload_covers() {
        let mut s = Sequencer::new(2);
        s.offer(4, 'd');
        s.offer(6, 'f');
        s.advance_to(4);
        assert_eq!(s.last_applied(), 4);
        assert_eq!(s.pending_len(), 1);
        assert_eq!(s.missing(), Some((5, 5)));
        s.advance_to(1);
        assert_eq!(s.last_applied(), 4, "never backwards");
    }
}
