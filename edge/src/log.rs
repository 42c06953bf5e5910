//! One structured JSON line per request (`console.log`), for Workers Logs / `wrangler tail`, and
//! the same numbers as a Workers Analytics Engine data point when the Worker has the
//! `FSYNC_ANALYTICS` binding (docs/operations.md has both schemas).
//!
//! Only identifiers, sizes, timings and error kinds: never a token, key, secret or signed URL.

use serde::Serialize;
use worker::{AnalyticsEngineDataPointBuilder, Env};

/// The Analytics Engine binding (edge/wrangler.toml `[[analytics_engine_datasets]]`).
pub(crate) const ANALYTICS_BINDING: &str = "FSYNC_ANALYTICS";

/// The fields of a request's log line; handlers fill in what they learn.
#[derive(Debug, Default, Serialize)]
pub(crate) struct RequestLog {
    /// `snapshot.build`, `session.create`, `session.end`, `session.refresh`, `session.snapshot`,
    /// `health` or `unrouted`.
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
    /// Why this request's Analytics Engine data point could not be written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) analytics_error: Option<String>,
}

/// One request as an Analytics Engine data point. The dataset's columns are positional
/// (`blob1`…, `double1`…) and the stored rows keep the meaning they were written with, so the
/// order is the schema: append new fields, never reorder or reuse one.
#[derive(Debug, PartialEq)]
pub(crate) struct DataPoint {
    /// `index1`, the sampling key: the project id, empty when the request named none.
    pub(crate) index: String,
    /// event type, status class, snapshot reused/built, error kind, method, session id, snapshot id.
    pub(crate) blobs: [String; 7],
    /// duration ms, status, build ms, snapshot bytes, snapshot files, content bytes, as_of_seq,
    /// Wasm memory bytes; 0 where the request had none.
    pub(crate) doubles: [f64; 8],
}

impl RequestLog {
    /// The JSON line.
    pub(crate) fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{\"event_type\":\"log_error\"}".to_owned())
    }

    /// The request's data point; none for `health`, which uptime probes call often enough to
    /// outnumber every other event while saying nothing about fs-sync.
    pub(crate) fn data_point(&self) -> Option<DataPoint> {
        if self.event_type == "health" {
            return None;
        }
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        let num = |v: Option<u64>| v.unwrap_or(0) as f64;
        Some(DataPoint {
            index: text(&self.project_id),
            blobs: [
                self.event_type.to_owned(),
                format!("{}xx", self.status / 100),
                self.snapshot.unwrap_or_default().to_owned(),
                self.error.unwrap_or_default().to_owned(),
                self.method.clone(),
                text(&self.session_id),
                text(&self.snapshot_id),
            ],
            doubles: [
                self.duration_ms as f64,
                f64::from(self.status),
                num(self.build_ms),
                num(self.snapshot_bytes),
                num(self.snapshot_files.map(|n| n as u64)),
                num(self.content_bytes),
                num(self.as_of_seq),
                num(self.wasm_memory_bytes),
            ],
        })
    }
}

/// Writes `point` to the `FSYNC_ANALYTICS` dataset. Without that binding (it is optional) nothing
/// is written and this is Ok. A refused write is returned for the log line, never raised: the
/// request has its answer already and the JSON line still carries the same numbers.
pub(crate) fn write_data_point(env: &Env, point: &DataPoint) -> Result<(), String> {
    let Ok(dataset) = env.analytics_engine(ANALYTICS_BINDING) else {
        return Ok(());
    };
    let indexes: &[&str] = if point.index.is_empty() {
        &[]
    } else {
        &[point.index.as_str()]
    };
    AnalyticsEngineDataPointBuilder::new()
        .indexes(indexes)
        .blobs(point.blobs.iter().map(String::as_str))
        .doubles(point.doubles)
        .write_to(&dataset)
        .map_err(|e| e.to_string())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_built_snapshot_maps_to_every_column() {
        let line = RequestLog {
            event_type: "session.create",
            method: "POST".into(),
            path: "/sessions".into(),
            status: 200,
            duration_ms: 412,
            project_id: Some("0f8fad5b-d9cb-469f-a165-70867728950e".into()),
            session_id: Some("sess-1".into()),
            snapshot_id: Some("0f8fad5b-d9cb-469f-a165-70867728950e/42-ab12".into()),
            snapshot: Some("built"),
            snapshot_bytes: Some(123_456),
            snapshot_files: Some(200),
            content_bytes: Some(654_321),
            as_of_seq: Some(42),
            build_ms: Some(97),
            wasm_memory_bytes: Some(1_114_112),
            ..RequestLog::default()
        };
        assert_eq!(
            line.data_point(),
            Some(DataPoint {
                index: "0f8fad5b-d9cb-469f-a165-70867728950e".into(),
                blobs: [
                    "session.create",
                    "2xx",
                    "built",
                    "",
                    "POST",
                    "sess-1",
                    "0f8fad5b-d9cb-469f-a165-70867728950e/42-ab12",
                ]
                .map(String::from),
                doubles: [
                    412.0,
                    200.0,
                    97.0,
                    123_456.0,
                    200.0,
                    654_321.0,
                    42.0,
                    1_114_112.0
                ],
            })
        );
    }

    #[test]
    fn an_error_without_a_project_keeps_its_kind_and_zeroes() {
        let line = RequestLog {
            event_type: "session.refresh",
            method: "POST".into(),
            path: "/sessions/refresh".into(),
            status: 401,
            duration_ms: 3,
            error: Some("unauthorized"),
            message: Some("token expired".into()),
            ..RequestLog::default()
        };
        let point = line.data_point().expect("a data point");
        assert_eq!(point.index, "");
        assert_eq!(
            point.blobs,
            ["session.refresh", "4xx", "", "unauthorized", "POST", "", ""].map(String::from)
        );
        assert_eq!(point.doubles, [3.0, 401.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn health_probes_write_no_data_point() {
        let line = RequestLog {
            event_type: "health",
            status: 200,
            ..RequestLog::default()
        };
        assert_eq!(line.data_point(), None);
        assert!(line.to_line().starts_with("{\"event_type\":\"health\""));
    }
}
