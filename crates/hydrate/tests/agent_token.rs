//! Token refresh: a short-lived container token is renewed through the edge's
//! `POST /sessions/refresh` before it expires; the channel and the RPCs keep working.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{bounded, converge, env, start};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A stand-in for fs-sync-edge's refresh route, answering as edge/src/handlers.rs does.
async fn fake_edge(e: Arc<common::Env>, ttl: i64, seen: Arc<Mutex<Vec<String>>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 8192];
            let mut n = 0;
            while !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                n += s.read(&mut buf[n..]).await.unwrap();
            }
            let req = String::from_utf8_lossy(&buf[..n]).into_owned();
            let auth = req
                .lines()
                .find_map(|l| {
                    l.strip_prefix("authorization: ")
                        .or(l.strip_prefix("Authorization: "))
                })
                .unwrap_or("")
                .trim()
                .to_owned();
            seen.lock()
                .unwrap()
                .push(format!("{} {auth}", req.lines().next().unwrap()));
            let (token, exp) = e.container_token(ttl);
            let exp = chrono::DateTime::from_timestamp(exp, 0)
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let body = json!({
                "sessionId": e.session, "projectId": e.project, "token": token, "expiresAt": exp,
                "env": {"REALTIME_TOKEN": token, "TOKEN_EXPIRES_AT": exp},
            })
            .to_string();
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(resp.as_bytes()).await;
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_is_refreshed_through_the_edge_before_it_expires() {
    bounded(120, async {
        let e = Arc::new(env().await);
        e.upsert("a.txt", "1").await;
        let snap = e.snapshot().await;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let edge = fake_edge(e.clone(), 3, seen.clone()).await;
        let mut config = e.config(&snap);
        let (token, exp) = e.container_token(3);
        config.token = token.clone();
        config.token_expires_at = Some(std::time::UNIX_EPOCH + Duration::from_secs(exp as u64));
        config.edge_url = Some(edge);
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
        let seen = seen.lock().unwrap().clone();
        assert!(seen[0].starts_with("POST /sessions/refresh "), "{seen:?}");
        assert_eq!(seen[0].split(' ').nth(3), Some("Bearer"));
        assert!(
            seen[0].ends_with(&token),
            "the first refresh presents the original token"
        );
        assert!(!agent.logs.text().contains(&token[..40]));
        agent.stop().await;
    })
    .await;
}
