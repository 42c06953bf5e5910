//! The agent's configuration: docs/contracts.md's container env plus command-line flags (parsed by
//! clap; each flag can also be given as an `FS_SYNC_*` environment variable), and the refusal to
//! run next to a service credential.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use clap::parser::ValueSource;
use clap::{CommandFactory as _, FromArgMatches as _};

/// What `--help` adds after the flags: the container environment.
const CONTAINER_ENV: &str = "\
Environment (from fs-sync-edge's POST /sessions): PROJECT_ID, SESSION_ID, SNAPSHOT_URL,
SNAPSHOT_SHA256, SUPABASE_URL, SUPABASE_ANON_KEY, REALTIME_TOKEN, TOKEN_EXPIRES_AT, EDGE_URL.
It refuses to start when a service-role key or the JWT secret is in its environment.
Each flag can also be set by the environment variable shown with it; the flag wins.";

/// `fs-sync-hydrate`'s flags.
#[derive(clap::Parser)]
#[command(
    name = "fs-sync-hydrate",
    about = "Hydrates a preview container from a verified fs-sync snapshot, then applies the \
             project's realtime changes in order until stopped (or until the --exec command exits).",
    after_help = CONTAINER_ENV
)]
struct Flags {
    /// The project folder (created if missing; the container image's working folder). The
    /// agent needs no HOME, PATH or TMPDIR: its temporary files live under DIR/.fs-sync/ and its
    /// state beside DIR.
    #[arg(
        long,
        env = "FS_SYNC_TARGET",
        value_name = "DIR",
        default_value = "/app/project"
    )]
    target: PathBuf,
    /// Once hydrated, run `sh -c CMD` in DIR (e.g. "npm run dev"); SIGTERM and SIGINT are
    /// forwarded to it and the agent exits with its status.
    #[arg(long, env = "FS_SYNC_EXEC", value_name = "CMD")]
    exec: Option<String>,
    /// Serve GET /healthz and GET /metrics here ("off" disables).
    #[arg(
        long,
        env = "FS_SYNC_METRICS_ADDR",
        value_name = "ADDR",
        default_value = "127.0.0.1:9464"
    )]
    metrics_addr: String,
    /// Where to keep <project_id>.json [default: DIR/../.fs-sync-state]
    #[arg(long, env = "FS_SYNC_STATE_DIR", value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Idle interval: the position is confirmed with get_project_sync_state 0.5 s after
    /// activity, then ever more rarely until once per interval; failed files and refused binaries
    /// are retried on it.
    #[arg(
        long,
        env = "FS_SYNC_SYNC_INTERVAL",
        value_name = "SECS",
        default_value = "15"
    )]
    sync_interval: String,
    /// No download progress bar even on a terminal.
    #[arg(long, env = "FS_SYNC_NO_PROGRESS", value_parser = clap::builder::FalseyValueParser::new())]
    no_progress: bool,
    /// The most content a snapshot may declare; keep it equal to the database's
    /// limits.max_project_bytes.
    #[arg(long, env = "FS_SYNC_MAX_PROJECT_BYTES", value_name = "BYTES",
          default_value_t = fs_sync_core::MAX_PROJECT_BYTES)]
    max_project_bytes: u64,
    /// The most files a snapshot may declare; keep it equal to the database's
    /// limits.max_project_files.
    #[arg(long, env = "FS_SYNC_MAX_PROJECT_FILES", value_name = "N",
          default_value_t = fs_sync_core::MAX_PROJECT_FILES)]
    max_project_files: usize,
    /// /healthz says degraded (reason "realtime") once the realtime channel has not been joined
    /// for this many whole --sync-interval intervals in a row.
    #[arg(long, env = "FS_SYNC_HEALTH_REALTIME_INTERVALS", value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..))]
    health_realtime_intervals: u32,
    /// /healthz says degraded (reason "behind") when, at an interval, the server's seq is more
    /// than N events past the applied one (or ahead of it for two intervals without progress).
    #[arg(
        long,
        env = "FS_SYNC_HEALTH_MAX_BEHIND",
        value_name = "N",
        default_value_t = 1000
    )]
    health_max_behind: u64,
}

/// Environment variables that hold a service credential; their presence stops the agent.
const FORBIDDEN_VARS: &[&str] = &[
    "SUPABASE_SERVICE_ROLE_KEY",
    "SERVICE_ROLE_KEY",
    "SUPABASE_SERVICE_KEY",
    "SUPABASE_SECRET_KEY",
    "SUPABASE_JWT_SECRET",
    "JWT_SECRET",
    "PGRST_JWT_SECRET",
    "GOTRUE_JWT_SECRET",
];

