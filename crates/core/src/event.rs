//! The realtime event payload every write RPC sends on `project:<id>`, and what it changes.

use serde::{Deserialize, Serialize};

use crate::hash::content_hash;
use crate::path::{validate_path, PathError};

/// The only payload version this crate understands.
pub const EVENT_VERSION: u32 = 1;
/// Content larger than this is left out of events (`content_omitted`) and fetched by path.
pub const MAX_INLINE_CONTENT: u64 = 64 * 1024;

/// What kind of write an event reports; also the realtime broadcast's event name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    /// A file was created or changed.
    #[serde(rename = "file:update")]
    FileUpdate,
    /// A file was deleted (a tombstone version was written).
    #[serde(rename = "file:delete")]
    FileDelete,
    /// A file moved from `from_path` to `file_path`.
    #[serde(rename = "file:rename")]
    FileRename,
    /// Many files changed in one transaction; contents are fetched by path.
    #[serde(rename = "bulk:apply")]
    BulkApply,
}

impl EventKind {
    /// The wire name, e.g. `file:update`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::FileUpdate => "file:update",
            EventKind::FileDelete => "file:delete",
            EventKind::FileRename => "file:rename",
            EventKind::BulkApply => "bulk:apply",
        }
    }
}

/// One file of a `bulk:apply` event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkFile {
    /// The file.
    pub file_path: String,
    /// Its new version (a tombstone's when `deleted`).
    pub version: u64,
    /// Its new hash; absent for deletions.
    #[serde(default)]
    pub content_hash: Option<String>,
    /// True when the bulk deleted the file.
    #[serde(default)]
    pub deleted: bool,
}

/// The event payload of docs/contracts.md, as written by the SQL write functions.
///
/// Unknown fields are ignored so newer servers can add fields without breaking older consumers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Payload version, always [`EVENT_VERSION`].
    pub v: u32,
    /// Position in the project's gapless change log.
    pub seq: u64,
    /// What happened.
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// The project.
    pub project_id: String,
    /// The file written, deleted, or renamed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_path: Option<String>,
    /// Where a renamed file came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_path: Option<String>,
    /// The tombstone version written at `from_path` by a rename (an fs-sync extension of the payload).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_version: Option<u64>,
    /// The file's new version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// The new content's hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_hash: Option<String>,
    /// The new content's size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The file's type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_type: Option<String>,
    /// The new content, when at most [`MAX_INLINE_CONTENT`] bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// True when the content was too large to include.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub content_omitted: bool,
    /// The files of a `bulk:apply`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<BulkFile>>,
    /// When the write committed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// The user who wrote, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// Why an event payload was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// Not JSON of the payload's shape.
    #[error("event payload is not valid: {0}")]
    Json(#[from] serde_json::Error),
    /// A payload version this crate does not know.
    #[error("event payload version {0} is not supported (expected {EVENT_VERSION})")]
    Version(u32),
    /// A field the event kind requires is absent.
    #[error("{kind} event seq {seq} lacks {field}")]
    MissingField {
        /// The event kind.
        kind: &'static str,
        /// The event's seq.
        seq: u64,
        /// The missing field.
        field: &'static str,
    },
    /// A path in the event breaks the path rules.
    #[error("event seq {seq}: {source}")]
    Path {
        /// The event's seq.
        seq: u64,
        /// The path error.
        source: PathError,
    },
    /// Inline content does not match the event's hash.
    #[error(
        "event seq {seq}: content of {} does not match content_hash",
        crate::path::Quoted(path)
    )]
    ContentMismatch {
        /// The event's seq.
        seq: u64,
        /// The file.
        path: String,
    },
}

/// One file-level effect of an event, in the order to apply them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Write `path` at `version`; `content` is `None` when it must be fetched
    /// (`get_project_files` by path and version).
    Write {
        /// The file.
        path: String,
        /// Its new version.
        version: u64,
        /// Hash the written bytes must have.
        content_hash: String,
        /// The content, when the event carried it (already checked against the hash).
        content: Option<String>,
    },
    /// Delete `path`; `version` is its tombstone's.
    Delete {
        /// The file.
        path: String,
        /// The tombstone version.
        version: u64,
    },
    /// Move `from` to `to`, which now has `version` and `content_hash`.
    Rename {
        /// Old path.
        from: String,
        /// The tombstone version written at `from`, when the server sent it.
        from_version: Option<u64>,
        /// New path.
        to: String,
        /// New path's version.
        version: u64,
        /// The moved content's hash.
        content_hash: String,
    },
}

