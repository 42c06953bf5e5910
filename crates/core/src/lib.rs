//! fs-sync-core: the rules every fs-sync component shares.
//!
//! fs-sync keeps an app-builder project's files in PostgreSQL and gets them into preview
//! containers as a signed snapshot plus ordered realtime deltas. This crate holds what the
//! database functions, the edge worker, the browser package and the container agent must agree on,
//! with no I/O beyond [`std::io::Read`]/[`std::io::Write`] (and the filesystem for
//! [`extract_snapshot`]); it builds for native targets and `wasm32-unknown-unknown`.
//!
//! - [`content_hash`]: lowercase hex SHA-256, equal to SQL's `encode(sha256(...), 'hex')`.
//! - [`validate_path`] and [`infer_file_type`]: path rules and file types, mirrored in SQL.
//! - [`Manifest`], [`SnapshotWriter`], [`read_snapshot`], [`extract_snapshot`]: the deterministic
//!   snapshot zip and its defensive reader.
//! - [`Event`], [`Sequencer`], [`VersionTracker`]: the realtime payload, putting events in seq
//!   order, and per-path heads for optimistic concurrency.
//!
//! ```
//! use fs_sync_core::{content_hash, Event, Sequencer, Disposition, VersionTracker};
//!
//! let body = "export const x = 1;\n";
//! let payload = format!(
//!     r#"{{"v":1,"seq":1,"type":"file:update","project_id":"p","file_path":"src/x.ts",
//!         "version":1,"content_hash":"{}","content":{:?}}}"#,
//!     content_hash(body.as_bytes()), body);
//! let event = Event::from_json(payload.as_bytes())?;
//!
//! let mut order = Sequencer::new(0);
//! assert_eq!(order.offer(event.seq, event), Disposition::Apply);
//! let mut heads = VersionTracker::new();
//! while let Some(ev) = order.pop_ready() {
//!     heads.apply_event(&ev)?;
//! }
//! assert_eq!(heads.expected_version("src/x.ts"), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod cadence;
mod error_kind;
mod event;
mod filetype;
mod follower;
mod hash;
mod limits;
mod manifest;
mod path;
mod sequencer;
mod snapshot;
mod tracker;

pub use cadence::{CheckCadence, FIRST_CHECK_AFTER_ACTIVITY};
pub use error_kind::ErrorKind;
pub use event::{
    BulkFile, Change, Event, EventError, EventKind, EVENT_VERSION, MAX_INLINE_CONTENT,
};
pub use filetype::{extension, infer_file_type, is_precompressed, FileType};
pub use follower::{
    Action, Backoff, Failure, Follower, FollowerConfig, FollowerStats, Input, Sequenced,
};
pub use hash::{content_digest, content_hash, is_content_hash, ContentHasher};
pub use limits::{MAX_PROJECT_BYTES, MAX_PROJECT_FILES};
pub use manifest::{Manifest, ManifestEntry, ManifestError, MANIFEST_FORMAT, MANIFEST_PATH};
pub use path::{
    install_nfc, validate_path, PathError, PathRule, MAX_PATH_BYTES, MAX_SEGMENTS,
    MAX_SEGMENT_BYTES, RESERVED_DIR,
};
pub use sequencer::{classify, Disposition, Sequencer};
pub use snapshot::{
    displace, extract_snapshot, read_snapshot, remove_staging_leftovers, Extraction, FileStamp,
    Limits, SnapshotError, SnapshotSummary, SnapshotWriter, WriteOptions,
};
pub use tracker::{Head, VersionTracker};
