//! Typed client errors and how HTTP responses map onto them.

pub use fs_sync_core::ErrorKind;
use serde_json::Value;
use wasm_bindgen::prelude::*;

/// An error with everything the app needs to react: kind, a message for people, and the server's
/// structured details.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientError {
    /// The kind.
    pub kind: ErrorKind,
    /// What was refused and why.
    pub message: String,
    /// The server's details (PT409: path, expected_version, current_version, current_hash).
    pub details: Value,
    /// HTTP status, when there was a response.
    pub status: Option<u16>,
    /// PostgREST/SQLSTATE code, when the server sent one.
    pub code: Option<String>,
}

impl ClientError {
    /// An error raised before any request was made.
    pub fn local(kind: ErrorKind, message: impl Into<String>, details: Value) -> ClientError {
        ClientError {
            kind,
            message: message.into(),
            details,
            status: None,
            code: None,
        }
    }

    /// Maps a PostgREST error response (`{code, message, details, hint}`) onto a kind.
    pub fn from_response(status: u16, body: &str) -> ClientError {
        let parsed: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        let code = parsed["code"].as_str().map(str::to_owned);
        // PostgREST sends `details` as the SQL DETAIL text; ours is JSON inside that string.
        let details = match &parsed["details"] {
            Value::String(s) => {
                serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone()))
            }
            other => other.clone(),
        };
        let message = parsed["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("the server answered HTTP {status}"));
        let kind = ErrorKind::from_response(code.as_deref(), status);
        ClientError {
            kind,
            message,
            details,
            status: Some(status),
            code,
        }
    }

    /// True for failures worth retrying: network, 5xx, 429 (not a missing RPC).
    pub fn is_transient(&self) -> bool {
        self.kind.is_transient() && self.code.as_deref() != Some("PGRST202")
    }

    /// The server's `retry_after_ms`, for rate-limit errors.
    pub fn retry_after_ms(&self) -> Option<u64> {
        self.details["retry_after_ms"].as_u64()
    }

    /// Builds the JS `FsSyncError` (a real `Error` subclass) for this error.
    pub fn to_js(&self) -> JsValue {
        let details = js_sys::JSON::parse(&self.details.to_string()).unwrap_or(JsValue::NULL);
        make_error(
            self.kind.as_str(),
            &self.message,
            details,
            self.status.map(f64::from),
            self.code.as_deref(),
        )
        .into()
    }
}

impl From<fs_sync_core::PathError> for ClientError {
    fn from(e: fs_sync_core::PathError) -> Self {
        ClientError::local(
            ErrorKind::Invalid,
            e.to_string(),
            serde_json::json!({"rule": e.rule.name(), "path": e.path}),
        )
    }
}

#[wasm_bindgen(inline_js = r#"
export class FsSyncError extends Error {
  constructor(kind, message, details, status, code) {
    super(message);
    this.name = 'FsSyncError';
    this.kind = kind;
    this.details = details ?? null;
    this.status = status ?? null;
    this.code = code ?? null;
  }
}
export function error_class() {
  return FsSyncError;
}
export function make_error(kind, message, details, status, code) {
  return new FsSyncError(kind, message, details, status, code);
}
"#)]
extern "C" {
    /// The JS error class the package exports.
    pub type FsSyncError;

    /// The FsSyncError constructor.
    pub fn error_class() -> JsValue;

    fn make_error(
        kind: &str,
        message: &str,
        details: JsValue,
        status: Option<f64>,
        code: Option<&str>,
    ) -> FsSyncError;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_postgrest_errors() {
        let conflict = ClientError::from_response(
            409,
            r#"{"code":"PT409","message":"version conflict on \"a\"","details":"{\"path\":\"a\",\"current_version\":3}","hint":null}"#,
        );
        assert_eq!(conflict.kind, ErrorKind::Conflict);
        assert_eq!(conflict.details["current_version"], 3);
        assert!(!conflict.is_transient());

        let limited = ClientError::from_response(
            429,
            r#"{"code":"PT429","message":"slow down","details":"{\"retry_after_ms\":250}"}"#,
        );
        assert_eq!(limited.kind, ErrorKind::RateLimited);
        assert_eq!(limited.retry_after_ms(), Some(250));
        assert!(limited.is_transient());

        let cases = [
            (422, "PT422", ErrorKind::Invalid),
            (413, "PT413", ErrorKind::TooLarge),
            (404, "PT404", ErrorKind::NotFound),
            (401, "42501", ErrorKind::Unauthorized),
            (403, "42501", ErrorKind::Unauthorized),
            (401, "PGRST301", ErrorKind::Unauthorized),
            (404, "PGRST202", ErrorKind::Server),
            (400, "P0001", ErrorKind::Invalid),
            (503, "PGRST001", ErrorKind::Server),
        ];
        for (status, code, kind) in cases {
            let body = format!(r#"{{"code":"{code}","message":"m","details":null}}"#);
            let e = ClientError::from_response(status, &body);
            assert_eq!(e.kind, kind, "{status} {code}");
        }
        assert!(!ClientError::from_response(404, r#"{"code":"PGRST202"}"#).is_transient());
        let garbage = ClientError::from_response(502, "<html>bad gateway</html>");
        assert_eq!(garbage.kind, ErrorKind::Server);
        assert!(garbage.is_transient());
        assert!(garbage.message.contains("502"));
    }
}
