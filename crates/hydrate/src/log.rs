//! Structured logs through `tracing`: one JSON object per line, on stderr by default.
//!
//! Each [`Logger`] owns a `tracing` dispatcher (a `tracing-subscriber` fmt subscriber writing to the
//! logger's sink) and emits its events under it rather than under a global subscriber, so several
//! agents in one process keep separate logs. tracing-subscriber's own JSON layout nests the fields
//! and names the keys its way (`timestamp`, `fields.message`, upper-case levels), so `JsonLine`
//! formats the line operators and tests read: `ts`, `level`, `msg`, `project_id`, `session_id`,
//! `event_type` and the extra fields at the top level.

use std::fmt;
use std::io::{LineWriter, Write};
use std::sync::Mutex;

use serde_json::{Map, Value};
use tracing::dispatcher::{self, Dispatch};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::registry::LookupSpan;

/// Writes one JSON object per line with `ts`, `level`, `msg`, `project_id`, `session_id`,
/// `event_type` and any extra fields. Callers never pass tokens or signed URLs.
#[derive(Clone, Debug)]
pub struct Logger {
    dispatch: Dispatch,
}

impl Logger {
    /// Logs to stderr.
    pub fn stderr(project_id: &str, session_id: &str) -> Logger {
        Logger::to_writer(project_id, session_id, Box::new(std::io::stderr()))
    }

    /// Logs to any writer (tests capture lines this way); each line is flushed as it is written.
    pub fn to_writer(project_id: &str, session_id: &str, sink: Box<dyn Write + Send>) -> Logger {
        let subscriber = tracing_subscriber::fmt()
            .event_format(JsonLine {
                project_id: project_id.to_owned(),
                session_id: session_id.to_owned(),
            })
            .with_writer(Mutex::new(LineWriter::new(sink)))
            .finish();
        Logger {
            dispatch: Dispatch::new(subscriber),
        }
    }

    /// An `info` line.
    pub fn info(&self, event_type: &str, msg: &str, fields: Value) {
        dispatcher::with_default(&self.dispatch, || {
            tracing::info!(event_type, fields = %fields, "{msg}");
        });
    }

    /// A `warn` line.
    pub fn warn(&self, event_type: &str, msg: &str, fields: Value) {
        dispatcher::with_default(&self.dispatch, || {
            tracing::warn!(event_type, fields = %fields, "{msg}");
        });
    }

    /// An `error` line.
    pub fn error(&self, event_type: &str, msg: &str, fields: Value) {
        dispatcher::with_default(&self.dispatch, || {
            tracing::error!(event_type, fields = %fields, "{msg}");
        });
    }
}

/// The line layout. The extra fields travel as the event's `fields` field, JSON text: `tracing`
/// field names are fixed at the call site, so a JSON object cannot be spread into them.
struct JsonLine {
    project_id: String,
    session_id: String,
}

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: format::Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = Map::new();
        let ts = rfc3339_millis(std::time::SystemTime::now());
        line.insert("ts".into(), ts.into());
        let level = event.metadata().level().as_str().to_ascii_lowercase();
        line.insert("level".into(), level.into());
        line.insert("project_id".into(), self.project_id.clone().into());
        line.insert("session_id".into(), self.session_id.clone().into());
        let mut fields = Fields {
            line: &mut line,
            extra: Value::Null,
        };
        event.record(&mut fields);
        if let Value::Object(extra) = fields.extra {
            line.extend(extra);
        }
        writeln!(writer, "{}", Value::Object(line))
    }
}

/// Collects an event's fields into the line.
struct Fields<'a> {
    line: &'a mut Map<String, Value>,
    extra: Value,
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.line.insert(field.name().into(), value.into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        match field.name() {
            "message" => {
                self.line.insert("msg".into(), text.into());
            }
            "fields" => self.extra = serde_json::from_str(&text).unwrap_or(Value::Null),
            name => {
                self.line.insert(name.into(), text.into());
            }
        }
    }
}

/// `t` as RFC 3339 UTC with milliseconds, as every timestamp the agent writes.
pub(crate) fn rfc3339_millis(t: std::time::SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A URL fit for logs: scheme, host, port and path; no query (signed URLs carry tokens there).
pub(crate) fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            u.set_query(None);
            u.set_fragment(None);
            let _ = u.set_password(None);
            let _ = u.set_username("");
            u.to_string()
        }
        Err(_) => "<unparseable url>".into(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn one_json_object_per_line() {
        let buf = Buf::default();
        let log = Logger::to_writer("p", "s", Box::new(buf.clone()));
        log.info(
            "event.applied",
            "applied",
            serde_json::json!({"seq": 4, "duration_ms": 1.5}),
        );
        log.warn("x", "two\nlines", Value::Null);
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["seq"], 4);
        assert_eq!(lines[0]["project_id"], "p");
        assert_eq!(lines[0]["event_type"], "event.applied");
        assert_eq!(lines[1]["msg"], "two\nlines");
        assert_eq!(
            (&lines[0]["level"], &lines[1]["level"]),
            (&"info".into(), &"warn".into())
        );
        assert!(lines[0]["ts"].as_str().unwrap().ends_with('Z'));
    }

    /// Two agents in one process (as in the tests) must not share a sink or ids.
    #[test]
    fn loggers_keep_their_own_sink_and_ids() {
        let (a, b) = (Buf::default(), Buf::default());
        let log_a = Logger::to_writer("pa", "sa", Box::new(a.clone()));
        let log_b = Logger::to_writer("pb", "sb", Box::new(b.clone()));
        log_a.info(
            "one",
            "{not a format}",
            serde_json::json!({"nested": {"k": [1, 2]}}),
        );
        log_b.error("two", "b", serde_json::json!({"moved_to": "x"}));
        log_a.info("three", "a", Value::Null);
        let lines = |buf: &Buf| -> Vec<Value> {
            String::from_utf8(buf.0.lock().unwrap().clone())
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        };
        let (a, b) = (lines(&a), lines(&b));
        assert_eq!(a.len(), 2);
        assert_eq!(b.len(), 1);
        assert!(a
            .iter()
            .all(|l| l["project_id"] == "pa" && l["session_id"] == "sa"));
        assert_eq!(a[0]["msg"], "{not a format}");
        assert_eq!(a[0]["nested"]["k"][1], 2);
        assert_eq!(a[1]["event_type"], "three");
        assert_eq!(b[0]["project_id"], "pb");
        assert_eq!(b[0]["level"], "error");
        assert_eq!(b[0]["moved_to"], "x");
    }

    #[test]
    fn urls_lose_their_query() {
        assert_eq!(
            redact_url("http://h:1/storage/v1/object/sign/b/p.zip?token=secret"),
            "http://h:1/storage/v1/object/sign/b/p.zip"
        );
    }
}
