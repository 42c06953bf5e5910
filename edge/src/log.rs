//! One structured JSON line per request (`console.log`), for Workers Logs / `wrangler tail`.
//!
//! Only identifiers, sizes, timings and error kinds: never a token, key, secret or signed URL.

use serde::Serialize;

/// The fields of a request's log line; handlers fill in what they learn.
#[derive(Debug, Default, Serialize)]
pub(crate) struct RequestLog {
    /// `snapshot.build`, `session.create`, `session.refresh`, `health` or `unrouted`.
    pub(crate) event_type: &'static str,
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) status: u16,
    /// Wall time of the request in ms. Inside Workers the clock advances only across I/O, so this
    /// is the I/O-bound latency; the platform reports CPU time separately (Workers Logs `cpuTime`).
    pub(crate) duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) project_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) session_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) snapshot_id: Option<String>,
    /// `reused` or `built`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) snapshot: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) snapshot_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) snapshot_files: Option<usize>,
    /// Uncompressed bytes of the files in the snapshot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) content_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) as_of_seq: Option<u64>,
    /// Time spent building and uploading (built only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) build_ms: Option<u64>,
    /// Size of the Wasm linear memory at the end of the request: it only grows, so this is the
    /// instance's peak so far (the 128 MB isolate limit counts it with the JS heap).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) wasm_memory_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) message: Option<String>,
}

impl RequestLog {
    /// The JSON line.
    pub(crate) fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{\"event_type\":\"log_error\"}".to_owned())
    }
}

/// Bytes of Wasm linear memory (None off wasm32).
pub(crate) fn wasm_memory_bytes() -> Option<u64> {
    #[cfg(target_arch = "wasm32")]
    {
        Some(core::arch::wasm32::memory_size::<0>() as u64 * 65_536)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        None
    }
}
