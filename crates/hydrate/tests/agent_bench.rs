//! Not a test: numbers for the report. Run with
//! `cargo test -p fs-sync-hydrate --release --test agent_bench -- --ignored --nocapture`.
//! Cold start to ready for 200 and 2,000 files; edit→apply latency over 500 edits
//! (upsert RPC sent → event applied on disk, as seen through the agent's metrics).

mod common;

use std::time::{Duration, Instant};

use common::{env, start};
use serde_json::json;

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run explicitly"]
async fn bench_cold_start_and_edit_latency() {
    for files in [200usize, 2000] {
        let e = env().await;
        let batch: Vec<_> = (0..files)
            .map(|i| {
                json!({"file_path": format!("src/mod{}/file{i}.ts", i % 40),
                       "content": format!("export const v{i} = {i};\n").repeat(30)})
            })
            .collect();
        e.bulk(json!(batch)).await;
        let snap = e.snapshot().await;
        let t = Instant::now();
        let agent = start(e.config(&snap)).await;
        agent.ready(Duration::from_secs(60)).await;
        let wall = t.elapsed().as_secs_f64();
        println!(
            "cold start {files} files: ready in {:.3} s (hydrate_seconds {:.3})",
            wall,
            agent.m().hydrate_seconds
        );
        if files == 200 {
            let mut lat = Vec::new();
            for i in 0..500 {
                let t = Instant::now();
                let r = e
                    .upsert(
                        &format!("src/mod{}/file{}.ts", i % 40, i % 200),
                        &format!("edit {i}\n"),
                    )
                    .await;
                let seq = r["seq"].as_u64().unwrap();
                while agent.m().last_applied_seq < seq {
                    tokio::time::sleep(Duration::from_micros(200)).await;
                }
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            lat.sort_by(f64::total_cmp);
            println!(
                "edit→apply over 500 edits: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                pct(&lat, 0.5),
                pct(&lat, 0.99),
                lat[lat.len() - 1]
            );
        }
        agent.stop().await;
    }
}
