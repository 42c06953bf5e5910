//! From an event's changes to file operations: pure, so every rule is unit-tested without a
//! folder or a server.

use std::collections::HashMap;

use fs_sync_core::Change;

/// What an event does to one file, once planned.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Write these bytes (they came with the event or were fetched).
    Write {
        path: String,
        version: u64,
        hash: String,
        bytes: Vec<u8>,
    },
    /// The file already holds this content: record the head, touch nothing.
    Keep {
        path: String,
        version: u64,
        hash: String,
    },
    /// The content must be fetched first (`content_omitted`, `bulk:apply`, a rename whose source
    /// is not on disk).
    Fetch {
        path: String,
        version: u64,
        hash: String,
    },
    /// A binary Storage would not hand out: the file keeps its previous content for now.
    Stale {
        path: String,
        version: u64,
        hash: String,
        storage_path: String,
    },
    Delete {
        path: String,
    },
    /// A rename whose source on disk has the content: one move.
    Move {
        from: String,
        to: String,
        version: u64,
        hash: String,
    },
}

/// The paths whose content on disk the plan depends on.
pub(crate) fn paths_to_probe(changes: &[Change]) -> Vec<String> {
    let mut probe = Vec::new();
    for c in changes {
        match c {
            Change::Write { path, .. } => probe.push(path.clone()),
            Change::Rename { from, to, .. } => {
                probe.push(to.clone());
                probe.push(from.clone());
            }
            Change::Delete { .. } => {}
        }
    }
    probe
}

/// Plans `changes` given the content hashes on disk (`disk`, for the paths of
/// [`paths_to_probe`] that hold a regular file): skip what is already there, move instead of
/// fetching when a rename's source has the content, fetch what the event did not carry.
pub(crate) fn plan(changes: Vec<Change>, disk: &HashMap<String, String>) -> Vec<Step> {
    let on_disk = |p: &str, h: &str| disk.get(p).is_some_and(|d| d == h);
    let mut steps = Vec::with_capacity(changes.len());
    for c in changes {
        match c {
            Change::Write {
                path,
                version,
                content_hash: hash,
                content,
            } => steps.push(if on_disk(&path, &hash) {
                Step::Keep {
                    path,
                    version,
                    hash,
                }
            } else if let Some(content) = content {
                Step::Write {
                    path,
                    version,
                    hash,
                    bytes: content.into_bytes(),
                }
            } else {
                Step::Fetch {
                    path,
                    version,
                    hash,
                }
            }),
            Change::Delete { path, .. } => steps.push(Step::Delete { path }),
            Change::Rename {
                from,
                to,
                version,
                content_hash: hash,
                ..
            } => {
                if on_disk(&to, &hash) {
                    steps.push(Step::Keep {
                        path: to,
                        version,
                        hash,
                    });
                    steps.push(Step::Delete { path: from });
                } else if on_disk(&from, &hash) {
                    steps.push(Step::Move {
                        from,
                        to,
                        version,
                        hash,
                    });
                } else {
                    steps.push(Step::Fetch {
                        path: to,
                        version,
                        hash,
                    });
                    steps.push(Step::Delete { path: from });
                }
            }
        }
    }
    steps
}

/// The `(path, version, hash)` of every [`Step::Fetch`].
pub(crate) fn wanted(steps: &[Step]) -> Vec<(String, u64, String)> {
    steps
        .iter()
        .filter_map(|s| match s {
            Step::Fetch {
                path,
                version,
                hash,
            } => Some((path.clone(), *version, hash.clone())),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(c: &str) -> String {
        fs_sync_core::content_hash(c.as_bytes())
    }

    fn write(path: &str, content: Option<&str>, hash: &str) -> Change {
        Change::Write {
            path: path.into(),
            version: 2,
            content_hash: hash.into(),
            content: content.map(Into::into),
        }
    }

    #[test]
    fn writes_skip_what_is_there_and_fetch_what_is_missing() {
        let disk: HashMap<String, String> = [("same.ts".to_owned(), h("x"))].into();
        let steps = plan(
            vec![
                write("same.ts", Some("x"), &h("x")),
                write("new.ts", Some("y"), &h("y")),
                write("big.ts", None, &h("z")),
            ],
            &disk,
        );
        assert_eq!(
            steps,
            [
                Step::Keep {
                    path: "same.ts".into(),
                    version: 2,
                    hash: h("x")
                },
                Step::Write {
                    path: "new.ts".into(),
                    version: 2,
                    hash: h("y"),
                    bytes: b"y".to_vec()
                },
                Step::Fetch {
                    path: "big.ts".into(),
                    version: 2,
                    hash: h("z")
                },
            ]
        );
        assert_eq!(wanted(&steps), [("big.ts".to_owned(), 2, h("z"))]);
    }

    #[test]
    fn renames_move_keep_or_fetch() {
        let rename = |from: &str, to: &str| Change::Rename {
            from: from.into(),
            to: to.into(),
            from_version: Some(3),
            version: 1,
            content_hash: h("c"),
        };
        let changes = vec![rename("a", "b"), rename("c", "d"), rename("e", "f")];
        assert_eq!(paths_to_probe(&changes), ["b", "a", "d", "c", "f", "e"]);
        // a holds the content: move. d already holds it: keep d, delete c. Neither e nor f: fetch.
        let disk: HashMap<String, String> = [("a".to_owned(), h("c")), ("d".to_owned(), h("c"))]
            .into_iter()
            .collect();
        let steps = plan(changes, &disk);
        let kinds: Vec<&str> = steps
            .iter()
            .map(|s| match s {
                Step::Move { .. } => "move",
                Step::Keep { .. } => "keep",
                Step::Delete { .. } => "delete",
                Step::Fetch { .. } => "fetch",
                _ => "other",
            })
            .collect();
        assert_eq!(kinds, ["move", "keep", "delete", "fetch", "delete"]);
    }

    #[test]
    fn deletes_need_no_probe() {
        let changes = vec![Change::Delete {
            path: "gone".into(),
            version: 4,
        }];
        assert!(paths_to_probe(&changes).is_empty());
        assert_eq!(
            plan(changes, &HashMap::new()),
            [Step::Delete {
                path: "gone".into()
            }]
        );
    }
}
