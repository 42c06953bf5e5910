//! The routes: `POST /build-project-snapshot`, `POST /sessions`, `POST /sessions/refresh`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;
use wasm_bindgen::prelude::wasm_bindgen;
use worker::{Request, Response};

use crate::config::Config;
use crate::error::AppError;
use crate::log::RequestLog;
use crate::snapshot::{self, Cut, SnapshotInfo};
use crate::supabase::{read_prefix, Supabase};
use crate::token::{self, READ_SCOPE};

/// The flag that gates snapshot hydration, checked for the project's owner.
pub(crate) const HYDRATION_FLAG: &str = "FSYNC_SNAPSHOT_HYDRATION";

#[wasm_bindgen]
extern "C" {
    /// Web Crypto's `crypto.randomUUID()` (a v4 UUID from the runtime's CSPRNG).
    #[wasm_bindgen(js_namespace = crypto, js_name = randomUUID)]
    fn random_uuid() -> String;
}

/// Seconds since the epoch (the runtime's clock).
fn now_secs() -> i64 {
    (js_sys::Date::now() / 1000.0).floor() as i64
}

pub(crate) fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// RFC 3339 in UTC, seconds precision: `2025-11-26T09:15:00Z`.
pub(crate) fn rfc3339(secs: i64) -> String {
    DateTime::<Utc>::from_timestamp(secs, 0)
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A lowercase canonical UUID, or 400.
pub(crate) fn parse_project_id(s: &str) -> Result<String, AppError> {
    let ok = s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    if ok {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(AppError::BadRequest(format!(
            "projectId must be a UUID, got {:?}",
            s.chars().take(64).collect::<String>()
        )))
    }
}

/// 1–128 characters of `A-Z a-z 0-9 . _ : -`, or 400.
pub(crate) fn parse_session_id(s: &str) -> Result<String, AppError> {
    let ok = (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(AppError::BadRequest(
            "sessionId must be 1 to 128 characters of A-Z, a-z, 0-9, '.', '_', ':' or '-'".into(),
        ))
    }
}

/// Request bodies hold `{"projectId", "sessionId"}`: a longer one is refused without reading it all.
const REQUEST_BODY_MAX: usize = 16 << 10;

async fn read_json<T: DeserializeOwned>(req: &mut Request) -> Result<T, AppError> {
    let (bytes, complete) = match req.stream() {
        Ok(body) => read_prefix(body, REQUEST_BODY_MAX)
            .await
            .map_err(|_| AppError::BadRequest("could not read the request body".into()))?,
        // No body: the JSON error below says what one should hold.
        Err(_) => (Vec::new(), true),
    };
    if !complete {
        return Err(AppError::BadRequest(format!(
            "the request body is over {REQUEST_BODY_MAX} bytes; it is JSON like \
             {{\"projectId\": \"<uuid>\"}}"
        )));
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        AppError::BadRequest(format!(
            "the body must be JSON like {{\"projectId\": \"<uuid>\"}}: {e}"
        ))
    })
}

fn authorization(req: &Request) -> Option<String> {
    req.headers().get("authorization").ok().flatten()
}

fn require_service(req: &Request, cfg: &Config) -> Result<(), AppError> {
    let bearer = token::bearer(authorization(req))?;
    token::verify_service(&cfg.jwt_secret, &bearer, now_secs())
}

pub(crate) fn json_response<T: Serialize>(value: &T) -> Result<Response, AppError> {
    let mut resp = Response::from_json(value)?;
    resp.headers_mut().set("cache-control", "no-store")?;
    Ok(resp)
}

async fn check_hydration_flag(sb: &Supabase, project_id: &str) -> Result<(), AppError> {
    let enabled: bool = sb
        .rpc(
            "is_feature_enabled_for_project",
            &json!({ "flag_key": HYDRATION_FLAG, "project_uuid": project_id }),
        )
        .await?;
    if enabled {
        Ok(())
    } else {
        Err(AppError::HydrationDisabled(format!(
            "{HYDRATION_FLAG} is off for the owner of project {project_id}: \
             hydrate this container the legacy way"
        )))
    }
}

