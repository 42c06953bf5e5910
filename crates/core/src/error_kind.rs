//! What kind of refusal a server's answer is: the one mapping from PostgREST/SQLSTATE codes and
//! HTTP statuses (docs/contracts.md, "Errors") that the npm package, the change-log follower and
//! the edge worker share.

/// What went wrong, as callers branch on it (`error.kind` in the npm package).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Someone else saved first (PT409); the details have the current version and hash.
    Conflict,
    /// The request broke a rule (bad path, bad argument; PT422 or another 4xx).
    Invalid,
    /// Over a size limit (PT413).
    TooLarge,
    /// Too many writes (PT429); the details' `retry_after_ms` says when to try again.
    RateLimited,
    /// Missing, expired or insufficient credentials (401/403, 42501, PGRST30x).
    Unauthorized,
    /// No such project or file (PT404).
    NotFound,
    /// The change log no longer holds the position asked for (PT410): start again from a fresh
    /// snapshot or a reload.
    Rehydrate,
    /// The request did not reach the server or its answer was lost.
    Network,
    /// The server failed (5xx), lacks the migrations (PGRST202) or answered something unreadable.
    Server,
}

impl ErrorKind {
    /// The stable name (`conflict`, `invalid`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Conflict => "conflict",
            ErrorKind::Invalid => "invalid",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Rehydrate => "rehydrate",
            ErrorKind::Network => "network",
            ErrorKind::Server => "server",
        }
    }

    /// Classifies an error response by its PostgREST/SQLSTATE `code` and HTTP `status`.
    pub fn from_response(code: Option<&str>, status: u16) -> ErrorKind {
        match (code, status) {
            (Some("PT409"), _) => ErrorKind::Conflict,
            (Some("PT422"), _) => ErrorKind::Invalid,
            (Some("PT413"), _) | (_, 413) => ErrorKind::TooLarge,
            (Some("PT429"), _) | (_, 429) => ErrorKind::RateLimited,
            (Some("PT404"), _) => ErrorKind::NotFound,
            (Some("PT410"), _) | (_, 410) => ErrorKind::Rehydrate,
            (Some("42501"), _) | (_, 401) | (_, 403) => ErrorKind::Unauthorized,
            (Some(c), _) if c.starts_with("PGRST3") => ErrorKind::Unauthorized,
            (_, s) if s >= 500 => ErrorKind::Server,
            // The RPC itself is missing: the database lacks the migrations, not a caller mistake.
            (Some("PGRST202"), _) => ErrorKind::Server,
            _ => ErrorKind::Invalid,
        }
    }

    /// Worth retrying as it is: the network, a server failure, a rate limit.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorKind::Network | ErrorKind::Server | ErrorKind::RateLimited
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn codes_and_statuses_map_as_the_contract_says() {
        for (code, status, kind) in [
            (Some("PT409"), 409, ErrorKind::Conflict),
            (Some("PT422"), 422, ErrorKind::Invalid),
            (Some("22P02"), 400, ErrorKind::Invalid),
            (Some("PT413"), 413, ErrorKind::TooLarge),
            (None, 413, ErrorKind::TooLarge),
            (Some("PT429"), 429, ErrorKind::RateLimited),
            (Some("PT404"), 404, ErrorKind::NotFound),
            (Some("PT410"), 410, ErrorKind::Rehydrate),
            (Some("42501"), 403, ErrorKind::Unauthorized),
            (Some("PGRST301"), 401, ErrorKind::Unauthorized),
            (Some("PGRST303"), 401, ErrorKind::Unauthorized),
            (Some("PGRST202"), 404, ErrorKind::Server),
            (None, 503, ErrorKind::Server),
            (None, 418, ErrorKind::Invalid),
        ] {
            assert_eq!(
                ErrorKind::from_response(code, status),
                kind,
                "{code:?} {status}"
            );
        }
        assert!(ErrorKind::RateLimited.is_transient());
        assert!(!ErrorKind::Conflict.is_transient());
    }
}
