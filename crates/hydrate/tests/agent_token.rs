//! Token refresh: a short-lived container token is renewed through the edge's
//! `POST /sessions/refresh` before it expires; the channel and the RPCs keep working.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::edge::start_edge;
use common::{bounded, converge, env, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_is_refreshed_through_the_edge_before_it_expires() {
    bounded(120, async {
        let e = Arc::new(env().await);
        e.upsert("a.txt", "1").await;
        let snap = e.snapshot().await;
        let edge = start_edge(e.clone(), 3).await;
        let mut config = e.config(&snap);
        let (token, exp) = e.container_token(3);
        config.token = token.clone();
        config.token_expires_at = Some(std::time::UNIX_EPOCH + Duration::from_secs(exp as u64));
        config.edge_url = Some(edge.url.clone());
        let agent = start(config).await;
        agent.ready(Duration::from_secs(10)).await;

        // Two refreshes, and the first token expired: realtime would have closed the channel and
        // the RPCs would answer 401 without them.
        common::eventually(Duration::from_secs(30), || {
            agent.m().token_refreshes >= 2 && common::now() > exp
        })
        .await;
        e.upsert("a.txt", "2").await;
        e.upsert("b.txt", "after two refreshes").await;
        converge(&e, Duration::from_secs(10)).await;
        let m = agent.m();
        assert!(m.token_refreshes >= 2, "{m:?}");
        assert_eq!(m.reconnects, 0, "the channel took the new token in place");
        let calls = edge.state.calls.lock().unwrap().clone();
        assert_eq!(calls[0].0, "/sessions/refresh", "{calls:?}");
        assert_eq!(
            calls[0].1, token,
            "the first refresh presents the original token"
        );
        assert!(!agent.logs.text().contains(&token[..40]));
        agent.stop().await;
    })
    .await;
}
