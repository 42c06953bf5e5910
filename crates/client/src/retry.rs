//! Bounded exponential backoff with full jitter, honouring the server's retry_after_ms.

use crate::error::ClientError;

/// The longest wait a timer honours: gloo-timers hands setTimeout the delay as an i32 (a larger
/// u32 turns negative) and setTimeout fires at once for anything longer.
pub(crate) const MAX_WAIT_MS: u32 = i32::MAX as u32;

/// Which failures a call may retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Network errors, 5xx and 429: for reads and idempotent writes (saves and deletes are: a
    /// repeat of a committed one is a no-op).
    Transient,
    /// Only 429, which the server returns before writing anything.
    RefusedOnly,
}

/// How often and how patiently to retry transient failures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = never retry).
    pub max_attempts: u32,
    /// Backoff before the first retry, in ms; doubles each time.
    pub base_delay_ms: u64,
    /// Cap on any single wait, in ms.
    pub max_delay_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_delay_ms: 200,
            max_delay_ms: 5_000,
        }
    }
}

impl RetryPolicy {
    /// How long to wait before attempt `attempt + 1` after `error` on attempt `attempt`
    /// (1-based), or `None` to give up. `unit` is a uniform random number in [0, 1).
    pub fn delay_ms(&self, attempt: u32, error: &ClientError, unit: f64) -> Option<u64> {
        self.delay_ms_for(Retry::Transient, attempt, error, unit)
    }

    pub(crate) fn delay_ms_for(
        &self,
        retry: Retry,
        attempt: u32,
        error: &ClientError,
        unit: f64,
    ) -> Option<u64> {
        let allowed = match retry {
            Retry::Transient => error.is_transient(),
            Retry::RefusedOnly => error.kind == crate::ErrorKind::RateLimited,
        };
        if attempt >= self.max_attempts || !allowed {
            return None;
        }
        let ceiling = self
            .base_delay_ms
            .saturating_mul(1u64 << (attempt - 1).min(30))
            .min(self.max_delay_ms);
        let jittered = (ceiling as f64 * unit.clamp(0.0, 1.0)) as u64;
        // The server knows when a token will be there; waiting less only earns another 429.
        let floor = error
            .retry_after_ms()
            .unwrap_or(0)
            .min(self.max_delay_ms.max(1) * 4);
        Some(jittered.max(floor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use serde_json::json;

    fn err(kind: ErrorKind, details: serde_json::Value) -> ClientError {
        ClientError::local(kind, "x", details)
    }

    #[test]
    fn backs_off_with_bounded_jitter() {
        let p = RetryPolicy::default();
        let net = err(ErrorKind::Network, json!(null));
        assert_eq!(p.delay_ms(1, &net, 0.999), Some(199));
        assert_eq!(p.delay_ms(2, &net, 0.5), Some(200));
        assert_eq!(p.delay_ms(3, &net, 1.0), Some(800));
        assert_eq!(p.delay_ms(4, &net, 1.0), None, "stops at max_attempts");
        let capped = RetryPolicy {
            max_attempts: 20,
            ..p
        };
        assert_eq!(capped.delay_ms(15, &net, 1.0), Some(5_000));
    }

    #[test]
    fn honours_retry_after_and_never_retries_conflicts() {
        let p = RetryPolicy::default();
        let limited = err(ErrorKind::RateLimited, json!({"retry_after_ms": 750}));
        assert_eq!(p.delay_ms(1, &limited, 0.0), Some(750));
        assert_eq!(
            p.delay_ms(1, &err(ErrorKind::Conflict, json!(null)), 0.5),
            None
        );
        assert_eq!(
            p.delay_ms(1, &err(ErrorKind::Invalid, json!(null)), 0.5),
            None
        );
        assert_eq!(
            p.delay_ms(1, &err(ErrorKind::Unauthorized, json!(null)), 0.5),
            None
        );
    }

    #[test]
    fn unrepeatable_writes_retry_only_refusals() {
        let p = RetryPolicy::default();
        let net = err(ErrorKind::Network, json!(null));
        assert_eq!(p.delay_ms_for(Retry::RefusedOnly, 1, &net, 0.5), None);
        let server = err(ErrorKind::Server, json!(null));
        assert_eq!(p.delay_ms_for(Retry::RefusedOnly, 1, &server, 0.5), None);
        let limited = err(ErrorKind::RateLimited, json!({"retry_after_ms": 30}));
        assert_eq!(
            p.delay_ms_for(Retry::RefusedOnly, 1, &limited, 0.0),
            Some(30)
        );
    }
}
