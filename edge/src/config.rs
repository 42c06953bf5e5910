//! The worker's settings: `[vars]` from wrangler.toml and the two secrets.

use worker::Env;

use crate::error::AppError;

/// Snapshot bucket (migrations/…_fsync-storage.sql), and its `file_size_limit` in bytes: the
/// most a stored archive may hold (a test keeps these, wrangler.toml and the migration equal).
pub(crate) const DEFAULT_BUCKET: &str = "project-snapshots";
pub(crate) const DEFAULT_MAX_SNAPSHOT_BYTES: u64 = 52_428_800;
/// Signed snapshot URLs live 10 minutes: the container downloads right after it starts.
pub(crate) const DEFAULT_SNAPSHOT_URL_TTL: i64 = 600;
/// Container tokens live 15 minutes (docs/contracts.md) and are refreshed through /sessions/refresh.
pub(crate) const DEFAULT_TOKEN_TTL: i64 = 900;
/// A session lives at most 12 hours (`SESSION_MAX_AGE`): no container token outlives it.
pub(crate) const DEFAULT_SESSION_MAX_AGE: i64 = 43_200;

/// Everything a handler needs from the environment.
#[derive(Clone)]
pub(crate) struct Config {
    /// `https://<ref>.supabase.co`, no trailing slash.
    pub(crate) supabase_url: String,
    /// Handed to containers (public by design).
    pub(crate) anon_key: String,
    /// Secret: the worker's own credential for PostgREST and Storage. Never logged or returned.
    pub(crate) service_key: String,
    /// Secret: verifies callers and signs container tokens. Never logged or returned.
    pub(crate) jwt_secret: String,
    pub(crate) bucket: String,
    pub(crate) max_snapshot_bytes: u64,
    pub(crate) snapshot_url_ttl: i64,
    pub(crate) token_ttl: i64,
    /// The longest a session may live, seconds; `POST /sessions` may ask for less (`maxAgeSeconds`).
    pub(crate) session_max_age: i64,
    /// The URL containers call back (`/sessions/refresh`); defaults to the request's origin.
    pub(crate) edge_url: Option<String>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("supabase_url", &self.supabase_url)
            .field("bucket", &self.bucket)
            .finish_non_exhaustive()
    }
}

fn text(env: &Env, name: &str) -> Option<String> {
    // Secrets and plain-text vars are both string bindings: `var` reads either.
    env.var(name)
        .ok()
        .map(|v| v.to_string().trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn required(env: &Env, name: &str) -> Result<String, AppError> {
    text(env, name).ok_or_else(|| {
        AppError::Internal(format!(
            "worker misconfigured: {name} is not set (see edge/README.md)"
        ))
    })
}

fn number<T: std::str::FromStr>(env: &Env, name: &str, default: T) -> Result<T, AppError> {
    match text(env, name) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| {
            AppError::Internal(format!(
                "worker misconfigured: {name}={v:?} is not a number"
            ))
        }),
    }
}

fn positive(name: &str, value: u64) -> Result<u64, AppError> {
    if value == 0 {
        return Err(AppError::Internal(format!(
            "worker misconfigured: {name} must be a positive number of bytes"
        )));
    }
    Ok(value)
}

/// A positive number of seconds, at most 30 days (what the database accepts as a session's age).
fn positive_secs(name: &str, value: i64) -> Result<i64, AppError> {
    if !(1..=2_592_000).contains(&value) {
        return Err(AppError::Internal(format!(
            "worker misconfigured: {name} must be 1 to 2592000 seconds, got {value}"
        )));
    }
    Ok(value)
}

