//! Honest health: an agent stuck on a refused token, and one that falls behind the log, stop
//! answering 200 on /healthz within two intervals, say why, and (when the cause goes away)
//! become ready again.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use common::edge::start_edge;
use common::{bounded, converge, env, start};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);
const INTERVAL: Duration = Duration::from_secs(2);

fn has_reason(body: &Value, reason: &str) -> bool {
    body["reasons"]
        .as_array()
        .is_some_and(|r| r.iter().any(|p| p["reason"] == reason))
}

fn reason<'a>(body: &'a Value, reason: &str) -> &'a Value {
    body["reasons"]
        .as_array()
        .and_then(|r| r.iter().find(|p| p["reason"] == reason))
        .unwrap_or(&Value::Null)
}

/// As after the stack's keys changed: the edge hands out a token the stack refuses; the RPCs
/// answer 401 from then on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_shows_as_failing_within_two_intervals() {
    bounded(120, async {
        let e = Arc::new(env().await);
        e.upsert("a.txt", "1").await;
        let snap = e.snapshot().await;
        let edge = start_edge(e.clone(), 4).await;
        edge.state.refuse_new_tokens.store(true, Ordering::SeqCst);
        let mut config = e.config(&snap);
        config.sync_interval = INTERVAL;
        // A short-lived first token: it is refreshed (into a refused one) after 80% of its life.
        let (token, exp) = e.container_token(4);
        config.token = token;
        config.token_expires_at = Some(UNIX_EPOCH + Duration::from_secs(exp as u64));
        config.edge_url = Some(edge.url.clone());
        let agent = start(config).await;
        agent.ready(WAIT).await;
        agent
            .health_until(WAIT, |status, body| {
                status == 200 && body["state"] == "ready"
            })
            .await;

        common::eventually(WAIT, || {
            edge.state.refused_token_at.lock().unwrap().is_some()
        })
        .await;
        let refused_at = edge.state.refused_token_at.lock().unwrap().unwrap();
        let left = (2 * INTERVAL).saturating_sub(refused_at.elapsed());
        let body = agent
            .health_until(left, |status, body| {
                status == 503 && has_reason(body, "auth")
            })
            .await;
        assert_eq!(body["state"], "failing", "{body}");
        let auth = reason(&body, "auth");
        let detail = auth["detail"].as_str().unwrap();
        assert!(
            detail.contains("the RPCs refused the container token") && detail.contains("401"),
            "{body}"
        );
        assert!(auth["since"].as_str().unwrap().ends_with('Z'));

        let (_, metrics) = agent.get("/metrics").await;
        for line in [
            "hydrate_health_state{state=\"failing\"} 1\n",
            "hydrate_health_state{state=\"ready\"} 0\n",
            "hydrate_health_reason{reason=\"auth\"} 1\n",
        ] {
            assert!(metrics.contains(line), "{line:?} in\n{metrics}");
        }
        assert!(agent
            .logs
            .lines()
            .iter()
            .any(|l| l["event_type"] == "health.changed" && l["state"] == "failing"));

        // Good tokens again: the next refresh (or RPC) that works makes it ready.
        edge.state.refuse_new_tokens.store(false, Ordering::SeqCst);
        agent
            .health_until(WAIT, |status, body| {
                status == 200 && body["state"] == "ready"
            })
            .await;
        agent.stop().await;
    })
    .await;
}

/// Realtime delivery paused and catch-ups failing: the position check sees the server ahead by
/// more than --health-max-behind events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn falling_behind_by_more_than_n_shows_as_degraded_within_two_intervals() {
    bounded(120, async {
        let e = env().await;
        e.upsert("a.txt", "1").await;
        let snap = e.snapshot().await;
        let mut config = e.config(&snap);
        config.sync_interval = INTERVAL;
        config.health_max_behind = 3;
        let agent = start(config).await;
        agent.ready(WAIT).await;
        agent.health_until(WAIT, |status, _| status == 200).await;
        let applied = agent.m().last_applied_seq;

        let rename =
            |from: &str, to: &str| format!("alter function public.{from}(json) rename to {to}");
        e.db.admin()
            .batch_execute(&rename(
                "list_project_events",
                "list_project_events_blocked",
            ))
            .await
            .unwrap();
        e.admin("/admin/v1/faults/pause-delivery", json!({"mode": "hold"}))
            .await;
        for i in 0..5 {
            e.upsert(&format!("b{i}.txt"), "held back").await;
        }
        let written = tokio::time::Instant::now();
        let server = e.server_seq().await;
        let body = agent
            .health_until(2 * INTERVAL, |status, body| {
                status == 503 && has_reason(body, "behind")
            })
            .await;
        assert!(written.elapsed() < 2 * INTERVAL);
        assert_eq!(body["state"], "degraded", "{body}");
        assert_eq!(
            (body["server_seq"].as_u64(), body["applied_seq"].as_u64()),
            (Some(server), Some(applied))
        );
        let detail = reason(&body, "behind")["detail"].as_str().unwrap();
        assert!(
            detail.contains("5 events past") && detail.contains("more than 3"),
            "{body}"
        );
        let (_, metrics) = agent.get("/metrics").await;
        assert!(
            metrics.contains("hydrate_health_reason{reason=\"behind\"} 1\n"),
            "{metrics}"
        );
        assert!(
            metrics.contains("hydrate_health_state{state=\"degraded\"} 1\n"),
            "{metrics}"
        );

        // The log answers again and delivery resumes: caught up, ready.
        e.db.admin()
            .batch_execute(&rename(
                "list_project_events_blocked",
                "list_project_events",
            ))
            .await
            .unwrap();
        e.admin("/admin/v1/faults/resume-delivery", json!({})).await;
        agent.caught_up_to(server, WAIT).await;
        converge(&e, WAIT).await;
        agent
            .health_until(WAIT, |status, body| {
                status == 200 && body["state"] == "ready"
            })
            .await;
        agent.stop().await;
    })
    .await;
}
