//! The agent's HTTP server (axum): `GET /healthz` (200 once ready, else 503) and `GET /metrics`.
//! HEAD works wherever GET does; any other method is refused with 405.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, Method, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, MethodRouter};
use axum::Router;
use tokio::net::TcpListener;

use crate::metrics::Metrics;

/// Serves until the task is aborted (the agent's run ends).
pub(crate) async fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    // axum::serve retries failed accepts itself and only returns if serving cannot go on; the
    // agent keeps syncing without its endpoint then, as it always has.
    let _ = axum::serve(listener, router(metrics)).await;
}

fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/healthz", only_get(get(healthz)))
        .route("/metrics", only_get(get(prometheus)))
        .fallback(not_found)
        .with_state(metrics)
}

fn only_get(route: MethodRouter<Arc<Metrics>>) -> MethodRouter<Arc<Metrics>> {
    route.fallback(|| async { (StatusCode::METHOD_NOT_ALLOWED, "use GET\n") })
}

async fn healthz(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    if metrics.is_ready() {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "hydrating\n")
    }
}

async fn prometheus(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
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
    use super::*;

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
        let server = tokio::spawn(serve(listener, metrics.clone()));

        assert_eq!(
            request(addr, "GET", "/healthz").await,
            (503, "hydrating\n".into())
        );
        metrics.set_ready(0.5);
        assert_eq!(
            request(addr, "GET", "/healthz?x=1").await,
            (200, "ok\n".into())
        );
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
