//! Timestamps for logs and HTTP headers.

use std::time::SystemTime;

/// `2025-11-26T09:00:00.123Z`.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// `Wed, 26 Nov 2025 09:00:00 GMT`.
pub(crate) fn http_date(t: SystemTime) -> String {
    httpdate::fmt_http_date(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn known_instants() {
        let t = UNIX_EPOCH + Duration::from_millis(1_764_147_600_123);
        assert_eq!(rfc3339(t), "2025-11-26T09:00:00.123Z");
        assert_eq!(http_date(t), "Wed, 26 Nov 2025 09:00:00 GMT");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }
}
