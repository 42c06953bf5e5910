//! The agent's HTTP server (axum): `GET /healthz` and `GET /metrics`. HEAD works wherever GET
//! does; any other method is refused with 405.
//!
//! `/healthz` answers 200 with `{"state":"ready","reasons":[],…}` only while the agent is ready
//! and healthy, else 503 with `{"state":"degraded"|"failing","reasons":[{"reason","detail",
//! "since"}, …],…}` (see [`crate::health`]); `applied_seq` and `server_seq` come along.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, Method, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, MethodRouter};
use axum::Router;
use tokio::net::TcpListener;

use crate::health::{Monitor, State as Health};
use crate::metrics::Metrics;

#[derive(Clone)]
struct Shared {
    metrics: Arc<Metrics>,
    health: Arc<Monitor>,
}

/// Serves until the task is aborted (the agent's run ends).
pub(crate) async fn serve(listener: TcpListener, metrics: Arc<Metrics>, health: Arc<Monitor>) {
    // axum::serve retries failed accepts itself and only returns if serving cannot go on; the
    // agent keeps syncing without its endpoint then, as it always has.
    let _ = axum::serve(listener, router(Shared { metrics, health })).await;
}

fn router(shared: Shared) -> Router {
    Router::new()
        .route("/healthz", only_get(get(healthz)))
        .route("/metrics", only_get(get(prometheus)))
        .fallback(not_found)
        .with_state(shared)
}

fn only_get(route: MethodRouter<Shared>) -> MethodRouter<Shared> {
    route.fallback(|| async { (StatusCode::METHOD_NOT_ALLOWED, "use GET\n") })
}

async fn healthz(State(shared): State<Shared>) -> impl IntoResponse {
    let report = shared.health.report();
    let status = if report.state == Health::Ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(report.to_json()))
}

async fn prometheus(State(Shared { metrics, .. }): State<Shared>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, Metrics::CONTENT_TYPE)],
        metrics.render(),
    )
}

async fn not_found(method: Method) -> impl IntoResponse {
    if method == Method::GET || method == Method::HEAD {
        (
            StatusCode::NOT_FOUND,
            "not found: try /healthz or /metrics\n",
        )
    } else {
        (StatusCode::METHOD_NOT_ALLOWED, "use GET\n")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::health::{AuthSource, HealthConfig, Observation};

    async fn request(addr: std::net::SocketAddr, method: &str, path: &str) -> (u16, String) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let r = reqwest::Client::new()
            .request(method, format!("http://{addr}{path}"))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    #[tokio::test]
    async fn health_metrics_and_refusals() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let metrics = Arc::new(Metrics::default());
        let logger = crate::log::Logger::to_writer("p", "s", Box::new(std::io::sink()));
        let config = HealthConfig {
            realtime_intervals: 2,
            max_behind: 10,
        };
        let health = Monitor::new(config, metrics.clone(), logger);
        let server = tokio::spawn(serve(listener, metrics.clone(), health.clone()));

        let (status, body) = request(addr, "GET", "/healthz").await;
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!((status, &body["state"]), (503, &json!("degraded")));
        assert_eq!(body["reasons"][0]["reason"], "hydrating");
        health.observe(Observation::Joined);
        health.observe(Observation::Hydrated);
        metrics.set_ready(0.5);
        let (status, body) = request(addr, "GET", "/healthz?x=1").await;
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(status, 200);
        assert_eq!(body["state"], "ready");
        assert_eq!(body["reasons"], json!([]));
        // Ready once does not mean ready now.
        health.observe(Observation::AuthRefused(AuthSource::Rpc, "HTTP 401".into()));
        health.tick();
        let (status, body) = request(addr, "GET", "/healthz").await;
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!((status, &body["state"]), (503, &json!("failing")));
        assert_eq!(body["reasons"][0]["reason"], "auth");
        assert!(metrics
            .render()
            .contains("hydrate_health_state{state=\"failing\"} 1\n"));
        health.observe(Observation::AuthOk(AuthSource::Rpc));
        assert_eq!(
            request(addr, "HEAD", "/healthz").await,
            (200, String::new())
        );
        let r = reqwest::get(format!("http://{addr}/metrics"))
            .await
            .unwrap();
        assert_eq!(
            r.headers()[reqwest::header::CONTENT_TYPE],
            "text/plain; version=0.0.4; charset=utf-8"
        );
        assert!(r
            .text()
            .await
            .unwrap()
            .contains("# TYPE hydrate_ready gauge\nhydrate_ready 1\n"));
        assert_eq!(request(addr, "GET", "/nope").await.0, 404);
        assert_eq!(
            request(addr, "POST", "/metrics").await,
            (405, "use GET\n".into())
        );
        assert_eq!(request(addr, "DELETE", "/nope").await.0, 405);
        server.abort();
    }
}
