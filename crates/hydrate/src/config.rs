//! The agent's configuration: DESIGN.md's container env plus command-line flags, and the refusal
//! to run next to a service credential.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;

/// `fs-sync-hydrate --help`.
pub const USAGE: &str = "\
usage: fs-sync-hydrate [--target DIR] [--exec CMD] [--metrics-addr ADDR|off] [--state-dir DIR]
                       [--sync-interval SECS] [--no-progress]

Hydrates a preview container from a verified fs-sync snapshot, then applies the project's
realtime changes in order until stopped (or until the --exec command exits).

Environment (from fs-sync-edge's POST /sessions): PROJECT_ID, SESSION_ID, SNAPSHOT_URL,
SNAPSHOT_SHA256, SUPABASE_URL, SUPABASE_ANON_KEY, REALTIME_TOKEN, TOKEN_EXPIRES_AT, EDGE_URL.
It refuses to start when a service-role key or the JWT secret is in its environment.

  --target DIR          the project folder (default /app/project)
  --exec CMD            once hydrated, run `sh -c CMD` in DIR (e.g. \"npm run dev\"); SIGTERM and
                        SIGINT are forwarded to it and the agent exits with its status
  --metrics-addr ADDR   serve GET /healthz and GET /metrics here (default 127.0.0.1:9464;
                        \"off\" disables)
  --state-dir DIR       where to keep <project_id>.json (default DIR/../.fs-sync-state)
  --sync-interval SECS  how often to confirm the position with get_project_sync_state (default 15)
  --no-progress         no download progress bar even on a terminal
";

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
    /// A service credential is in the environment (DESIGN.md invariant 7).
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
    /// Bad command line.
    #[error("{0}\n\n{USAGE}")]
    Usage(String),
    /// `--help` was given.
    #[error("{USAGE}")]
    Help,
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
    /// the program name). Checks the environment with [`check_environment`] first.
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

        let mut target = PathBuf::from("/app/project");
        let mut state_dir = None;
        let mut exec = None;
        let mut metrics_addr = Some(SocketAddr::from(([127, 0, 0, 1], 9464)));
        let mut sync_interval = Duration::from_secs(15);
        let mut progress = true;
        let mut it = args.into_iter();
        while let Some(a) = it.next() {
            let (flag, inline) = match a.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
                _ => (a.clone(), None),
            };
            let mut value = |name: &str| {
                inline
                    .clone()
                    .or_else(|| it.next())
                    .ok_or_else(|| ConfigError::Usage(format!("{name} needs a value")))
            };
            match flag.as_str() {
                "--target" => target = PathBuf::from(value("--target")?),
                "--state-dir" => state_dir = Some(PathBuf::from(value("--state-dir")?)),
                "--exec" => exec = Some(value("--exec")?).filter(|c| !c.trim().is_empty()),
                "--metrics-addr" => {
                    let v = value("--metrics-addr")?;
                    metrics_addr = if v == "off" {
                        None
                    } else {
                        Some(v.parse().map_err(|e| ConfigError::Invalid {
                            name: "--metrics-addr".into(),
                            reason: format!("{v:?}: {e}"),
                        })?)
                    };
                }
                "--sync-interval" => {
                    let v = value("--sync-interval")?;
                    let secs: f64 = v.parse().ok().filter(|s: &f64| *s > 0.0).ok_or_else(|| {
                        ConfigError::Invalid {
                            name: "--sync-interval".into(),
                            reason: format!("{v:?} is not a positive number of seconds"),
                        }
                    })?;
                    sync_interval = Duration::from_secs_f64(secs);
                }
                "--no-progress" => progress = false,
                "-h" | "--help" => return Err(ConfigError::Help),
                other => return Err(ConfigError::Usage(format!("unknown option {other:?}"))),
            }
        }
        if target.file_name().is_none() {
            return Err(ConfigError::Invalid {
                name: "--target".into(),
                reason: format!("{} has no folder name", target.display()),
            });
        }
        let state_dir = state_dir.unwrap_or_else(|| {
            target
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or_else(|| std::path::Path::new("."))
                .join(".fs-sync-state")
        });
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
            target,
            state_dir,
            exec,
            metrics_addr,
            sync_interval,
            join_timeout: Duration::from_secs(5),
            heartbeat_interval: Duration::from_secs(25),
            progress,
        })
    }
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

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
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
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        let b = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.sig", b(r#"{"alg":"HS256"}"#), b(payload))
    }

    fn env(extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = [
            ("PROJECT_ID", "0F8FAD5B-D9CB-469F-A165-70867728950E"),
            ("SESSION_ID", "s1"),
            ("SNAPSHOT_URL", "http://127.0.0.1:1/snap.zip?token=t"),
            ("SNAPSHOT_SHA256", &"AB".repeat(32)),
            ("SUPABASE_URL", "http://127.0.0.1:2/"),
            ("SUPABASE_ANON_KEY", "anon"),
            ("REALTIME_TOKEN", "x.y.z"),
            ("TOKEN_EXPIRES_AT", "2030-01-01T00:00:00Z"),
            ("EDGE_URL", "http://127.0.0.1:3"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        v.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        v
    }

    #[test]
    fn reads_the_design_env_and_flags() {
        let args = [
            "--target",
            "/tmp/x/proj",
            "--exec=npm run dev",
            "--metrics-addr",
            "off",
        ]
        .map(String::from);
        let c = Config::from_env_and_args(env(&[]), args).unwrap();
        assert_eq!(c.project_id, "0f8fad5b-d9cb-469f-a165-70867728950e");
        assert_eq!(c.supabase_url, "http://127.0.0.1:2");
        assert_eq!(c.snapshot_sha256.as_deref(), Some(&*"ab".repeat(32)));
        assert_eq!(c.state_dir, PathBuf::from("/tmp/x/.fs-sync-state"));
        assert_eq!(c.exec.as_deref(), Some("npm run dev"));
        assert_eq!(c.metrics_addr, None);
        let debug = format!("{c:?}");
        assert!(
            !debug.contains("x.y.z") && !debug.contains("token=t"),
            "{debug}"
        );
        assert_eq!(
            c.token_expires_at,
            Some(UNIX_EPOCH + Duration::from_secs(1_893_456_000))
        );
        assert!(matches!(
            Config::from_env_and_args(env(&[]), ["--bogus".to_string()]),
            Err(ConfigError::Usage(_))
        ));
    }

    #[test]
    fn refuses_service_credentials() {
        let service = jwt(r#"{"role":"service_role","exp":1}"#);
        let bearer = format!("Bearer {service}");
        for (name, value) in [
            ("SUPABASE_SERVICE_ROLE_KEY", "anything"),
            ("JWT_SECRET", "s3cret"),
            ("SUPABASE_JWT_SECRET", "s3cret"),
            ("SOME_TOKEN", service.as_str()),
            ("AUTH_HEADER", bearer.as_str()),
            ("KEY", "sb_secret_abc"),
        ] {
            let err =
                Config::from_env_and_args(env(&[(name, value)]), Vec::<String>::new()).unwrap_err();
            let msg = err.to_string();
            assert!(
                matches!(err, ConfigError::SecretInEnv { .. }),
                "{name}: {msg}"
            );
            assert!(msg.contains(name), "{msg}");
            assert!(!msg.contains(value), "the value must not be printed: {msg}");
        }
        // An anon key or a container token is fine.
        let ok = [
            ("SUPABASE_ANON_KEY", jwt(r#"{"role":"anon"}"#)),
            (
                "REALTIME_TOKEN",
                jwt(r#"{"role":"fsync_container","exp":99}"#),
            ),
        ];
        let mut vars = env(&[]);
        vars.extend(ok.iter().map(|(k, v)| (k.to_string(), v.clone())));
        let c = Config::from_env_and_args(vars, Vec::<String>::new()).unwrap();
        assert_eq!(
            c.token_expires_at,
            Some(UNIX_EPOCH + Duration::from_secs(1_893_456_000))
        );
    }

    #[test]
    fn expiry_falls_back_to_the_token() {
        let vars: Vec<_> = env(&[])
            .into_iter()
            .filter(|(k, _)| k != "TOKEN_EXPIRES_AT" && k != "REALTIME_TOKEN")
            .chain([(
                "REALTIME_TOKEN".to_string(),
                jwt(r#"{"role":"fsync_container","exp":1700000000}"#),
            )])
            .collect();
        let c = Config::from_env_and_args(vars, Vec::<String>::new()).unwrap();
        assert_eq!(
            c.token_expires_at,
            Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        );
        assert_eq!(
            parse_time("2026-11-26T08:00:00.123456Z"),
            Some(UNIX_EPOCH + Duration::from_nanos(1_795_680_000_123_456_000))
        );
    }
}
