//! A stand-in for fs-sync-edge's container routes, answering as edge/src/handlers.rs does:
//! `POST /sessions/refresh` (a new container token) and `POST /sessions/snapshot` (a fresh
//! snapshot of the session's project, cut and signed as [`Env::snapshot`] does). Faults on
//! demand: refreshed tokens the stack refuses (as after its keys changed), and snapshot requests
//! answered 503 a given number of times.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;
use tokio::time::Instant;

use super::{Env, Snapshot};

pub struct Edge {
    pub url: String,
    pub state: Arc<EdgeState>,
}

pub struct EdgeState {
    env: Arc<Env>,
    /// Lifetime of refreshed tokens, seconds.
    ttl: i64,
    /// Refreshed tokens carry a signature the stack refuses.
    pub refuse_new_tokens: AtomicBool,
    /// When the first refused token was handed out.
    pub refused_token_at: Mutex<Option<Instant>>,
    /// Snapshot requests still to answer with 503.
    pub snapshot_failures: AtomicU32,
    /// Hand out this snapshot instead of a fresh one (e.g. one older than the log's oldest
    /// event, as a buggy edge might).
    pub stale_snapshot: Mutex<Option<Snapshot>>,
    /// `(path, bearer token)` of every request.
    pub calls: Mutex<Vec<(String, String)>>,
}

impl Edge {
    pub fn calls_to(&self, path: &str) -> usize {
        self.state
            .calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .count()
    }
}

pub async fn start_edge(env: Arc<Env>, ttl: i64) -> Edge {
    let state = Arc::new(EdgeState {
        env,
        ttl,
        refuse_new_tokens: AtomicBool::new(false),
        refused_token_at: Mutex::new(None),
        snapshot_failures: AtomicU32::new(0),
        stale_snapshot: Mutex::new(None),
        calls: Mutex::new(Vec::new()),
    });
    let app = Router::new()
        .route("/sessions/refresh", post(refresh))
        .route("/sessions/snapshot", post(snapshot))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Edge { url, state }
}

fn record(state: &EdgeState, path: &str, headers: &HeaderMap) -> Option<String> {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    state
        .calls
        .lock()
        .unwrap()
        .push((path.to_owned(), bearer.clone().unwrap_or_default()));
    bearer
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

async fn refresh(State(s): State<Arc<EdgeState>>, headers: HeaderMap) -> Response {
    if record(&s, "/sessions/refresh", &headers).is_none() {
        return error(StatusCode::UNAUTHORIZED, "unauthorized", "no bearer token");
    }
    let (mut token, exp) = s.env.container_token(s.ttl);
    if s.refuse_new_tokens.load(Ordering::SeqCst) {
        // Same claims, another signature: what a token signed with a rotated secret looks like.
        let cut = token.rfind('.').unwrap() + 1;
        token.truncate(cut);
        token.push_str("c2lnbmVkLXdpdGgtdGhlLW9sZC1zZWNyZXQ");
        s.refused_token_at
            .lock()
            .unwrap()
            .get_or_insert_with(Instant::now);
    }
    let exp = chrono::DateTime::from_timestamp(exp, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    Json(json!({
        "sessionId": s.env.session, "projectId": s.env.project, "token": token, "expiresAt": exp,
        "env": {"REALTIME_TOKEN": token, "TOKEN_EXPIRES_AT": exp},
    }))
    .into_response()
}

async fn snapshot(State(s): State<Arc<EdgeState>>, headers: HeaderMap) -> Response {
    if record(&s, "/sessions/snapshot", &headers).is_none() {
        return error(StatusCode::UNAUTHORIZED, "unauthorized", "no bearer token");
    }
    let left = s.snapshot_failures.load(Ordering::SeqCst);
    if left > 0 {
        s.snapshot_failures.store(left - 1, Ordering::SeqCst);
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_unavailable",
            "injected failure",
        );
    }
    let stale = s.stale_snapshot.lock().unwrap().clone();
    let snap = match stale {
        Some(snap) => snap,
        None => s.env.snapshot().await,
    };
    Json(json!({"snapshot": {
        "snapshotId": snap.sha256, "signedUrl": snap.url,
        "expiresAt": "2100-01-01T00:00:00Z", "sha256": snap.sha256, "size": 0,
        "asOfSeq": snap.as_of_seq, "fileCount": 0, "reused": false,
    }}))
    .into_response()
}