/// Why the agent cannot start with this environment and these arguments.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A service credential is in the environment (docs/contracts.md invariant 7).
    #[error(
        "refusing to start: {name} {why}; a container must hold only its project-scoped read \
         token (REALTIME_TOKEN), never a service-role key or the JWT secret"
    )]
    SecretInEnv {
        /// The variable's name (never its value).
        name: String,
        /// What it looks like.
        why: &'static str,
    },
    /// A required variable is absent or empty.
    #[error("{0} is not set (it comes from fs-sync-edge's POST /sessions response env)")]
    Missing(&'static str),
    /// A variable or flag has a value that cannot be used.
    #[error("{name}: {reason}")]
    Invalid {
        /// The variable or flag.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// Bad command line: clap's message, with the usage line.
    #[error("{0}")]
    Usage(String),
    /// `--help` was given: the help text.
    #[error("{0}")]
    Help(String),
}

/// Everything the agent needs to run. Its `Debug` output hides the token and the signed URL.
#[derive(Clone)]
pub struct Config {
    /// PROJECT_ID.
    pub project_id: String,
    /// SESSION_ID.
    pub session_id: String,
    /// SNAPSHOT_URL (a signed Storage URL); `None` resumes from state only.
    pub snapshot_url: Option<String>,
    /// SNAPSHOT_SHA256, lowercase hex.
    pub snapshot_sha256: Option<String>,
    /// SUPABASE_URL, without a trailing slash.
    pub supabase_url: String,
    /// SUPABASE_ANON_KEY.
    pub anon_key: String,
    /// REALTIME_TOKEN: the container token, for RPCs and the realtime channel.
    pub token: String,
    /// TOKEN_EXPIRES_AT (RFC 3339 or seconds since the epoch), else the token's `exp`.
    pub token_expires_at: Option<SystemTime>,
    /// EDGE_URL, without a trailing slash; `None` disables token refresh.
    pub edge_url: Option<String>,
    /// The project folder.
    pub target: PathBuf,
    /// Where the state file lives.
    pub state_dir: PathBuf,
    /// `sh -c` command to run once hydrated.
    pub exec: Option<String>,
    /// Address for /healthz and /metrics; `None` disables the server.
    pub metrics_addr: Option<SocketAddr>,
    /// How often to confirm the position with get_project_sync_state.
    pub sync_interval: Duration,
    /// How long to wait for the first realtime join before downloading anyway.
    pub join_timeout: Duration,
    /// Phoenix heartbeat interval (realtime-js uses 25 s).
    pub heartbeat_interval: Duration,
    /// Show a download progress bar (only ever on a terminal).
    pub progress: bool,
    /// What a snapshot may declare at most (the project caps the database enforces).
    pub limits: fs_sync_core::Limits,
    /// Whole sync intervals without a joined realtime channel before /healthz says `realtime`.
    pub health_realtime_intervals: u32,
    /// Events the server may be ahead at an interval before /healthz says `behind`.
    pub health_max_behind: u64,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("project_id", &self.project_id)
            .field("session_id", &self.session_id)
            .field(
                "snapshot_url",
                &self.snapshot_url.as_deref().map(crate::log::redact_url),
            )
            .field("supabase_url", &self.supabase_url)
            .field("token", &"<redacted>")
            .field("token_expires_at", &self.token_expires_at)
            .field("edge_url", &self.edge_url)
            .field("target", &self.target)
            .field("state_dir", &self.state_dir)
            .field("exec", &self.exec)
            .field("metrics_addr", &self.metrics_addr)
            .field("sync_interval", &self.sync_interval)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Builds the configuration from environment variables and command-line arguments (without
    /// the program name). Checks the environment with [`check_environment`] first. Values come
    /// only from `vars`, never from the process environment.
    pub fn from_env_and_args<V, A>(vars: V, args: A) -> Result<Config, ConfigError>
    where
        V: IntoIterator<Item = (String, String)>,
        A: IntoIterator<Item = String>,
    {
        let vars: HashMap<String, String> = vars.into_iter().collect();
        check_environment(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
        let get = |name: &str| {
            vars.get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        // Before the container variables, so --help and usage errors need none of them.
        let flags = parse_flags(&get, args)?;
        let need = |name: &'static str| get(name).ok_or(ConfigError::Missing(name));

        let project_id = need("PROJECT_ID")?;
        if !is_uuid(&project_id) {
            return Err(ConfigError::Invalid {
                name: "PROJECT_ID".into(),
                reason: format!("{project_id:?} is not a uuid"),
            });
        }
        let project_id = project_id.to_ascii_lowercase();
        let session_id = need("SESSION_ID")?;
        let supabase_url = need("SUPABASE_URL")?.trim_end_matches('/').to_owned();
        check_url("SUPABASE_URL", &supabase_url)?;
        let anon_key = need("SUPABASE_ANON_KEY")?;
        let token = need("REALTIME_TOKEN")?;
        let snapshot_url = get("SNAPSHOT_URL");
        if let Some(u) = &snapshot_url {
            check_url("SNAPSHOT_URL", u)?;
        }
        let snapshot_sha256 = get("SNAPSHOT_SHA256").map(|s| s.to_ascii_lowercase());
        if let Some(s) = &snapshot_sha256 {
            if !fs_sync_core::is_content_hash(s) {
                return Err(ConfigError::Invalid {
                    name: "SNAPSHOT_SHA256".into(),
                    reason: "expected 64 hex digits".into(),
                });
            }
        }
        if snapshot_url.is_some() && snapshot_sha256.is_none() {
            return Err(ConfigError::Missing("SNAPSHOT_SHA256"));
        }
        let token_expires_at = match get("TOKEN_EXPIRES_AT") {
            Some(v) => Some(parse_time(&v).ok_or_else(|| ConfigError::Invalid {
                name: "TOKEN_EXPIRES_AT".into(),
                reason: format!("{v:?} is neither RFC 3339 nor seconds since the epoch"),
            })?),
            None => jwt_claims(&token)
                .and_then(|c| c.get("exp").and_then(serde_json::Value::as_u64))
                .map(|s| UNIX_EPOCH + Duration::from_secs(s)),
        };
        let edge_url = get("EDGE_URL").map(|u| u.trim_end_matches('/').to_owned());
        if let Some(u) = &edge_url {
            check_url("EDGE_URL", u)?;
        }

        Ok(Config {
            project_id,
            session_id,
            snapshot_url,
            snapshot_sha256,
            supabase_url,
            anon_key,
            token,
            token_expires_at,
            edge_url,
            target: flags.target,
            state_dir: flags.state_dir,
            exec: flags.exec,
            metrics_addr: flags.metrics_addr,
            sync_interval: flags.sync_interval,
            join_timeout: Duration::from_secs(5),
            heartbeat_interval: Duration::from_secs(25),
            progress: flags.progress,
            limits: flags.limits,
            health_realtime_intervals: flags.health_realtime_intervals,
            health_max_behind: flags.health_max_behind,
        })
    }
}

/// The flags' part of [`Config`].
struct Options {
    target: PathBuf,
    state_dir: PathBuf,
    exec: Option<String>,
    metrics_addr: Option<SocketAddr>,
    sync_interval: Duration,
    progress: bool,
    limits: fs_sync_core::Limits,
    health_realtime_intervals: u32,
    health_max_behind: u64,
}

/// Parses the flags with clap. Clap would read the `FS_SYNC_*` variables from the process
/// environment; they are taken from the caller's variables (`get`) instead and handed to clap as
/// their flags' defaults, which rank where environment values do: below the flag. ADDR and SECS
/// are checked here rather than by clap value parsers so that an unusable value is reported under
/// the name it came by, flag or variable (clap would always name the flag).
fn parse_flags(
    get: &dyn Fn(&str) -> Option<String>,
    args: impl IntoIterator<Item = String>,
) -> Result<Options, ConfigError> {
    let command = Flags::command().mut_args(|arg| {
        let from_env = arg.get_env().and_then(|n| get(&n.to_string_lossy()));
        let arg = arg.env(None);
        match from_env {
            Some(value) => arg.default_value(value),
            None => arg,
        }
    });
    let argv = std::iter::once("fs-sync-hydrate".to_owned()).chain(args);
    let matches = command
        .try_get_matches_from(argv)
        .map_err(|e| match e.kind() {
            clap::error::ErrorKind::DisplayHelp => ConfigError::Help(help()),
            _ => ConfigError::Usage(e.to_string()),
        })?;
    let flags = Flags::from_arg_matches(&matches).map_err(|e| ConfigError::Usage(e.to_string()))?;
    let invalid = |id: &str, reason: String| {
        let command = Flags::command();
        let arg = command
            .get_arguments()
            .find(|a| a.get_id() == id)
            .expect("a declared flag");
        let from_env = matches.value_source(id) != Some(ValueSource::CommandLine);
        let name = match arg.get_env().map(|v| v.to_string_lossy().into_owned()) {
            Some(var) if from_env && get(&var).is_some() => var,
            _ => format!("--{}", arg.get_long().expect("every flag is long")),
        };
        ConfigError::Invalid { name, reason }
    };
    let metrics_addr = match flags.metrics_addr.as_str() {
        "off" => None,
        v => Some(
            v.parse()
                .map_err(|e| invalid("metrics_addr", format!("{v:?}: {e}")))?,
        ),
    };
    let v = &flags.sync_interval;
    let sync_interval = v
        .parse()
        .ok()
        .filter(|s: &f64| *s > 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| {
            invalid(
                "sync_interval",
                format!("{v:?} is not a positive number of seconds"),
            )
        })?;
    let target = flags.target;
    if target.file_name().is_none() {
        let reason = format!("{} has no folder name", target.display());
        return Err(invalid("target", reason));
    }
    let state_dir = flags.state_dir.unwrap_or_else(|| {
        target
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| std::path::Path::new("."))
            .join(".fs-sync-state")
    });
    Ok(Options {
        target,
        state_dir,
        exec: flags.exec.filter(|c| !c.trim().is_empty()),
        metrics_addr,
        sync_interval,
        progress: !flags.no_progress,
        limits: fs_sync_core::Limits {
            max_total_bytes: flags.max_project_bytes,
            max_entries: flags.max_project_files,
            ..fs_sync_core::Limits::default()
        },
        health_realtime_intervals: flags.health_realtime_intervals,
        health_max_behind: flags.health_max_behind,
    })
}

/// `fs-sync-hydrate --help`: clap's help, naming each flag's variable (never its value, which
/// would be the process's rather than the caller's).
fn help() -> String {
    Flags::command()
        .mut_args(|a| a.hide_env_values(true))
        .render_help()
        .to_string()
}

/// Refuses an environment that holds a service credential: a variable named like the
/// service-role key or the JWT secret (non-empty), a JWT whose payload role is `service_role`
/// (with or without a `Bearer ` prefix), or a new-format secret key (`sb_secret_…`), in any
/// variable. The error names the variable, never its value.
pub fn check_environment<'a, I>(vars: I) -> Result<(), ConfigError>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut found: Option<ConfigError> = None;
    for (name, value) in vars {
        let value = value.trim();
        let why = if FORBIDDEN_VARS.contains(&name) && !value.is_empty() {
            Some("is set")
        } else if value.starts_with("sb_secret_") {
            Some("holds a Supabase secret key (sb_secret_…)")
        } else if jwt_claims(value).is_some_and(|c| {
            c.get("role").and_then(serde_json::Value::as_str) == Some("service_role")
        }) {
            Some("holds a JWT whose role is service_role")
        } else {
            None
        };
        if let Some(why) = why {
            // Report the first in name order, so the message is stable.
            let replace = match &found {
                Some(ConfigError::SecretInEnv { name: n, .. }) => name < n.as_str(),
                _ => true,
            };
            if replace {
                found = Some(ConfigError::SecretInEnv {
                    name: name.to_owned(),
                    why,
                });
            }
        }
    }
    found.map_or(Ok(()), Err)
}

/// The payload of something shaped like a JWT (`Bearer ` prefix allowed), without verifying it.
pub(crate) fn jwt_claims(value: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let v = value.trim();
    let v = v
        .strip_prefix("Bearer ")
        .or_else(|| v.strip_prefix("bearer "))
        .unwrap_or(v);
    let mut parts = v.split('.');
    let (_, payload, _, None) = (parts.next()?, parts.next()?, parts.next()?, parts.next()) else {
        return None;
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        serde_json::Value::Object(m) => Some(m),
        _ => None,
    }
}

/// RFC 3339, or whole seconds since the epoch.
pub(crate) fn parse_time(v: &str) -> Option<SystemTime> {
    if let Ok(secs) = v.parse::<u64>() {
        return Some(UNIX_EPOCH + Duration::from_secs(secs));
    }
    let t = chrono::DateTime::parse_from_rfc3339(v).ok()?;
    let nanos = t.timestamp_nanos_opt()?;
    if nanos < 0 {
        return None;
    }
    Some(UNIX_EPOCH + Duration::from_nanos(nanos as u64))
}

/// The hyphenated form only, as Postgres prints a uuid.
fn is_uuid(s: &str) -> bool {
    s.len() == 36 && uuid::Uuid::try_parse(s).is_ok()
}

fn check_url(name: &str, url: &str) -> Result<(), ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid {
        name: name.into(),
        reason,
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| invalid(format!("not a URL: {e}")))?;
    match parsed.scheme() {
        "http" => Ok(()),
        "https" if cfg!(feature = "tls") => Ok(()),
        "https" => Err(invalid(
            "https needs TLS, which this build lacks: rebuild with `--features tls`".into(),
        )),
        s => Err(invalid(format!("unsupported scheme {s:?}"))),
    }
}

#[cfg(test)]
mod tests;
