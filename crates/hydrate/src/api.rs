//! The HTTP calls the container token may make: PostgREST read RPCs, Storage object reads, and the
//! edge's token refresh and re-hydration snapshot. Whether the RPCs and the edge accept the token
//! is reported to the health monitor as each answer comes.

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::health::{AuthSource, Monitor, Observation};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The server answered with an error status.
    #[error("{what}: HTTP {status}{}: {message}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Status {
        /// The call.
        what: String,
        /// HTTP status (for Storage, the `statusCode` in its body).
        status: u16,
        /// PostgREST/Storage error code.
        code: Option<String>,
        /// The server's message.
        message: String,
    },
    /// The request never got an answer (connection refused, timeout, …).
    #[error("{what}: {message}")]
    Transport {
        /// The call.
        what: String,
        /// What went wrong (URLs removed: they may carry tokens).
        message: String,
    },
    /// The answer was not what the contract promises.
    #[error("{what}: unexpected response: {message}")]
    Protocol {
        /// The call.
        what: String,
        /// What was wrong.
        message: String,
    },
}

impl ApiError {
    /// The credential was refused (401/403 and their PostgREST codes), as core classifies it.
    pub(crate) fn is_unauthorized(&self) -> bool {
        match self {
            ApiError::Status { status, code, .. } => {
                fs_sync_core::ErrorKind::from_response(code.as_deref(), *status)
                    == fs_sync_core::ErrorKind::Unauthorized
            }
            _ => false,
        }
    }

    /// Storage refused or does not have the object (403/404 and their 400 wrappers).
    pub(crate) fn is_denied(&self) -> bool {
        matches!(self, ApiError::Status { status, .. } if matches!(status, 400 | 401 | 403 | 404))
    }
}

fn transport(what: &str, e: reqwest::Error) -> ApiError {
    let e = e.without_url();
    let mut message = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        message.push_str(": ");
        message.push_str(&s.to_string());
        src = s.source();
    }
    ApiError::Transport {
        what: what.to_owned(),
        message,
    }
}

/// One row of `get_project_files`.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct FileRow {
    pub(crate) file_path: String,
    pub(crate) version: u64,
    #[serde(default)]
    pub(crate) content: Option<String>,
    #[serde(default)]
    pub(crate) content_hash: Option<String>,
    #[serde(default)]
    pub(crate) storage_path: Option<String>,
    #[serde(default)]
    pub(crate) is_deleted: bool,
}

/// A fresh (or reused) snapshot of the session's project from the edge, as fs-sync-edge's
/// `SnapshotInfo` (`POST /sessions/snapshot` answers `{snapshot: …}`).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SnapshotInfo {
    pub(crate) snapshot_id: String,
    pub(crate) signed_url: String,
    pub(crate) sha256: String,
    pub(crate) as_of_seq: u64,
    #[serde(default)]
    pub(crate) reused: bool,
}

/// A new container token from the edge.
#[derive(Debug)]
pub(crate) struct Refreshed {
    pub(crate) token: String,
    pub(crate) expires_at: Option<SystemTime>,
}

#[derive(Clone)]
pub(crate) struct Api {
    http: reqwest::Client,
    base: String,
    anon: String,
    edge: Option<String>,
    project_id: String,
    token: Arc<RwLock<String>>,
    health: Arc<Monitor>,
}

impl Api {
    pub(crate) fn new(
        base: &str,
        anon: &str,
        edge: Option<&str>,
        project_id: &str,
        token: Arc<RwLock<String>>,
        health: Arc<Monitor>,
    ) -> Api {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .build()
            .expect("an HTTP client with default settings builds");
        Api {
            http,
            base: base.to_owned(),
            anon: anon.to_owned(),
            edge: edge.map(str::to_owned),
            project_id: project_id.to_owned(),
            token,
            health,
        }
    }

    /// Tells the health monitor whether `source` accepted the token.
    fn report<T>(&self, source: AuthSource, r: Result<T, ApiError>) -> Result<T, ApiError> {
        match &r {
            Ok(_) => self.health.observe(Observation::AuthOk(source)),
            Err(e) if e.is_unauthorized() => self
                .health
                .observe(Observation::AuthRefused(source, e.to_string())),
            Err(_) => {}
        }
        r
    }

    pub(crate) fn client(&self) -> &reqwest::Client {
        &self.http
    }

    pub(crate) fn token(&self) -> String {
        self.token.read().expect("token lock").clone()
    }

    async fn rpc<T: DeserializeOwned>(&self, f: &str, body: Value) -> Result<T, ApiError> {
        let r = self.rpc_once(f, body).await;
        self.report(AuthSource::Rpc, r)
    }

    async fn rpc_once<T: DeserializeOwned>(&self, f: &str, body: Value) -> Result<T, ApiError> {
        let what = format!("rpc {f}");
        let resp = self
            .http
            .post(format!("{}/rest/v1/rpc/{f}", self.base))
            .header("apikey", &self.anon)
            .bearer_auth(self.token())
            .header("Content-Profile", "public")
            .json(&body)
            .send()
            .await
            .map_err(|e| transport(&what, e))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| transport(&what, e))?;
        if !status.is_success() {
            let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            return Err(ApiError::Status {
                what,
                status: status.as_u16(),
                code: v["code"].as_str().map(str::to_owned),
                message: v["message"]
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(200).collect()),
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| ApiError::Protocol {
            what,
            message: e.to_string(),
        })
    }

