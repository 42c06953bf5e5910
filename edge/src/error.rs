//! One error type for every handler: a status, a stable `error` kind and a message for people.
//!
//! Upstream bodies (PostgREST, Storage) are summarised, never forwarded whole, and nothing internal
//! (a Rust error chain, a URL with a token, a key) reaches the response: [`AppError::Internal`]
//! keeps its detail for the log line only.

use serde::Serialize;
use worker::Response;

/// What went wrong, as the caller sees it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AppError {
    /// 400: the request body or a parameter is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no token, a token that does not verify, or the wrong role.
    #[error("{0}")]
    Unauthorized(String),
    /// 404: no such route, or no such project.
    #[error("{0}")]
    NotFound(String),
    /// 405: the route exists with another method.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 409: FSYNC_SNAPSHOT_HYDRATION is off for the project's owner: the orchestrator falls back to
    /// its legacy path. 409 means only this, so callers can branch on the status alone.
    #[error("{0}")]
    HydrationDisabled(String),
    /// 413: the project or its archive is over the snapshot limit.
    #[error("{0}")]
    TooLarge(String),
    /// 422: the project holds something a snapshot cannot carry (e.g. a path that breaks the rules).
    #[error("{0}")]
    Invalid(String),
    /// 429: the database refused the call as rate limited.
    #[error("{0}")]
    RateLimited(String),
    /// 502: PostgREST or Storage failed, or returned data that does not check out.
    #[error("{0}")]
    Upstream(String),
    /// 500: a bug or a misconfiguration. The message is logged, the caller sees a generic one.
    #[error("{0}")]
    Internal(String),
    /// A container session that can no longer be used, with its own `error` code: 401
    /// `session_ended` / `session_expired` / `session_unknown`, 404 `project_not_found`, 403
    /// `feature_disabled` (docs/contracts.md "Sessions").
    #[error("{message}")]
    Session {
        status: u16,
        code: &'static str,
        message: String,
    },
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    message: &'a str,
}

impl AppError {
    /// The HTTP status.
    pub(crate) fn status(&self) -> u16 {
        match self {
            AppError::BadRequest(_) => 400,
            AppError::Unauthorized(_) => 401,
            AppError::NotFound(_) => 404,
            AppError::MethodNotAllowed(_) => 405,
            AppError::HydrationDisabled(_) => 409,
            AppError::TooLarge(_) => 413,
            AppError::Invalid(_) => 422,
            AppError::RateLimited(_) => 429,
            AppError::Upstream(_) => 502,
            AppError::Internal(_) => 500,
            AppError::Session { status, .. } => *status,
        }
    }

    /// The stable `error` field of the JSON body.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            AppError::BadRequest(_) => "bad_request",
            AppError::Unauthorized(_) => "unauthorized",
            AppError::NotFound(_) => "not_found",
            AppError::MethodNotAllowed(_) => "method_not_allowed",
            AppError::HydrationDisabled(_) => "hydration_disabled",
            AppError::TooLarge(_) => "too_large",
            AppError::Invalid(_) => "invalid",
            AppError::RateLimited(_) => "rate_limited",
            AppError::Upstream(_) => "upstream",
            AppError::Internal(_) => "internal",
            AppError::Session { code, .. } => code,
        }
    }

    /// The message the caller sees (the log line keeps [`AppError`]'s own text).
    pub(crate) fn public_message(&self) -> String {
        match self {
            AppError::Internal(_) => "internal error; see the worker's log".to_owned(),
            other => other.to_string(),
        }
    }

    /// `{"error": kind, "message": …}` with the status (and `WWW-Authenticate` on 401).
    pub(crate) fn to_response(&self) -> Response {
        let message = self.public_message();
        let body = Body {
            error: self.kind(),
            message: &message,
        };
        let json = serde_json::to_string(&body).unwrap_or_else(|_| "{}".to_owned());
        let mut resp = Response::ok(json)
            .map(|r| r.with_status(self.status()))
            .unwrap_or_else(|_| {
                Response::empty()
                    .expect("an empty response")
                    .with_status(500)
            });
        let headers = resp.headers_mut();
        let _ = headers.set("content-type", "application/json");
        if self.status() == 401 {
            let _ = headers.set("www-authenticate", "Bearer");
        }
        resp
    }
}

impl From<worker::Error> for AppError {
    fn from(e: worker::Error) -> Self {
        AppError::Internal(format!("worker runtime: {e}"))
    }
}
