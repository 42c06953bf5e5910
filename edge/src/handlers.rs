//! The routes: `POST /build-project-snapshot`, `POST /sessions`, `DELETE /sessions/<id>`,
//! `POST /sessions/refresh`, `POST /sessions/snapshot`.

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

/// Route names under `/sessions/`, so never a session id (`DELETE /sessions/<id>` could not end it).
const RESERVED_SESSION_IDS: [&str; 2] = ["refresh", "snapshot"];

/// 1–128 characters of `A-Z a-z 0-9 . _ : -` (the database checks the same), not a route name;
/// or 400.
pub(crate) fn parse_session_id(s: &str) -> Result<String, AppError> {
    let ok = (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if !ok {
        return Err(AppError::BadRequest(
            "sessionId must be 1 to 128 characters of A-Z, a-z, 0-9, '.', '_', ':' or '-'".into(),
        ));
    }
    if RESERVED_SESSION_IDS.contains(&s) {
        return Err(AppError::BadRequest(format!(
            "sessionId {s:?} is a route name (/sessions/{s}); choose another"
        )));
    }
    Ok(s.to_owned())
}

/// The session's maximum age: `maxAgeSeconds` when given (1 to the worker's `SESSION_MAX_AGE`),
/// else `SESSION_MAX_AGE`; or 400.
pub(crate) fn session_max_age(requested: Option<i64>, cap: i64) -> Result<i64, AppError> {
    match requested {
        None => Ok(cap),
        Some(secs) if (1..=cap).contains(&secs) => Ok(secs),
        Some(secs) => Err(AppError::BadRequest(format!(
            "maxAgeSeconds must be 1 to {cap} (this worker's SESSION_MAX_AGE), got {secs}"
        ))),
    }
}

/// A container token's lifetime from `now`: the configured TTL, cut short so that it never
/// outlives the session (`session_expires_at`, seconds since the epoch).
pub(crate) fn token_lifetime(now: i64, ttl: i64, session_expires_at: i64) -> i64 {
    ttl.min(session_expires_at - now)
}

/// The `%XX` escapes of a path segment decoded (a client may send `:` as `%3A`); None when that
/// is not UTF-8.
pub(crate) fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
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

/// What `find_project_snapshot` answers: the project's seq, the hydration flag for its owner, and
/// its last stored archive when that is still current.
#[derive(Deserialize)]
struct Found {
    flag_enabled: Option<bool>,
    snapshot: Option<Recorded>,
    /// The cut to build from when there is nothing to reuse.
    cut: Option<Cut>,
}

/// A stored archive as recorded (`record_project_snapshot`) with its SHA-256 and size.
#[derive(Deserialize)]
struct Recorded {
    snapshot_id: String,
    object_name: String,
    as_of_seq: u64,
    sha256: String,
    size_bytes: u64,
    file_count: usize,
}

/// The project's snapshot at its current seq: reused when stored, else built and stored; signed.
///
/// One call answers whether the project exists, whether hydration is on for it, and whether the
/// archive recorded for its current seq is still stored: an unchanged project's session then
/// costs that call and the signing, never a read of the project or of the archive. Otherwise the
/// same call gives the cut (with the contents, for a small project), then the build and the
/// upload, and the archive is recorded for the next session.
async fn ensure_snapshot(
    cfg: &Config,
    project_id: &str,
    log: &mut RequestLog,
) -> Result<SnapshotInfo, AppError> {
    let sb = Supabase::new(&cfg.supabase_url, &cfg.service_key);
    let found: Option<Found> = sb
        .rpc(
            "find_project_snapshot",
            &json!({
                "project_uuid": project_id, "flag_key": HYDRATION_FLAG, "cut": true,
                "content_max_bytes": snapshot::BATCH_BYTES,
            }),
        )
        .await?;
    let found =
        found.ok_or_else(|| AppError::NotFound(format!("project {project_id} not found")))?;
    if found.flag_enabled != Some(true) {
        return Err(AppError::HydrationDisabled(format!(
            "{HYDRATION_FLAG} is off for the owner of project {project_id}: \
             hydrate this container the legacy way"
        )));
    }
    let mut cut = found.cut;
    if let Some(r) = found.snapshot {
        // None: pruned since it was found; cut and built again below.
        if let Some(signed_url) = sb
            .sign(&cfg.bucket, &r.object_name, cfg.snapshot_url_ttl)
            .await?
        {
            log.snapshot_id = Some(r.snapshot_id.clone());
            log.as_of_seq = Some(r.as_of_seq);
            log.snapshot_files = Some(r.file_count);
            log.snapshot = Some("reused");
            log.snapshot_bytes = Some(r.size_bytes);
            return Ok(SnapshotInfo {
                snapshot_id: r.snapshot_id,
                signed_url,
                expires_at: rfc3339(now_secs() + cfg.snapshot_url_ttl),
                sha256: r.sha256,
                size: r.size_bytes,
                as_of_seq: r.as_of_seq,
                file_count: r.file_count,
                reused: true,
            });
        }
    }

    if cut.is_none() {
        let cut_args = json!({ "project_uuid": project_id, "include_content": false });
        cut = sb.rpc("get_project_snapshot", &cut_args).await?;
    }
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
    let started = now_ms();
    // An archive stored without a record (a concurrent build, or one stored before records
    // existed) is found by the upload's conflict and hashed instead.
    let stored = snapshot::store(&sb, plan, &cfg.bucket, cfg.max_snapshot_bytes).await?;
    log.build_ms = Some((now_ms() - started).max(0.0) as u64);
    log.snapshot = Some(if stored.raced { "reused" } else { "built" });
    log.snapshot_bytes = Some(stored.size);
    let record = json!({
        "project_uuid": project_id, "snapshot_id": snapshot_id, "as_of_seq": as_of_seq,
        "sha256": stored.sha256, "size_bytes": stored.size, "file_count": file_count,
    });
    let (_, signed_url) = futures_util::future::try_join(
        sb.rpc::<bool>("record_project_snapshot", &record),
        sb.sign(&cfg.bucket, &name, cfg.snapshot_url_ttl),
    )
    .await?;
    let signed_url = signed_url.ok_or_else(|| {
        AppError::Upstream(format!(
            "{}/{name} was stored and then not found when signing it; try again",
            cfg.bucket
        ))
    })?;
    Ok(SnapshotInfo {
        snapshot_id,
        signed_url,
        expires_at: rfc3339(now_secs() + cfg.snapshot_url_ttl),
        sha256: stored.sha256,
        size: stored.size,
        as_of_seq,
        file_count,
        reused: stored.raced,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProjectBody {
    project_id: String,
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    max_age_seconds: Option<i64>,
}

/// What `open_container_session` and `check_container_session` answer (the fields used here).
#[derive(Debug, Deserialize)]
pub(crate) struct SessionState {
    pub(crate) live: bool,
    #[serde(default)]
    pub(crate) reason: Option<String>,
    pub(crate) session_id: String,
    #[serde(default)]
    pub(crate) project_id: Option<String>,
    #[serde(default)]
    pub(crate) expires_at: Option<String>,
    #[serde(default)]
    pub(crate) ended_at: Option<String>,
    #[serde(default)]
    pub(crate) ended_reason: Option<String>,
    #[serde(default)]
    pub(crate) hydration_enabled: Option<bool>,
}

impl SessionState {
    /// `expires_at` in seconds since the epoch.
    pub(crate) fn expires_at_secs(&self) -> Result<i64, AppError> {
        let text = self.expires_at.as_deref().unwrap_or_default();
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.timestamp())
            .map_err(|e| {
                AppError::Upstream(format!(
                    "session {} has an unreadable expires_at {text:?}: {e}",
                    self.session_id
                ))
            })
    }

    /// Why this session may not have a token or a snapshot now, or None: 401 `session_ended`,
    /// `session_expired`, `session_unknown`; 404 `project_not_found`; 403 `feature_disabled`
    /// (FSYNC_SNAPSHOT_HYDRATION turned off for the project's owner since the session began).
    pub(crate) fn refusal(&self, project_id: &str) -> Option<AppError> {
        let id = &self.session_id;
        let session = |code: &'static str, message: String| AppError::Session {
            status: 401,
            code,
            message,
        };
        match self.reason.as_deref() {
            _ if self.live && self.hydration_enabled == Some(true) => None,
            None if self.live => Some(AppError::Session {
                status: 403,
                code: "feature_disabled",
                message: format!(
                    "{HYDRATION_FLAG} is off for the owner of project {project_id}: session {id}                      gets no new token or snapshot"
                ),
            }),
            Some("session_ended") => Some(session(
                "session_ended",
                format!(
                    "session {id} was ended at {} ({})",
                    self.ended_at.as_deref().unwrap_or("?"),
                    self.ended_reason.as_deref().unwrap_or("revoked")
                ),
            )),
            Some("session_expired") => Some(session(
                "session_expired",
                format!(
                    "session {id} expired at {} (its maximum age); the orchestrator starts a new one",
                    self.expires_at.as_deref().unwrap_or("?")
                ),
            )),
            Some("project_not_found") => Some(AppError::Session {
                status: 404,
                code: "project_not_found",
                message: format!("project {project_id} of session {id} no longer exists"),
            }),
            _ => Some(session(
                "session_unknown",
                format!("session {id} is unknown for project {project_id}"),
            )),
        }
    }
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
    /// When the session itself ends (its maximum age, RFC 3339): no refresh goes past it.
    session_expires_at: String,
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

/// `POST /sessions {projectId, sessionId?, maxAgeSeconds?}` (service role): the session recorded
/// (fsync.sessions), snapshot + container token + env.
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
    let max_age = session_max_age(body.max_age_seconds, cfg.session_max_age)?;

    let snapshot = ensure_snapshot(cfg, &project_id, log).await?;
    // Recorded once the snapshot is there: a refused request (409, 413, …) leaves no session.
    let sb = Supabase::new(&cfg.supabase_url, &cfg.service_key);
    let session: SessionState = sb
        .rpc(
            "open_container_session",
            &json!({
                "project_uuid": project_id,
                "session_id": session_id,
                "max_age_seconds": max_age,
                "snapshot_id": snapshot.snapshot_id,
                "as_of_seq": snapshot.as_of_seq,
            }),
        )
        .await?;
    let session_expires_at = session.expires_at_secs()?;
    let now = now_secs();
    let minted = token::mint_container(
        &cfg.jwt_secret,
        &project_id,
        &session_id,
        READ_SCOPE,
        now,
        token_lifetime(now, cfg.token_ttl, session_expires_at),
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
        session_expires_at: rfc3339(session_expires_at),
        snapshot,
        env,
    })
}

/// `DELETE /sessions/<id>[?reason=…]` (service role): ends the session; its token is refused from
/// the next RPC, storage read, realtime join or refresh on. 204, also when it had ended already;
/// 404 when unknown.
pub(crate) async fn end_session(
    req: Request,
    cfg: &Config,
    log: &mut RequestLog,
    raw_id: &str,
) -> Result<Response, AppError> {
    log.event_type = "session.end";
    require_service(&req, cfg)?;
    let session_id = percent_decode(raw_id)
        .ok_or_else(|| AppError::BadRequest("the session id is not UTF-8".into()))
        .and_then(|s| parse_session_id(&s))?;
    log.session_id = Some(session_id.clone());
    let reason = req
        .url()?
        .query_pairs()
        .find(|(k, _)| k == "reason")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| "revoked".to_owned());
    if reason.is_empty() || reason.len() > 64 || reason.chars().any(char::is_control) {
        return Err(AppError::BadRequest(
            "reason must be 1 to 64 printable characters".into(),
        ));
    }
    let sb = Supabase::new(&cfg.supabase_url, &cfg.service_key);
    let ended: SessionState = sb
        .rpc(
            "end_container_session",
            &json!({ "session_id": session_id, "reason": reason }),
        )
        .await?;
    log.project_id = ended.project_id;
    Ok(Response::empty()?.with_status(204))
}