    /// Raw event payloads with seq > `after`, at most `max` (≤ 1000).
    pub(crate) async fn list_events(&self, after: u64, max: u32) -> Result<Vec<Value>, ApiError> {
        self.rpc(
            "list_project_events",
            json!({"project_uuid": self.project_id, "after_seq": after, "max_events": max}),
        )
        .await
    }

    /// Exact (path, version) rows.
    pub(crate) async fn files(
        &self,
        paths: &[String],
        versions: &[u64],
    ) -> Result<Vec<FileRow>, ApiError> {
        self.rpc(
            "get_project_files",
            json!({"project_uuid": self.project_id, "paths": paths, "versions": versions}),
        )
        .await
    }

    /// The seq of the newest committed event.
    pub(crate) async fn sync_state(&self) -> Result<u64, ApiError> {
        let v: Value = self
            .rpc(
                "get_project_sync_state",
                json!({"project_uuid": self.project_id}),
            )
            .await?;
        let seq = v["seq"].as_u64().ok_or_else(|| ApiError::Protocol {
            what: "rpc get_project_sync_state".into(),
            message: format!("no seq in {v}"),
        })?;
        self.health.observe(Observation::Position(seq));
        Ok(seq)
    }

    /// The bytes of a Storage object, `storage_path` being `<bucket>/<object path>`.
    pub(crate) async fn storage_object(&self, storage_path: &str) -> Result<Vec<u8>, ApiError> {
        let what = "storage download".to_owned();
        let mut url =
            reqwest::Url::parse(&format!("{}/storage/v1/object/authenticated/", self.base))
                .map_err(|e| ApiError::Protocol {
                    what: what.clone(),
                    message: e.to_string(),
                })?;
        url.path_segments_mut()
            .map_err(|()| ApiError::Protocol {
                what: what.clone(),
                message: "SUPABASE_URL cannot be a base".into(),
            })?
            .pop_if_empty()
            .extend(storage_path.split('/'));
        let resp = self
            .http
            .get(url)
            .header("apikey", &self.anon)
            .bearer_auth(self.token())
            .send()
            .await
            .map_err(|e| transport(&what, e))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| transport(&what, e))?;
        if !status.is_success() {
            // Storage sends most errors as 400 with the real status in the body.
            let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let real = v["statusCode"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or(status.as_u16());
            return Err(ApiError::Status {
                what,
                status: real,
                code: v["error"].as_str().map(str::to_owned),
                message: v["message"].as_str().unwrap_or("").to_owned(),
            });
        }
        Ok(bytes.to_vec())
    }

    /// `POST {EDGE_URL}<path>` with the current token and an empty JSON body: the answer's JSON.
    async fn edge_post(&self, what: &str, path: &str) -> Result<Value, ApiError> {
        let r = self.edge_post_once(what, path).await;
        self.report(AuthSource::Edge, r)
    }

    async fn edge_post_once(&self, what: &str, path: &str) -> Result<Value, ApiError> {
        let Some(edge) = &self.edge else {
            return Err(ApiError::Protocol {
                what: what.to_owned(),
                message: "EDGE_URL is not set".into(),
            });
        };
        let resp = self
            .http
            .post(format!("{edge}{path}"))
            .bearer_auth(self.token())
            .header("Content-Type", "application/json")
            .body("{}")
            .send()
            .await
            .map_err(|e| transport(what, e))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| transport(what, e))?;
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !status.is_success() {
            // fs-sync-edge's errors are {error: {code, message}}.
            let message = v["error"]["message"]
                .as_str()
                .or(v["message"].as_str())
                .or(v["error"].as_str())
                .unwrap_or("")
                .to_owned();
            return Err(ApiError::Status {
                what: what.to_owned(),
                status: status.as_u16(),
                code: v["error"]["code"].as_str().map(str::to_owned),
                message,
            });
        }
        Ok(v)
    }

    /// `POST {EDGE_URL}/sessions/snapshot`: a fresh (or reused) snapshot of the session's
    /// project, to re-hydrate from.
    pub(crate) async fn session_snapshot(&self) -> Result<SnapshotInfo, ApiError> {
        let what = "POST /sessions/snapshot";
        let v = self.edge_post(what, "/sessions/snapshot").await?;
        serde_json::from_value(v["snapshot"].clone()).map_err(|e| ApiError::Protocol {
            what: what.to_owned(),
            message: format!("no usable snapshot in the response: {e}"),
        })
    }

    /// `POST {EDGE_URL}/sessions/refresh` with the current token.
    pub(crate) async fn refresh(&self) -> Result<Refreshed, ApiError> {
        let what = "token refresh".to_owned();
        let v = self.edge_post(&what, "/sessions/refresh").await?;
        // fs-sync-edge answers {token, expiresAt, env: {REALTIME_TOKEN, TOKEN_EXPIRES_AT}}.
        let token = v["token"]
            .as_str()
            .or(v["env"]["REALTIME_TOKEN"].as_str())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::Protocol {
                what: what.clone(),
                message: "no token in the response".into(),
            })?
            .to_owned();
        let expires_at = v["expiresAt"]
            .as_str()
            .or(v["env"]["TOKEN_EXPIRES_AT"].as_str())
            .and_then(crate::config::parse_time)
            .or_else(|| {
                crate::config::jwt_claims(&token)
                    .and_then(|c| c.get("exp").and_then(Value::as_u64))
                    .map(|s| std::time::UNIX_EPOCH + Duration::from_secs(s))
            });
        Ok(Refreshed { token, expires_at })
    }
}
