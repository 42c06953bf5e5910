//! When a follower of the change log confirms its position.
//!
//! Realtime delivers at most once, and a dropped *last* event has no successor to reveal the gap,
//! so a follower asks the server for the log's position now and then. Asking often costs a
//! request each time; asking rarely leaves a dropped last event unapplied for that long. Drops
//! happen while events flow, so checks come soon after activity and back off towards the idle
//! interval: a dropped last event of a burst is found within about a second, and an idle follower
//! makes one check per idle interval.

use std::time::Duration;

/// Delay from the last activity to the first check after it.
pub const FIRST_CHECK_AFTER_ACTIVITY: Duration = Duration::from_millis(500);

/// The schedule of position checks. Sans-IO: the caller passes the time (any monotonic clock,
/// as a duration since an origin of its choice), asks [`CheckCadence::due`] when to check, and
/// reports what happened.
#[derive(Clone, Debug)]
pub struct CheckCadence {
    idle: Duration,
    delay: Duration,
    due: Duration,
}

impl CheckCadence {
    /// A schedule whose first check is one `idle` interval after `now`.
    pub fn new(now: Duration, idle: Duration) -> Self {
        CheckCadence {
            idle,
            delay: idle,
            due: now + idle,
        }
    }

    /// When the next check is due.
    pub fn due(&self) -> Duration {
        self.due
    }

    /// Something arrived (an event, a reconnect): check soon after it settles.
    pub fn activity(&mut self, now: Duration) {
        self.delay = FIRST_CHECK_AFTER_ACTIVITY.min(self.idle);
        self.due = now + self.delay;
    }

    /// A check was made (whatever it found): the next comes after twice the last delay, at most
    /// one idle interval.
    pub fn checked(&mut self, now: Duration) {
        self.delay = (self.delay * 2).min(self.idle);
        self.due = now + self.delay;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);
    const IDLE: Duration = Duration::from_secs(15);

    /// Runs the schedule from `start` until `end`, returning when checks happen.
    fn checks(c: &mut CheckCadence, end: Duration) -> Vec<Duration> {
        let mut at = Vec::new();
        while c.due() <= end {
            let now = c.due();
            at.push(now);
            c.checked(now);
        }
        at
    }

    /// Regression: with one fixed 15 s interval, a dropped last event waited 12–15 s.
    #[test]
    fn a_check_follows_activity_within_a_second_then_backs_off_to_idle() {
        let mut c = CheckCadence::new(Duration::ZERO, IDLE);
        c.activity(100 * S);
        let at = checks(&mut c, 200 * S);
        let ms: Vec<u128> = at.iter().map(Duration::as_millis).collect();
        assert_eq!(
            ms[..6],
            [100_500, 101_500, 103_500, 107_500, 115_500, 130_500]
        );
        assert!(at.windows(2).all(|w| w[1] - w[0] <= IDLE));
        // Whatever time the dropped last event arrives after the activity, the next check is
        // within 2 s while the burst is recent.
        assert!(at[0] - 100 * S < 2 * S && at[1] - at[0] < 2 * S);
    }

    #[test]
    fn an_idle_follower_checks_once_per_interval() {
        let mut c = CheckCadence::new(Duration::ZERO, IDLE);
        let at = checks(&mut c, 3600 * S);
        assert_eq!(at.len(), 240);
        assert!(at.windows(2).all(|w| w[1] - w[0] == IDLE));
    }

    #[test]
    fn activity_while_busy_keeps_the_check_just_after_the_last_event() {
        let mut c = CheckCadence::new(Duration::ZERO, IDLE);
        for ms in (0..3000).step_by(100) {
            c.activity(Duration::from_millis(ms));
        }
        assert_eq!(
            c.due(),
            Duration::from_millis(2900) + FIRST_CHECK_AFTER_ACTIVITY
        );
    }

    #[test]
    fn a_short_idle_interval_caps_the_first_delay() {
        let mut c = CheckCadence::new(Duration::ZERO, Duration::from_millis(200));
        c.activity(S);
        assert_eq!(c.due(), S + Duration::from_millis(200));
    }
}
