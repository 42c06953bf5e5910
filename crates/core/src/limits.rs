//! Project caps shared by the database, the edge and the container agent.
//!
//! What the database accepts, every container must be able to hold: the database refuses a
//! write that would take a project past these caps (settings `limits.max_project_bytes` and
//! `limits.max_project_files`, whose defaults a test pins to these constants), and a snapshot
//! reader's default [`crate::Limits`] accepts any project within them.

/// Most content bytes a project's current files may hold in total (binaries by their size).
/// The database setting `limits.max_project_bytes` defaults to this value
/// (`project_caps_default_to_core_constants` in crates/pg/tests/contracts.rs pins it).
pub const MAX_PROJECT_BYTES: u64 = 1 << 30;
/// Most current files a project may hold: what one snapshot archive holds beside its manifest (a
/// zip without zip64 has at most 65,535 entries). The database setting
/// `limits.max_project_files` defaults to this value (pinned by the same test).
pub const MAX_PROJECT_FILES: usize = 65_534;
