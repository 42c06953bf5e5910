//! fs-sync-pg: real PostgreSQL for fs-sync's tests, local stack and benchmarks.
//!
//! [`Cluster::start`] runs an ephemeral cluster from the system's `initdb`/`postgres` (as the
//! `postgres` OS user when the process is root), or [`Cluster::from_url`] uses an existing server
//! (`DATABASE_URL`). As on hosted Supabase, the cluster's superuser is `supabase_admin`, which
//! applies the local Supabase base (`supabase/local-base`), and `migrations/` run as `postgres`,
//! which is not a superuser. [`TestDb::new`] hands each test its own database, cloned from a
//! template that has both applied, so a new database costs one `CREATE DATABASE … TEMPLATE`.
//! [`TestDb::admin`] is a `postgres` connection; [`TestDb::as_claims`] runs statements the way
//! PostgREST does: in one transaction, with the role and `request.jwt.claims` set locally.
//!
//! ```no_run
//! # async fn demo() -> Result<(), fs_sync_pg::Error> {
//! let db = fs_sync_pg::TestDb::new().await?;
//! let tx_result = db
//!     .as_claims(serde_json::json!({"role": "anon"}), "select auth.role()")
//!     .await?;
//! assert_eq!(tx_result[0].get::<_, Option<String>>(0).as_deref(), Some("anon"));
//! # Ok(()) }
//! ```

mod cluster;
mod schema;
mod testdb;

pub use cluster::{
    command, run_as, server_bindir, server_settings, sweep_orphaned_temp_dirs, Cluster, SUPERUSER,
};
pub use schema::{
    apply, base_files, db_message, down_files, install, migration_files, repo_root, schema_digest,
};
pub use testdb::{connect, set_claims, shared_cluster, TestDb};

/// What can go wrong starting a cluster or preparing a database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server could not be found or started.
    #[error("postgres: {0}")]
    Server(String),
    /// A configuration or layout problem.
    #[error("{0}")]
    Config(String),
    /// A SQL file failed to apply.
    #[error("{file}: {message}")]
    Sql {
        /// The file.
        file: String,
        /// The server's message.
        message: String,
    },
    /// A database call failed.
    #[error("database: {}", schema::db_message(.0))]
    Db(#[from] tokio_postgres::Error),
    /// A file could not be read.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}