/// The container token of `req`, verified, and its session re-checked: live, project there,
/// snapshot hydration still on. `refresh` stamps the session's last_refresh_at.
async fn live_container(
    req: &Request,
    cfg: &Config,
    log: &mut RequestLog,
    refresh: bool,
) -> Result<(token::ContainerClaims, SessionState, i64), AppError> {
    let bearer = token::bearer(authorization(req))?;
    let now = now_secs();
    let claims = token::verify_container(&cfg.jwt_secret, &bearer, now)?;
    log.project_id = Some(claims.project_id.clone());
    log.session_id = Some(claims.session_id.clone());
    let sb = Supabase::new(&cfg.supabase_url, &cfg.service_key);
    let session: SessionState = sb
        .rpc(
            "check_container_session",
            &json!({
                "session_id": claims.session_id,
                "project_uuid": claims.project_id,
                "refresh": refresh,
            }),
        )
        .await?;
    if let Some(refused) = session.refusal(&claims.project_id) {
        return Err(refused);
    }
    Ok((claims, session, now))
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

/// `POST /sessions/refresh` with `Authorization: Bearer <still-valid container token>`: a new token
/// while the session is live, its project exists and snapshot hydration is on; never past the
/// session's end.
pub(crate) async fn refresh_session(
    req: Request,
    cfg: &Config,
    log: &mut RequestLog,
) -> Result<Response, AppError> {
    log.event_type = "session.refresh";
    let (claims, session, now) = live_container(&req, cfg, log, true).await?;
    let minted = token::mint_container(
        &cfg.jwt_secret,
        &claims.project_id,
        &claims.session_id,
        &claims.scope,
        now,
        token_lifetime(now, cfg.token_ttl, session.expires_at_secs()?),
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

#[derive(Serialize)]
struct SessionSnapshotResponse {
    snapshot: SnapshotInfo,
}

/// `POST /sessions/snapshot` with a container token of a live session: a fresh (or reused)
/// snapshot of the session's project, recorded on the session, for re-hydrating in place.
pub(crate) async fn session_snapshot(
    req: Request,
    cfg: &Config,
    log: &mut RequestLog,
) -> Result<Response, AppError> {
    log.event_type = "session.snapshot";
    let (claims, _, _) = live_container(&req, cfg, log, false).await?;
    let snapshot = ensure_snapshot(cfg, &claims.project_id, log).await?;
    let sb = Supabase::new(&cfg.supabase_url, &cfg.service_key);
    let recorded: bool = sb
        .rpc(
            "record_session_snapshot",
            &json!({
                "session_id": claims.session_id,
                "snapshot_id": snapshot.snapshot_id,
                "as_of_seq": snapshot.as_of_seq,
            }),
        )
        .await?;
    if !recorded {
        // Ended or expired while the snapshot was being cut: hand out nothing.
        return Err(AppError::Session {
            status: 401,
            code: "session_ended",
            message: format!(
                "session {} ended while its snapshot was being prepared",
                claims.session_id
            ),
        });
    }
    json_response(&SessionSnapshotResponse { snapshot })
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
    fn route_names_are_not_session_ids() {
        for reserved in RESERVED_SESSION_IDS {
            let e = parse_session_id(reserved).unwrap_err();
            assert_eq!(e.status(), 400);
            assert!(e.to_string().contains("route name"), "{e}");
        }
        assert!(parse_session_id("refresh-2").is_ok());
    }

    #[test]
    fn max_age_defaults_to_the_cap_and_stays_within_it() {
        assert_eq!(session_max_age(None, 43_200).unwrap(), 43_200);
        assert_eq!(session_max_age(Some(2), 43_200).unwrap(), 2);
        assert_eq!(session_max_age(Some(43_200), 43_200).unwrap(), 43_200);
        for bad in [0, -5, 43_201] {
            let e = session_max_age(Some(bad), 43_200).unwrap_err();
            assert_eq!(e.status(), 400);
            assert!(e.to_string().contains("SESSION_MAX_AGE"), "{e}");
        }
    }

    #[test]
    fn a_token_never_outlives_its_session() {
        assert_eq!(token_lifetime(1_000, 900, 100_000), 900);
        assert_eq!(token_lifetime(1_000, 900, 1_300), 300);
        assert_eq!(token_lifetime(1_000, 900, 1_001), 1);
    }

    #[test]
    fn session_ids_in_paths_are_percent_decoded() {
        assert_eq!(percent_decode("a%3Ab").as_deref(), Some("a:b"));
        assert_eq!(percent_decode("plain-id").as_deref(), Some("plain-id"));
        assert_eq!(percent_decode("50%").as_deref(), Some("50%"));
        assert_eq!(percent_decode("%FF"), None);
    }

    fn state(live: bool, reason: Option<&str>, hydration: Option<bool>) -> SessionState {
        SessionState {
            live,
            reason: reason.map(str::to_owned),
            session_id: "s-1".into(),
            project_id: Some("p".into()),
            expires_at: Some("2025-11-26T21:15:00.123456+00:00".into()),
            ended_at: Some("2025-11-26T10:00:00+00:00".into()),
            ended_reason: Some("container stopped".into()),
            hydration_enabled: hydration,
        }
    }

    #[test]
    fn refusals_name_why_with_their_status_and_code() {
        assert!(state(true, None, Some(true)).refusal("p").is_none());
        let cases = [
            (
                state(false, Some("session_ended"), Some(true)),
                401,
                "session_ended",
                "container stopped",
            ),
            (
                state(false, Some("session_expired"), Some(true)),
                401,
                "session_expired",
                "maximum age",
            ),
            (
                state(false, Some("session_unknown"), None),
                401,
                "session_unknown",
                "unknown",
            ),
            (
                state(false, Some("project_not_found"), None),
                404,
                "project_not_found",
                "no longer exists",
            ),
            (
                state(true, None, Some(false)),
                403,
                "feature_disabled",
                HYDRATION_FLAG,
            ),
        ];
        for (s, status, code, says) in cases {
            let e = s.refusal("p").expect("refused");
            assert_eq!((e.status(), e.kind()), (status, code));
            assert!(e.to_string().contains(says), "{code}: {e}");
            assert!(
                e.to_string().contains("s-1") || code == "project_not_found",
                "{e}"
            );
        }
    }

    #[test]
    fn session_expiry_is_read_from_postgres_json() {
        assert_eq!(
            state(true, None, Some(true)).expires_at_secs().unwrap(),
            DateTime::parse_from_rfc3339("2025-11-26T21:15:00Z")
                .unwrap()
                .timestamp()
        );
        let mut bad = state(true, None, Some(true));
        bad.expires_at = None;
        assert_eq!(bad.expires_at_secs().unwrap_err().status(), 502);
    }

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_764_148_500), "2025-11-26T09:15:00Z");
    }
}