impl Change {
    /// The path whose content this change sets or removes (the destination of a rename).
    pub fn path(&self) -> &str {
        match self {
            Change::Write { path, .. } | Change::Delete { path, .. } => path,
            Change::Rename { to, .. } => to,
        }
    }
}

impl Event {
    /// Parses and checks a payload.
    pub fn from_json(bytes: &[u8]) -> Result<Event, EventError> {
        let event: Event = serde_json::from_slice(bytes)?;
        event.changes()?;
        Ok(event)
    }

    /// True when applying this event needs contents fetched from the server.
    pub fn needs_fetch(&self) -> bool {
        self.kind == EventKind::BulkApply
            || (self.kind == EventKind::FileUpdate && self.content.is_none())
    }

    /// The file-level changes this event makes, checked for the fields its kind requires.
    pub fn changes(&self) -> Result<Vec<Change>, EventError> {
        if self.v != EVENT_VERSION {
            return Err(EventError::Version(self.v));
        }
        let kind = self.kind.as_str();
        let seq = self.seq;
        let missing = |field| EventError::MissingField { kind, seq, field };
        let path_ok = |p: &str| validate_path(p).map_err(|source| EventError::Path { seq, source });
        let change = match self.kind {
            EventKind::FileUpdate => {
                let path = self.file_path.clone().ok_or_else(|| missing("file_path"))?;
                path_ok(&path)?;
                let hash = self
                    .content_hash
                    .clone()
                    .ok_or_else(|| missing("content_hash"))?;
                if let Some(content) = &self.content {
                    if content_hash(content.as_bytes()) != hash {
                        return Err(EventError::ContentMismatch { seq, path });
                    }
                }
                Change::Write {
                    version: self.version.ok_or_else(|| missing("version"))?,
                    content_hash: hash,
                    content: self.content.clone(),
                    path,
                }
            }
            EventKind::FileDelete => {
                let path = self.file_path.clone().ok_or_else(|| missing("file_path"))?;
                path_ok(&path)?;
                Change::Delete {
                    version: self.version.ok_or_else(|| missing("version"))?,
                    path,
                }
            }
            EventKind::FileRename => {
                let to = self.file_path.clone().ok_or_else(|| missing("file_path"))?;
                let from = self.from_path.clone().ok_or_else(|| missing("from_path"))?;
                path_ok(&to)?;
                path_ok(&from)?;
                Change::Rename {
                    from,
                    from_version: self.from_version,
                    to,
                    version: self.version.ok_or_else(|| missing("version"))?,
                    content_hash: self
                        .content_hash
                        .clone()
                        .ok_or_else(|| missing("content_hash"))?,
                }
            }
            EventKind::BulkApply => {
                let files = self.files.as_ref().ok_or_else(|| missing("files"))?;
                let mut changes = Vec::with_capacity(files.len());
                for f in files {
                    path_ok(&f.file_path)?;
                    changes.push(if f.deleted {
                        Change::Delete {
                            path: f.file_path.clone(),
                            version: f.version,
                        }
                    } else {
                        Change::Write {
                            path: f.file_path.clone(),
                            version: f.version,
                            content_hash: f
                                .content_hash
                                .clone()
                                .ok_or_else(|| missing("files[].content_hash"))?,
                            content: None,
                        }
                    });
                }
                return Ok(changes);
            }
        };
        Ok(vec![change])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const PROJECT: &str = "5b0c6f2e-8a57-4d1e-9a55-2f6f3f0b9c11";

    #[test]
    fn parses_design_payloads() {
        let update = format!(
            r#"{{"v":1,"seq":42,"type":"file:update","project_id":"{PROJECT}","file_path":"src/App.tsx",
               "version":7,"content_hash":"{}","size":2,"file_type":"typescript","content":"hi",
               "timestamp":"2026-11-26T08:00:00Z","actor":null,"future_field":true}}"#,
            content_hash(b"hi")
        );
        let ev = Event::from_json(update.as_bytes()).unwrap();
        assert_eq!(ev.kind, EventKind::FileUpdate);
        assert!(!ev.needs_fetch());
        assert_eq!(
            ev.changes().unwrap(),
            vec![Change::Write {
                path: "src/App.tsx".into(),
                version: 7,
                content_hash: content_hash(b"hi"),
                content: Some("hi".into()),
            }]
        );

