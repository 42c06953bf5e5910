//! The snapshot manifest: which files, at which versions, as of which change-log seq.

use serde::{Deserialize, Serialize};

use crate::hash::{content_hash, is_content_hash};
use crate::path::{validate_path, PathError};

/// Path of the manifest inside a snapshot archive; always the first entry.
pub const MANIFEST_PATH: &str = ".fs-sync/manifest.json";
/// The manifest `format` this crate writes and reads.
pub const MANIFEST_FORMAT: &str = "fs-sync-snapshot/1";

/// One file of a snapshot.
///
/// Fields are declared in alphabetical order: serde writes them in declaration order, which makes
/// the serialized form canonical (sorted keys, no whitespace).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestEntry {
    /// Lowercase hex SHA-256 of the file's bytes.
    pub content_hash: String,
    /// The file type stored with the file (`typescript`, `binary`, …).
    pub file_type: String,
    /// Project-relative path; valid under [`crate::validate_path`].
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// The file's version (its head in `project_files`).
    pub version: u64,
}

impl ManifestEntry {
    /// The entry for `content` at `path`: its hash, size and the file type inferred from the path.
    pub fn for_content(path: impl Into<String>, content: &[u8], version: u64) -> ManifestEntry {
        let path = path.into();
        ManifestEntry {
            content_hash: content_hash(content),
            file_type: crate::infer_file_type(&path).as_str().to_owned(),
            size: content.len() as u64,
            version,
            path,
        }
    }
}

/// What a snapshot holds: the project's live files as of one point of its change log.
///
/// The manifest has no time fields, so the same project state always gives the same canonical bytes
/// and the same [`Manifest::snapshot_id`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The change-log seq the file list was read at; a container applies events after it.
    pub as_of_seq: u64,
    /// Files sorted by path (byte order of UTF-8), unique.
    pub files: Vec<ManifestEntry>,
    /// Always [`MANIFEST_FORMAT`].
    pub format: String,
    /// The project's id (a UUID).
    pub project_id: String,
}

