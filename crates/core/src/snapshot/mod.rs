//! Snapshot archives: a deterministic zip whose first entry is the manifest.

mod extract;
mod format;
mod reader;
mod writer;

pub use extract::extract_snapshot;
pub use reader::{read_snapshot, Limits};
pub use writer::{SnapshotSummary, SnapshotWriter, WriteOptions};

use std::io;

use crate::manifest::ManifestError;
use crate::path::PathRule;

/// Why a snapshot could not be written, read or extracted. Every message names the entry at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Reading or writing failed.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    /// The manifest is invalid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The first entry is not the manifest.
    #[error("the first entry must be {expected:?}, found {found:?}", expected = crate::MANIFEST_PATH)]
    ManifestNotFirst {
        /// The first entry's name.
        found: String,
    },
    /// An entry name is not valid UTF-8.
    #[error("entry name is not valid UTF-8: {name:?}")]
    NonUtf8Name {
        /// The name, lossily decoded.
        name: String,
    },
    /// An entry name would land outside the target or breaks the path rules.
    #[error("unsafe entry {name:?}: {rule}: {detail}")]
    UnsafePath {
        /// The entry name.
        name: String,
        /// The path rule it breaks.
        rule: PathRule,
        /// What is wrong with it.
        detail: String,
    },
    /// A directory entry; snapshots hold files only.
    #[error("directory entry {name:?}: snapshots hold files only")]
    DirectoryEntry {
        /// The entry name.
        name: String,
    },
    /// A symbolic link; never extracted.
    #[error("symbolic link {name:?}: snapshots may not contain links")]
    Symlink {
        /// The entry name.
        name: String,
    },
    /// The same path appears twice.
    #[error("duplicate entry {path:?}")]
    Duplicate {
        /// The repeated path.
        path: String,
    },
    /// An entry the manifest does not list.
    #[error("entry {path:?} is not listed in the manifest")]
    NotInManifest {
        /// The unlisted path.
        path: String,
    },
    /// A manifest file the archive does not contain.
    #[error("manifest lists {path:?} but the archive has no such entry")]
    Missing {
        /// The missing path.
        path: String,
    },
    /// Files given to the writer out of manifest order.
    #[error("expected {expected:?} next (manifest order), got {actual:?}")]
    OutOfOrder {
        /// The path the manifest lists next.
        expected: String,
        /// The path given.
        actual: String,
    },
    /// A file's size differs from the manifest or its header.
    #[error("{path:?} is {actual} bytes but {expected} were declared")]
    SizeMismatch {
        /// The file.
        path: String,
        /// Declared size.
        expected: u64,
        /// Actual size (for a lying header: at least this much).
        actual: u64,
    },
    /// A file's SHA-256 differs from the manifest.
    #[error("{path:?} has content_hash {actual} but the manifest says {expected}")]
    HashMismatch {
        /// The file.
        path: String,
        /// Hash in the manifest.
        expected: String,
        /// Hash of the bytes found.
        actual: String,
    },
    /// A file's CRC-32 differs from its header.
    #[error("{path:?} fails its CRC-32 check: the archive is corrupt")]
    CrcMismatch {
        /// The file.
        path: String,
    },
    /// More entries than allowed.
    #[error("archive has {actual} files, more than the limit of {limit}")]
    TooManyEntries {
        /// The limit.
        limit: usize,
        /// Entries found or declared.
        actual: usize,
    },
    /// More bytes than allowed.
    #[error("archive holds {actual} bytes, more than the limit of {limit}")]
    TooLarge {
        /// The limit.
        limit: u64,
        /// Bytes found or declared.
        actual: u64,
    },
    /// An entry expands far more than real source files do (a zip bomb).
    #[error("{path:?} expands {ratio}x, more than the limit of {limit}x")]
    CompressionRatio {
        /// The entry.
        path: String,
        /// The ratio limit.
        limit: u64,
        /// Its ratio.
        ratio: u64,
    },
    /// A zip feature the snapshot format does not use.
    #[error("{name:?} uses {feature}, which snapshots never use")]
    Unsupported {
        /// The entry (or "archive").
        name: String,
        /// The feature.
        feature: &'static str,
    },
    /// The central directory disagrees with the entries read.
    #[error("central directory does not match the entries: {0}")]
    CentralMismatch(String),
    /// The bytes are not a zip of the expected shape.
    #[error("malformed archive: {0}")]
    Malformed(String),
}
