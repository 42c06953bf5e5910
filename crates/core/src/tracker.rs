//! Per-path heads a client or container knows, for optimistic concurrency and no-op detection.

use std::collections::BTreeMap;

use crate::event::{Change, Event, EventError};

/// The latest version of a path that this tracker knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// The version (a tombstone's, when deleted).
    pub version: u64,
    /// The content's hash; `None` when the head is a tombstone.
    pub content_hash: Option<String>,
}

impl Head {
    /// True when the head is a deletion.
    pub fn is_deleted(&self) -> bool {
        self.content_hash.is_none()
    }
}

/// path → (version, hash) heads.
///
/// Versions only move forward: an event or save result older than what is known (a late echo of
/// the client's own save, a replay) changes nothing.
///
/// ```
/// use fs_sync_core::VersionTracker;
///
/// let mut heads = VersionTracker::new();
/// assert_eq!(heads.expected_version("a.ts"), 0); // must not exist yet
/// heads.record("a.ts", 1, Some("h1"));
/// assert_eq!(heads.expected_version("a.ts"), 1);
/// assert!(heads.is_noop("a.ts", "h1"));
/// assert!(!heads.record("a.ts", 1, Some("h1"))); // an echo moves nothing
/// ```
#[derive(Clone, Debug, Default)]
pub struct VersionTracker {
    heads: BTreeMap<String, Head>,
}

impl VersionTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// The known head of `path`, tombstones included.
    pub fn head(&self, path: &str) -> Option<&Head> {
        self.heads.get(path)
    }

    /// The `expected_version` to send with the next save of `path`: the latest known version,
    /// tombstone included, or 0 for a path never seen.
    pub fn expected_version(&self, path: &str) -> u64 {
        self.heads.get(path).map_or(0, |h| h.version)
    }

    /// True when saving content with `content_hash` would change nothing.
    pub fn is_noop(&self, path: &str, content_hash: &str) -> bool {
        self.heads
            .get(path)
            .is_some_and(|h| h.content_hash.as_deref() == Some(content_hash))
    }

    /// Records a head (`content_hash` `None` for a tombstone). Returns false, changing nothing,
    /// when `version` is not newer than the known head.
    pub fn record(&mut self, path: &str, version: u64, content_hash: Option<&str>) -> bool {
        if let Some(h) = self.heads.get(path) {
            if h.version >= version {
                return false;
            }
        }
        self.heads.insert(
            path.to_owned(),
            Head {
                version,
                content_hash: content_hash.map(str::to_owned),
            },
        );
        true
    }

    /// Applies an event's changes; returns the paths whose head moved.
    pub fn apply_event(&mut self, event: &Event) -> Result<Vec<String>, EventError> {
        let mut changed = Vec::new();
        for change in event.changes()? {
            match change {
                Change::Write {
                    path,
                    version,
                    content_hash,
                    ..
                } => {
                    if self.record(&path, version, Some(&content_hash)) {
                        changed.push(path);
                    }
                }
                Change::Delete { path, version } => {
                    if self.record(&path, version, None) {
                        changed.push(path);
                    }
                }
                Change::Rename {
                    from,
                    from_version,
                    to,
                    version,
                    content_hash,
                } => {
                    // Without the tombstone's version, keep the old one: a save to `from` then
                    // conflicts and reloads rather than guessing.
                    let tomb = from_version.unwrap_or_else(|| self.expected_version(&from));
                    let moved_from = match self.heads.get_mut(&from) {
                        Some(h) if h.version <= tomb && !h.is_deleted() => {
                            h.version = tomb;
                            h.content_hash = None;
                            true
                        }
                        Some(_) => false,
                        None => self.record(&from, tomb, None),
                    };
                    if moved_from {
                        changed.push(from);
                    }
                    if self.record(&to, version, Some(&content_hash)) {
                        changed.push(to);
                    }
                }
            }
        }
        Ok(changed)
    }

    /// Live (not deleted) paths with their heads, sorted by path.
    pub fn live(&self) -> impl Iterator<Item = (&str, &Head)> {
        self.heads
            .iter()
            .filter(|(_, h)| !h.is_deleted())
            .map(|(p, h)| (p.as_str(), h))
    }

    /// Every known path, tombstones included.
    pub fn len(&self) -> usize {
        self.heads.len()
    }

    /// True when no path is known.
    pub fn is_empty(&self) -> bool {
        self.heads.is_empty()
    }

    /// Forgets everything (before a full reload).
    pub fn clear(&mut self) {
        self.heads.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{BulkFile, EventKind};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn event(seq: u64, kind: EventKind) -> Event {
        Event {
            v: 1,
            seq,
            kind,
            project_id: "p".into(),
            file_path: None,
            from_path: None,
            from_version: None,
            version: None,
            content_hash: None,
            size: None,
            file_type: None,
            content: None,
            content_omitted: false,
            files: None,
            timestamp: None,
            actor: None,
        }
    }

    fn hash(s: &str) -> String {
        crate::content_hash(s.as_bytes())
    }

    #[test]
    fn versions_never_move_backwards() {
        let mut t = VersionTracker::new();
        let mut update = event(1, EventKind::FileUpdate);
        update.file_path = Some("a".into());
        update.version = Some(3);
        update.content_hash = Some(hash("three"));
        assert_eq!(t.apply_event(&update).unwrap(), vec!["a".to_string()]);
        // The client's own save of version 2 echoes late: nothing moves.
        update.version = Some(2);
        update.content_hash = Some(hash("two"));
        assert!(t.apply_event(&update).unwrap().is_empty());
        assert_eq!(t.head("a").unwrap().content_hash, Some(hash("three")));
        assert!(!t.record("a", 3, Some(&hash("other"))));
        assert!(t.is_noop("a", &hash("three")));
    }

    #[test]
    fn deletes_renames_and_bulk() {
        let mut t = VersionTracker::new();
        t.record("old.ts", 2, Some(&hash("x")));
        let mut rename = event(5, EventKind::FileRename);
        rename.from_path = Some("old.ts".into());
        rename.from_version = Some(3);
        rename.file_path = Some("new.ts".into());
        rename.version = Some(1);
        rename.content_hash = Some(hash("x"));
        assert_eq!(t.apply_event(&rename).unwrap(), vec!["old.ts", "new.ts"]);
        assert!(t.head("old.ts").unwrap().is_deleted());
        assert_eq!(t.expected_version("old.ts"), 3);
        assert!(
            !t.is_noop("old.ts", &hash("x")),
            "a tombstone is never a no-op"
        );

        let mut bulk = event(6, EventKind::BulkApply);
        bulk.files = Some(vec![
            BulkFile {
                file_path: "new.ts".into(),
                version: 2,
                content_hash: None,
                deleted: true,
            },
            BulkFile {
                file_path: "b.ts".into(),
                version: 1,
                content_hash: Some(hash("b")),
                deleted: false,
            },
        ]);
        assert_eq!(t.apply_event(&bulk).unwrap(), vec!["new.ts", "b.ts"]);
        let live: Vec<_> = t.live().map(|(p, _)| p).collect();
        assert_eq!(live, ["b.ts"]);
        assert_eq!(t.len(), 3);
    }
}