/// Why a manifest was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// A file path breaks the path rules.
    #[error(transparent)]
    Path(#[from] PathError),
    /// Two files share a path.
    #[error("manifest lists {path:?} twice")]
    DuplicatePath {
        /// The repeated path.
        path: String,
    },
    /// Files are not sorted by path.
    #[error("manifest files are not sorted by path: {before:?} comes before {after:?}")]
    Unsorted {
        /// The earlier entry.
        before: String,
        /// The later entry, which sorts lower.
        after: String,
    },
    /// A file's path is also a folder of another file (`src` and `src/a.ts`): no filesystem can hold both.
    #[error("manifest lists {file:?} as a file and as a folder of {inside:?}")]
    PathConflict {
        /// The path listed as a file.
        file: String,
        /// A file inside it.
        inside: String,
    },
    /// A content hash is not 64 lowercase hex digits.
    #[error("manifest entry {path:?} has malformed content_hash {hash:?}")]
    BadHash {
        /// The entry's path.
        path: String,
        /// The malformed value.
        hash: String,
    },
    /// The manifest names a format this crate does not read.
    #[error("unsupported manifest format {0:?}, expected {MANIFEST_FORMAT:?}")]
    Format(String),
    /// The JSON does not parse as a manifest.
    #[error("manifest is not valid JSON for {MANIFEST_FORMAT}: {0}")]
    Json(#[from] serde_json::Error),
}

impl Manifest {
    /// Builds a manifest from entries in any order; sorts them and checks every rule.
    pub fn new(
        project_id: impl Into<String>,
        as_of_seq: u64,
        mut files: Vec<ManifestEntry>,
    ) -> Result<Self, ManifestError> {
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let manifest = Manifest {
            as_of_seq,
            files,
            format: MANIFEST_FORMAT.to_owned(),
            project_id: project_id.into(),
        };
        manifest.validate()?;
        Ok(manifest)
    }

    /// Parses and validates a manifest.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ManifestError> {
        let manifest: Manifest = serde_json::from_slice(bytes)?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// Checks the format, every path and hash, that paths are sorted and unique, and that no file
    /// is also a folder of another.
    pub fn validate(&self) -> Result<(), ManifestError> {
        if self.format != MANIFEST_FORMAT {
            return Err(ManifestError::Format(self.format.clone()));
        }
        for (i, entry) in self.files.iter().enumerate() {
            validate_path(&entry.path)?;
            if !is_content_hash(&entry.content_hash) {
                return Err(ManifestError::BadHash {
                    path: entry.path.clone(),
                    hash: entry.content_hash.clone(),
                });
            }
            if let Some(prev) = i.checked_sub(1).map(|j| &self.files[j]) {
                match prev.path.cmp(&entry.path) {
                    std::cmp::Ordering::Less => {}
                    std::cmp::Ordering::Equal => {
                        return Err(ManifestError::DuplicatePath {
                            path: entry.path.clone(),
                        })
                    }
                    std::cmp::Ordering::Greater => {
                        return Err(ManifestError::Unsorted {
                            before: prev.path.clone(),
                            after: entry.path.clone(),
                        })
                    }
                }
            }
        }
        // Sorting does not put "a" next to "a/b" ("a-b" sorts between), so look up every folder.
        let files: std::collections::HashSet<&str> =
            self.files.iter().map(|f| f.path.as_str()).collect();
        for entry in &self.files {
            for (i, _) in entry.path.match_indices('/') {
                let folder = &entry.path[..i];
                if files.contains(folder) {
                    return Err(ManifestError::PathConflict {
                        file: folder.to_owned(),
                        inside: entry.path.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// The canonical JSON form: sorted keys, no whitespace, files sorted by path.
    pub fn to_canonical_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a manifest always serializes")
    }

    /// SHA-256 (lowercase hex) of the canonical JSON; names the snapshot in Storage.
    pub fn snapshot_id(&self) -> String {
        content_hash(&self.to_canonical_json())
    }

    /// Total bytes of all files.
    pub fn total_size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// The entry for `path`, if listed.
    pub fn entry(&self, path: &str) -> Option<&ManifestEntry> {
        self.files
            .binary_search_by(|e| e.path.as_str().cmp(path))
            .ok()
            .map(|i| &self.files[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn entry(path: &str, content: &str) -> ManifestEntry {
        ManifestEntry::for_content(path, content.as_bytes(), 1)
    }

    #[test]
    fn canonical_json_has_sorted_keys_and_no_whitespace() {
        let m = Manifest::new("p1", 7, vec![entry("b.ts", "b"), entry("a.md", "a")]).unwrap();
        let json = String::from_utf8(m.to_canonical_json()).unwrap();
        assert!(!json.contains(' ') && !json.contains('\n'));
        // serde_json's Value uses a BTreeMap, so re-serializing it sorts keys; equal text proves ours were sorted.
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(serde_json::to_string(&value).unwrap(), json);
        assert!(json.find("a.md").unwrap() < json.find("b.ts").unwrap());
    }

    #[test]
    fn snapshot_id_depends_on_state_not_input_order() {
        let a = Manifest::new("p", 3, vec![entry("x", "1"), entry("y", "2")]).unwrap();
        let b = Manifest::new("p", 3, vec![entry("y", "2"), entry("x", "1")]).unwrap();
        assert_eq!(a.snapshot_id(), b.snapshot_id());
        let c = Manifest::new("p", 4, vec![entry("x", "1"), entry("y", "2")]).unwrap();
        assert_ne!(a.snapshot_id(), c.snapshot_id());
        let d = Manifest::new("p", 3, vec![entry("x", "1"), entry("y", "3")]).unwrap();
        assert_ne!(a.snapshot_id(), d.snapshot_id());
    }

    #[test]
    fn refuses_bad_manifests() {
        assert!(matches!(
            Manifest::new("p", 1, vec![entry("a", "1"), entry("a", "2")]),
            Err(ManifestError::DuplicatePath { .. })
        ));
        assert!(matches!(
            Manifest::new("p", 1, vec![entry("../a", "1")]),
            Err(ManifestError::Path(_))
        ));
        let mut bad = entry("a", "1");
        bad.content_hash = "nope".into();
        assert!(matches!(
            Manifest::new("p", 1, vec![bad]),
            Err(ManifestError::BadHash { .. })
        ));
        let m = Manifest::new("p", 1, vec![entry("a", "1"), entry("b", "2")]).unwrap();
        let json = String::from_utf8(m.to_canonical_json())
            .unwrap()
            .replace(MANIFEST_FORMAT, "other/9");
        assert!(matches!(
            Manifest::from_json(json.as_bytes()),
            Err(ManifestError::Format(_))
        ));
        assert!(matches!(
            Manifest::new("p", 1, vec![entry("a", "1"), entry("a-b", "2"), entry("a/b/c", "3")]),
            Err(ManifestError::PathConflict { ref file, ref inside }) if file == "a" && inside == "a/b/c"
        ));
        let mut unsorted = m.clone();
        unsorted.files.reverse();
        assert!(matches!(
            Manifest::from_json(&unsorted.to_canonical_json()),
            Err(ManifestError::Unsorted { .. })
        ));
    }

    #[test]
    fn round_trips_and_finds_entries() {
        let m = Manifest::new("p", 9, vec![entry("src/a.ts", "x"), entry("é.md", "y")]).unwrap();
        let back = Manifest::from_json(&m.to_canonical_json()).unwrap();
        assert_eq!(back, m);
        assert_eq!(m.entry("é.md").unwrap().size, 1);
        assert!(m.entry("nope").is_none());
        assert_eq!(m.total_size(), 2);
    }
}
