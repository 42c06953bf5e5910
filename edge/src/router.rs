//! Method + path → handler. A `match` rather than `worker::Router`: each handler fills in the
//! request's [`RequestLog`], which a shared, immutable route context cannot carry.

use worker::{Env, Method, Request, Response};

use crate::config::Config;
use crate::error::AppError;
use crate::handlers;
use crate::log::RequestLog;

/// Routes one request.
pub(crate) async fn route(
    req: Request,
    env: &Env,
    log: &mut RequestLog,
) -> Result<Response, AppError> {
    let path = req.path();
    let method = req.method();
    match (path.trim_end_matches('/'), method) {
        ("" | "/health", Method::Get) => {
            log.event_type = "health";
            handlers::json_response(&serde_json::json!({ "service": "fs-sync-edge", "ok": true }))
        }
        ("/build-project-snapshot", Method::Post) => {
            let cfg = Config::from_env(env)?;
            handlers::build_project_snapshot(req, &cfg, log).await
        }
        ("/sessions", Method::Post) => {
            let cfg = Config::from_env(env)?;
            handlers::create_session(req, &cfg, log).await
        }
        ("/sessions/refresh", Method::Post) => {
            let cfg = Config::from_env(env)?;
            handlers::refresh_session(req, &cfg, log).await
        }
        ("/build-project-snapshot" | "/sessions" | "/sessions/refresh", _) => {
            log.event_type = "unrouted";
            Err(AppError::MethodNotAllowed(format!(
                "{path} accepts POST only"
            )))
        }
        _ => {
            log.event_type = "unrouted";
            Err(AppError::NotFound(format!("no route for {path}")))
        }
    }
}
