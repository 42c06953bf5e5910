//! fs-sync-edge: the Cloudflare Worker (workers-rs) that cuts project snapshots and hands
//! sessions to preview containers.
//!
//! - `POST /build-project-snapshot {projectId}` (service role): the project's snapshot at its
//!   current change-log seq — reused from Storage when that exact state is stored, else built with
//!   fs-sync-core's deterministic [`fs_sync_core::SnapshotWriter`], streamed into Storage — and a
//!   signed download URL: `{snapshotId, signedUrl, expiresAt, sha256, size, asOfSeq, fileCount,
//!   reused}`. 409 when `FSYNC_SNAPSHOT_HYDRATION` is off for the project's owner; 413 when the
//!   archive would exceed the snapshot limit (50 MB, the bucket's), whatever the files' raw size.
//! - `POST /sessions {projectId, sessionId?}` (service role): the same snapshot plus a container
//!   token (HS256, role `fsync_container`, scope `fsync:read`, 15 min) returned as the container's
//!   env (docs/contracts.md "Container token and env").
//! - `POST /sessions/refresh` (a still-valid container token): a new token, same scope, while the
//!   session is live (fsync.sessions; never past its end).
//! - `DELETE /sessions/<id>` (service role): ends a session; `POST /sessions/snapshot` (a container
//!   token): a fresh snapshot for re-hydrating in place (docs/contracts.md "Sessions").
//!
//! Every request writes one JSON log line and, with the optional `FSYNC_ANALYTICS` binding, one
//! Workers Analytics Engine data point (docs/operations.md). The modules: `router` (dispatch),
//! `handlers`, `snapshot` (cut, build, store), `supabase` (PostgREST and Storage as the service
//! role), `token` (JWTs via jwt-compact), `config`, `error`, `log`. Build with
//! `scripts/build-edge.sh`; see edge/README.md for running and deploying.

mod config;
mod error;
mod handlers;
mod log;
mod router;
mod snapshot;
mod supabase;
mod token;

use worker::{console_log, event, Context, Env, Request, Response};

/// The Worker's fetch handler.
#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    let started = handlers::now_ms();
    let mut line = log::RequestLog {
        event_type: "unrouted",
        method: req.method().to_string(),
        path: req.path(),
        ..log::RequestLog::default()
    };
    let resp = match router::route(req, &env, &mut line).await {
        Ok(resp) => resp,
        Err(e) => {
            line.error = Some(e.kind());
            // The log keeps the internal text of a 500 (it never holds a secret).
            line.message = Some(e.to_string());
            e.to_response()
        }
    };
    line.status = resp.status_code();
    line.duration_ms = (handlers::now_ms() - started).max(0.0) as u64;
    line.wasm_memory_bytes = log::wasm_memory_bytes();
    if let Some(point) = line.data_point() {
        line.analytics_error = log::write_data_point(&env, &point).err();
    }
    console_log!("{}", line.to_line());
    Ok(resp)
}
