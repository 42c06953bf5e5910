//! fs-sync-dev latency benchmark (not a test).
//!
//! - RPC round trip of a 1 KiB `upsert_project_file` on loopback (a user's token, rate limit
//!   off, keep-alive HTTP/1.1 client), sequential.
//! - Commit → client delivery of the resulting broadcast to 1 and to 100 websocket
//!   subscribers (vsn 2.0.0, private channel): from the transaction's commit timestamp
//!   (`pg_xact_commit_timestamp`, the ephemeral cluster runs with `track_commit_timestamp=on`)
//!   to the wall-clock moment each subscriber has decoded the frame; same machine, same clock.
//!
//! `cargo run --release -p fs-sync-dev --example devstack_bench [-- N]` (N writes, default 500).

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(name: &str, mut v: Vec<f64>) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{name:<44} n={:<6} p50={:>7.3} ms  p99={:>7.3} ms  max={:>7.3} ms",
        v.len(),
        percentile(&v, 0.5),
        percentile(&v, 0.99),
        v[v.len() - 1]
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(500);
    let stack = fs_sync_dev::DevStack::start(fs_sync_dev::Options {
        port: 0,
        request_log: false,
        ..Default::default()
    })
    .await?;
    let info = stack.info().clone();
    let http = reqwest::Client::new();
    let admin = |path: &str, body: Value| {
        let req = http
            .post(format!("{}/admin/v1/{path}", info.api_url))
            .header("apikey", &info.service_role_key)
            .bearer_auth(&info.service_role_key)
            .json(&body);
        async move { req.send().await?.error_for_status()?.json::<Value>().await }
    };
    let user = admin("users", json!({})).await?;
    let uid = user["id"].as_str().unwrap().to_owned();
    let project = admin("projects", json!({"owner_id": uid})).await?["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A token that outlives the run; rate limiting off so the writes are not throttled.
    let token = admin("token", json!({"user_id": uid, "expires_in": 86400})).await?["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (db, conn) = tokio_postgres::connect(&info.db_url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    db.batch_execute("update fsync.settings set value = 'false' where key = 'rate_limit.enabled'")
        .await?;

    let content_base = "x".repeat(1024 - 16);
    let mut counter = 0u64;
    let mut upsert = || {
        counter += 1;
        let body = json!({
            "project_uuid": project,
            "p_file_path": format!("bench/f{}.ts", counter % 50),
            "p_content": format!("{content_base}{counter:016}"),
        });
        let req = http
            .post(format!("{}/rest/v1/rpc/upsert_project_file", info.api_url))
            .header("apikey", &info.anon_key)
            .bearer_auth(&token)
            .json(&body);
        async move {
            let r = req.send().await?;
            anyhow::ensure!(r.status() == 200, "upsert: {}", r.status());
            let v: Value = r.json().await?;
            Ok::<i64, anyhow::Error>(v["seq"].as_i64().unwrap_or(0))
        }
    };

    // Warm up (connections, statement caches).
    for _ in 0..50 {
        upsert().await?;
    }
    let mut rtt = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        upsert().await?;
        rtt.push(t.elapsed().as_secs_f64() * 1e3);
    }
    report("RPC upsert_project_file 1 KiB round trip", rtt);

    for subscribers in [1usize, 100] {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(i64, SystemTime)>();
        let mut joined = Vec::new();
        for _ in 0..subscribers {
            let url = format!(
                "{}/realtime/v1/websocket?apikey={}&vsn=2.0.0",
                info.api_url.replacen("http", "ws", 1),
                info.anon_key
            );
            let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
            let join = json!(["1", "1", format!("realtime:project:{project}"), "phx_join",
                {"config": {"private": true, "broadcast": {"self": false}}, "access_token": token}]);
            ws.send(Message::Text(join.to_string().into())).await?;
            // The join reply.
            loop {
                if let Some(Ok(Message::Text(t))) = ws.next().await {
                    let v: Value = serde_json::from_str(t.as_str())?;
                    anyhow::ensure!(v[4]["status"] == "ok", "join refused: {v}");
                    break;
                }
            }
            let tx = tx.clone();
            joined.push(tokio::spawn(async move {
                while let Some(Ok(m)) = ws.next().await {
                    if let Message::Binary(b) = m {
                        let at = SystemTime::now();
                        let (t, e, mlen) = (b[1] as usize, b[2] as usize, b[3] as usize);
                        let payload: Value =
                            serde_json::from_slice(&b[5 + t + e + mlen..]).unwrap();
                        let _ = tx.send((payload["seq"].as_i64().unwrap(), at));
                    }
                }
            }));
        }
        let writes = if subscribers == 1 { n } else { n / 5 };
        let mut received: Vec<(i64, SystemTime)> = Vec::with_capacity(writes * subscribers);
        let mut seqs = Vec::with_capacity(writes);
        for _ in 0..writes {
            let seq = upsert().await?;
            seqs.push(seq);
            let mut got = 0;
            while got < subscribers {
                let (s, at) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                    .await?
                    .expect("subscribers alive");
                if s == seq {
                    received.push((s, at));
                    got += 1;
                }
            }
        }
        let rows = db
            .query(
                "select e.seq, extract(epoch from pg_xact_commit_timestamp(e.xmin))::float8
                   from public.project_events e where e.project_id = $1::text::uuid and e.seq = any($2)",
                &[&project, &seqs],
            )
            .await?;
        let committed: HashMap<i64, f64> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        let lat: Vec<f64> = received
            .iter()
            .map(|(seq, at)| {
                let at = at.duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
                (at - committed[seq]) * 1e3
            })
            .collect();
        report(
            &format!("commit -> delivery, {subscribers} subscriber(s)"),
            lat,
        );
        for j in joined {
            j.abort();
        }
    }
    stack.shutdown().await;
    Ok(())
}