impl Config {
    /// Reads the settings; a missing required one is a 500 naming it (never its value).
    pub(crate) fn from_env(env: &Env) -> Result<Config, AppError> {
        Ok(Config {
            supabase_url: required(env, "SUPABASE_URL")?
                .trim_end_matches('/')
                .to_owned(),
            anon_key: required(env, "SUPABASE_ANON_KEY")?,
            service_key: required(env, "SUPABASE_SERVICE_ROLE_KEY")?,
            jwt_secret: required(env, "SUPABASE_JWT_SECRET")?,
            bucket: text(env, "SNAPSHOT_BUCKET").unwrap_or_else(|| DEFAULT_BUCKET.to_owned()),
            max_snapshot_bytes: positive(
                "SNAPSHOT_MAX_BYTES",
                number(env, "SNAPSHOT_MAX_BYTES", DEFAULT_MAX_SNAPSHOT_BYTES)?,
            )?,
            snapshot_url_ttl: number(env, "SNAPSHOT_URL_TTL", DEFAULT_SNAPSHOT_URL_TTL)?,
            token_ttl: number(env, "CONTAINER_TOKEN_TTL", DEFAULT_TOKEN_TTL)?,
            session_max_age: positive_secs(
                "SESSION_MAX_AGE",
                number(env, "SESSION_MAX_AGE", DEFAULT_SESSION_MAX_AGE)?,
            )?,
            edge_url: text(env, "EDGE_URL").map(|u| u.trim_end_matches('/').to_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worker's limit is the bucket's: the migration that creates the bucket, wrangler.toml's
    /// `[vars]` and the default all say the same.
    #[test]
    fn the_snapshot_limit_is_the_buckets_file_size_limit() {
        let migration = include_str!("../../migrations/20251126090900_fsync-storage.sql");
        // ('project-snapshots', 'project-snapshots', false, 52428800, array['application/zip']),
        let bucket: Vec<&str> = migration
            .lines()
            .find_map(|l| l.trim().strip_prefix(&format!("('{DEFAULT_BUCKET}',")))
            .expect("the migration creates the snapshot bucket")
            .split(',')
            .map(str::trim)
            .collect();
        assert_eq!(bucket[2].parse::<u64>(), Ok(DEFAULT_MAX_SNAPSHOT_BYTES));

        let wrangler = include_str!("../wrangler.toml");
        let var = |name: &str| {
            wrangler
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name} = ")))
                .map(|v| v.trim().trim_matches('"').to_owned())
                .unwrap_or_else(|| panic!("wrangler.toml sets {name}"))
        };
        assert_eq!(var("SNAPSHOT_BUCKET"), DEFAULT_BUCKET);
        assert_eq!(
            var("SNAPSHOT_MAX_BYTES").parse::<u64>(),
            Ok(DEFAULT_MAX_SNAPSHOT_BYTES)
        );
    }

    #[test]
    fn a_zero_limit_is_refused_by_name() {
        let e = positive("SNAPSHOT_MAX_BYTES", 0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "worker misconfigured: SNAPSHOT_MAX_BYTES must be a positive number of bytes"
        );
        assert_eq!(positive("SNAPSHOT_MAX_BYTES", 1).unwrap(), 1);
    }

    /// wrangler.toml's SESSION_MAX_AGE is the default (12 h), and bounds are checked by name.
    #[test]
    fn the_session_max_age_is_12_hours_and_bounded() {
        let wrangler = include_str!("../wrangler.toml");
        let value = wrangler
            .lines()
            .find_map(|l| l.strip_prefix("SESSION_MAX_AGE = "))
            .map(|v| v.trim().trim_matches('"').to_owned())
            .expect("wrangler.toml sets SESSION_MAX_AGE");
        assert_eq!(value.parse::<i64>(), Ok(DEFAULT_SESSION_MAX_AGE));
        assert_eq!(DEFAULT_SESSION_MAX_AGE, 12 * 3600);
        assert_eq!(positive_secs("SESSION_MAX_AGE", 60).unwrap(), 60);
        for bad in [0, -1, 2_592_001] {
            let e = positive_secs("SESSION_MAX_AGE", bad).unwrap_err();
            assert!(e.to_string().contains("SESSION_MAX_AGE"), "{e}");
        }
    }
}
