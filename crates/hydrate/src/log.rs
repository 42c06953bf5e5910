//! Structured logs: one JSON object per line, on stderr by default.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};

/// Writes one JSON object per line with `ts`, `level`, `msg`, `project_id`, `session_id`,
/// `event_type` and any extra fields. Callers never pass tokens or signed URLs.
#[derive(Clone)]
pub struct Logger {
    inner: Arc<Inner>,
}

struct Inner {
    project_id: String,
    session_id: String,
    sink: Mutex<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for Logger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logger")
            .field("project_id", &self.inner.project_id)
            .field("session_id", &self.inner.session_id)
            .finish_non_exhaustive()
    }
}

impl Logger {
    /// Logs to stderr.
    pub fn stderr(project_id: &str, session_id: &str) -> Logger {
        Logger::to_writer(project_id, session_id, Box::new(std::io::stderr()))
    }

    /// Logs to any writer (tests capture lines this way).
    pub fn to_writer(project_id: &str, session_id: &str, sink: Box<dyn Write + Send>) -> Logger {
        Logger {
            inner: Arc::new(Inner {
                project_id: project_id.to_owned(),
                session_id: session_id.to_owned(),
                sink: Mutex::new(sink),
            }),
        }
    }

    /// An `info` line.
    pub fn info(&self, event_type: &str, msg: &str, fields: Value) {
        self.line("info", event_type, msg, fields);
    }

    /// A `warn` line.
    pub fn warn(&self, event_type: &str, msg: &str, fields: Value) {
        self.line("warn", event_type, msg, fields);
    }

    /// An `error` line.
    pub fn error(&self, event_type: &str, msg: &str, fields: Value) {
        self.line("error", event_type, msg, fields);
    }

    fn line(&self, level: &str, event_type: &str, msg: &str, fields: Value) {
        let mut m = Map::new();
        let ts = chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now())
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        m.insert("ts".into(), ts.into());
        m.insert("level".into(), level.into());
        m.insert("msg".into(), msg.into());
        m.insert("project_id".into(), self.inner.project_id.clone().into());
        m.insert("session_id".into(), self.inner.session_id.clone().into());
        m.insert("event_type".into(), event_type.into());
        if let Value::Object(extra) = fields {
            for (k, v) in extra {
                m.insert(k, v);
            }
        }
        let mut text = Value::Object(m).to_string();
        text.push('\n');
        if let Ok(mut sink) = self.inner.sink.lock() {
            let _ = sink.write_all(text.as_bytes());
            let _ = sink.flush();
        }
    }
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
    }

    #[test]
    fn urls_lose_their_query() {
        assert_eq!(
            redact_url("http://h:1/storage/v1/object/sign/b/p.zip?token=secret"),
            "http://h:1/storage/v1/object/sign/b/p.zip"
        );
    }
}