        let omitted = format!(
            r#"{{"v":1,"seq":43,"type":"file:update","project_id":"{PROJECT}","file_path":"big.json",
               "version":2,"content_hash":"{}","size":70000,"content_omitted":true}}"#,
            content_hash(b"x")
        );
        let ev = Event::from_json(omitted.as_bytes()).unwrap();
        assert!(ev.content_omitted && ev.needs_fetch());

        let bulk = format!(
            r#"{{"v":1,"seq":44,"type":"bulk:apply","project_id":"{PROJECT}","files":[
               {{"file_path":"a.ts","version":1,"content_hash":"{}","deleted":false}},
               {{"file_path":"b.ts","version":3,"deleted":true}}]}}"#,
            content_hash(b"a")
        );
        let ev = Event::from_json(bulk.as_bytes()).unwrap();
        let changes = ev.changes().unwrap();
        assert!(ev.needs_fetch());
        assert_eq!(changes.len(), 2);
        assert_eq!(
            changes[1],
            Change::Delete {
                path: "b.ts".into(),
                version: 3
            }
        );

        let rename = format!(
            r#"{{"v":1,"seq":45,"type":"file:rename","project_id":"{PROJECT}","file_path":"new.ts",
               "from_path":"old.ts","from_version":4,"version":1,"content_hash":"{}"}}"#,
            content_hash(b"a")
        );
        let ev = Event::from_json(rename.as_bytes()).unwrap();
        assert_eq!(ev.changes().unwrap()[0].path(), "new.ts");
    }

    #[test]
    fn refuses_broken_payloads() {
        let base = |body: &str| format!(r#"{{"v":1,"seq":1,"project_id":"{PROJECT}",{body}}}"#);
        let no_version = base(r#""type":"file:delete","file_path":"a""#);
        assert!(matches!(
            Event::from_json(no_version.as_bytes()),
            Err(EventError::MissingField {
                field: "version",
                ..
            })
        ));
        let bad_path = base(r#""type":"file:delete","file_path":"../etc/passwd","version":2"#);
        assert!(matches!(
            Event::from_json(bad_path.as_bytes()),
            Err(EventError::Path { .. })
        ));
        let lying = base(&format!(
            r#""type":"file:update","file_path":"a","version":2,"content":"evil","content_hash":"{}""#,
            content_hash(b"good")
        ));
        assert!(matches!(
            Event::from_json(lying.as_bytes()),
            Err(EventError::ContentMismatch { .. })
        ));
        let v2 =
            r#"{"v":2,"seq":1,"type":"file:delete","project_id":"p","file_path":"a","version":1}"#;
        assert!(matches!(
            Event::from_json(v2.as_bytes()),
            Err(EventError::Version(2))
        ));
        assert!(matches!(
            Event::from_json(br#"{"v":1,"seq":1,"type":"file:explode","project_id":"p"}"#),
            Err(EventError::Json(_))
        ));
    }

    #[test]
    fn serializes_without_absent_fields() {
        let ev = Event {
            v: 1,
            seq: 3,
            kind: EventKind::FileDelete,
            project_id: PROJECT.into(),
            file_path: Some("a".into()),
            from_path: None,
            from_version: None,
            version: Some(2),
            content_hash: None,
            size: None,
            file_type: None,
            content: None,
            content_omitted: false,
            files: None,
            timestamp: None,
            actor: None,
        };
        let json = serde_json::to_string(&ev).unwrap();
        assert_eq!(
            json,
            format!(
                r#"{{"v":1,"seq":3,"type":"file:delete","project_id":"{PROJECT}","file_path":"a","version":2}}"#
            )
        );
        assert_eq!(Event::from_json(json.as_bytes()).unwrap(), ev);
    }
}