/// The project's snapshot at its current seq: reused when stored, else built and stored; signed.
async fn ensure_snapshot(
    cfg: &Config,
    project_id: &str,
    log: &mut RequestLog,
) -> Result<SnapshotInfo, AppError> {
    let sb = Supabase::new(&cfg.supabase_url, &cfg.service_key);
    let cut_args = json!({ "project_uuid": project_id, "include_content": false });
    let (_, cut) = futures_util::future::try_join(
        check_hydration_flag(&sb, project_id),
        sb.rpc::<Option<Cut>>("get_project_snapshot", &cut_args),
    )
    .await?;
    let cut = cut.ok_or_else(|| AppError::NotFound(format!("project {project_id} not found")))?;
    let plan = snapshot::plan(cut)?;
    let snapshot_id = plan.snapshot_id.clone();
    let as_of_seq = plan.manifest.as_of_seq;
    let file_count = plan.manifest.files.len();
    log.snapshot_id = Some(snapshot_id.clone());
    log.as_of_seq = Some(as_of_seq);
    log.snapshot_files = Some(file_count);
    log.content_bytes = Some(plan.manifest.total_size());

    let name = plan.object_name();
    let (sha256, size, reused) = match sb.get_object(&cfg.bucket, &name).await? {
        Some(resp) => {
            let (sha, size) = snapshot::hash_object(resp).await?;
            (sha, size, true)
        }
        None => {
            let started = now_ms();
            let stored = snapshot::store(&sb, plan, &cfg.bucket, cfg.max_snapshot_bytes).await?;
            log.build_ms = Some((now_ms() - started).max(0.0) as u64);
            (stored.sha256, stored.size, stored.raced)
        }
    };
    log.snapshot = Some(if reused { "reused" } else { "built" });
    log.snapshot_bytes = Some(size);

    let signed_url = sb.sign(&cfg.bucket, &name, cfg.snapshot_url_ttl).await?;
    Ok(SnapshotInfo {
        snapshot_id,
        signed_url,
        expires_at: rfc3339(now_secs() + cfg.snapshot_url_ttl),
        sha256,
        size,
        as_of_seq,
        file_count,
        reused,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProjectBody {
    project_id: String,
    #[serde(default)]
    session_id: Option<String>,
}

/// `POST /build-project-snapshot {projectId}` (service role).
pub(crate) async fn build_project_snapshot(
    mut req: Request,
    cfg: &Config,
    log: &mut RequestLog,
) -> Result<Response, AppError> {
    log.event_type = "snapshot.build";
    require_service(&req, cfg)?;
    let body: ProjectBody = read_json(&mut req).await?;
    let project_id = parse_project_id(&body.project_id)?;
    log.project_id = Some(project_id.clone());
    let info = ensure_snapshot(cfg, &project_id, log).await?;
    json_response(&info)
}

/// The container's environment (docs/contracts.md): no service key, no JWT secret.
#[derive(Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
struct ContainerEnv {
    project_id: String,
    session_id: String,
    snapshot_url: String,
    snapshot_sha256: String,
    supabase_url: String,
    supabase_anon_key: String,
    realtime_token: String,
    token_expires_at: String,
    edge_url: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SessionResponse {
    session_id: String,
    project_id: String,
    /// When the container token expires (RFC 3339); refresh before.
    expires_at: String,
    snapshot: SnapshotInfo,
    env: ContainerEnv,
}

fn edge_url(req: &Request, cfg: &Config) -> String {
    if let Some(u) = &cfg.edge_url {
        return u.clone();
    }
    req.url()
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default()
}

/// `POST /sessions {projectId, sessionId?}` (service role): snapshot + container token + env.
pub(crate) async fn create_session(
    mut req: Request,
    cfg: &Config,
    log: &mut RequestLog,
) -> Result<Response, AppError> {
    log.event_type = "session.create";
    require_service(&req, cfg)?;
    let body: ProjectBody = read_json(&mut req).await?;
    let project_id = parse_project_id(&body.project_id)?;
    log.project_id = Some(project_id.clone());
    let session_id = match body.session_id {
        Some(s) => parse_session_id(&s)?,
        None => random_uuid(),
    };
    log.session_id = Some(session_id.clone());

    let snapshot = ensure_snapshot(cfg, &project_id, log).await?;
    let minted = token::mint_container(
        &cfg.jwt_secret,
        &project_id,
        &session_id,
        READ_SCOPE,
        now_secs(),
        cfg.token_ttl,
    )?;
    let expires_at = rfc3339(minted.expires_at);
    let env = ContainerEnv {
        project_id: project_id.clone(),
        session_id: session_id.clone(),
        snapshot_url: snapshot.signed_url.clone(),
        snapshot_sha256: snapshot.sha256.clone(),
        supabase_url: cfg.supabase_url.clone(),
        supabase_anon_key: cfg.anon_key.clone(),
        realtime_token: minted.token,
        token_expires_at: expires_at.clone(),
        edge_url: edge_url(&req, cfg),
    };
    json_response(&SessionResponse {
        session_id,
        project_id,
        expires_at,
        snapshot,
        env,
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RefreshResponse {
    session_id: String,
    project_id: String,
    token: String,
    expires_at: String,
    /// The two env entries that change, for an agent that keeps its env as a map.
    env: RefreshEnv,
}

#[derive(Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
struct RefreshEnv {
    realtime_token: String,
    token_expires_at: String,
}

/// `POST /sessions/refresh` with `Authorization: Bearer <still-valid container token>`.
pub(crate) async fn refresh_session(
    req: Request,
    cfg: &Config,
    log: &mut RequestLog,
) -> Result<Response, AppError> {
    log.event_type = "session.refresh";
    let bearer = token::bearer(authorization(&req))?;
    let now = now_secs();
    let claims = token::verify_container(&cfg.jwt_secret, &bearer, now)?;
    log.project_id = Some(claims.project_id.clone());
    log.session_id = Some(claims.session_id.clone());
    let minted = token::mint_container(
        &cfg.jwt_secret,
        &claims.project_id,
        &claims.session_id,
        &claims.scope,
        now,
        cfg.token_ttl,
    )?;
    let expires_at = rfc3339(minted.expires_at);
    json_response(&RefreshResponse {
        session_id: claims.session_id,
        project_id: claims.project_id,
        token: minted.token.clone(),
        expires_at: expires_at.clone(),
        env: RefreshEnv {
            realtime_token: minted.token,
            token_expires_at: expires_at,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        assert_eq!(
            parse_project_id("0F8FAD5B-D9CB-469F-A165-70867728950E").unwrap(),
            "0f8fad5b-d9cb-469f-a165-70867728950e"
        );
        assert!(parse_project_id("not-a-uuid").is_err());
        assert!(parse_project_id("0f8fad5b-d9cb-469f-a165-70867728950e ").is_err());
        assert_eq!(parse_session_id("sess_1:a-b.c").unwrap(), "sess_1:a-b.c");
        assert!(parse_session_id("").is_err());
        assert!(parse_session_id("a b").is_err());
        assert!(parse_session_id(&"x".repeat(129)).is_err());
    }

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_764_148_500), "2025-11-26T09:15:00Z");
    }
}
