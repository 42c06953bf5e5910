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
        ("/sessions/snapshot", Method::Post) => {
            let cfg = Config::from_env(env)?;
            handlers::session_snapshot(req, &cfg, log).await
        }
        (
            "/build-project-snapshot" | "/sessions" | "/sessions/refresh" | "/sessions/snapshot",
            _,
        ) => {
            log.event_type = "unrouted";
            Err(AppError::MethodNotAllowed(format!(
                "{path} accepts POST only"
            )))
        }
        (p, Method::Delete) if session_path(p).is_some() => {
            let cfg = Config::from_env(env)?;
            let id = session_path(p).unwrap_or_default().to_owned();
            handlers::end_session(req, &cfg, log, &id).await
        }
        (p, _) if session_path(p).is_some() => {
            log.event_type = "unrouted";
            Err(AppError::MethodNotAllowed(format!(
                "{path} accepts DELETE only"
            )))
        }
        _ => {
            log.event_type = "unrouted";
            Err(AppError::NotFound(format!("no route for {path}")))
        }
    }
}

/// The `<id>` of `/sessions/<id>` (one non-empty segment).
fn session_path(path: &str) -> Option<&str> {
    path.strip_prefix("/sessions/")
        .filter(|id| !id.is_empty() && !id.contains('/'))
}

#[cfg(test)]
mod tests {
    use super::session_path;

    #[test]
    fn session_paths_have_one_segment() {
        assert_eq!(session_path("/sessions/abc"), Some("abc"));
        assert_eq!(session_path("/sessions/a%3Ab"), Some("a%3Ab"));
        assert_eq!(session_path("/sessions/"), None);
        assert_eq!(session_path("/sessions/a/b"), None);
        assert_eq!(session_path("/sessions"), None);
    }
}
