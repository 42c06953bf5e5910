//! The SQL that makes a database look like a Supabase project with fs-sync installed.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::{Cluster, Error};

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/pg sits two levels below the root")
        .to_path_buf()
}

/// The local stand-in for what Supabase provides (roles, auth, storage, realtime), in order.
/// Never applied to a real Supabase project.
pub fn base_files() -> Result<Vec<PathBuf>, Error> {
    sql_files(&repo_root().join("supabase/local-base"))
}

/// fs-sync's migrations, in the order they apply.
pub fn migration_files() -> Result<Vec<PathBuf>, Error> {
    sql_files(&repo_root().join("migrations"))
}

/// The down scripts, in the order they apply (reverse of the migrations).
pub fn down_files() -> Result<Vec<PathBuf>, Error> {
    let ups = migration_files()?;
    let dir = repo_root().join("migrations/down");
    let mut downs = Vec::with_capacity(ups.len());
    for up in ups.iter().rev() {
        let down = dir.join(up.file_name().expect("a file"));
        if !down.is_file() {
            return Err(Error::Config(format!(
                "migration {} has no down script at {}",
                up.display(),
                down.display()
            )));
        }
        downs.push(down);
    }
    Ok(downs)
}

fn sql_files(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::Config(format!("cannot read {}: {e}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    Ok(files)
}

/// A digest of the base and migrations, naming the template database built from them.
pub fn schema_digest() -> Result<String, Error> {
    let mut h = Sha256::new();
    for f in base_files()?.iter().chain(migration_files()?.iter()) {
        h.update(f.file_name().expect("a file").as_encoded_bytes());
        h.update(std::fs::read(f)?);
    }
    Ok(hex::encode(h.finalize())[..16].to_owned())
}

/// Makes `database` (empty, on `cluster`) look like a Supabase project with fs-sync installed: the
/// local base applied by the superuser, as Supabase's images apply their own schemas, then the
/// migrations logged in as `postgres`, as `supabase db push` applies them.
pub async fn install(cluster: &Cluster, database: &str) -> Result<(), Error> {
    apply(
        &crate::connect(&cluster.config(database)).await?,
        &base_files()?,
    )
    .await?;
    apply(
        &crate::connect(&cluster.postgres_config(database)).await?,
        &migration_files()?,
    )
    .await
}

/// Runs each file as one batch, naming the file that failed.
pub async fn apply(client: &tokio_postgres::Client, files: &[PathBuf]) -> Result<(), Error> {
    for file in files {
        let sql = std::fs::read_to_string(file)?;
        client.batch_execute(&sql).await.map_err(|e| Error::Sql {
            file: file.display().to_string(),
            message: db_message(&e),
        })?;
    }
    Ok(())
}

/// The server's own message for a database error (code, message, detail), else the error text.
pub fn db_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!(
            "{} {}{}",
            db.code().code(),
            db.message(),
            db.detail().map(|d| format!(" ({d})")).unwrap_or_default()
        ),
        None => e.to_string(),
    }
}
