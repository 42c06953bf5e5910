//! The heads a hydration leaves carry each file's stamp (size, mtime) as a `stat` of the file
//! returns, taken by the extraction itself rather than by a second pass over the tree: a restart
//! trusts exactly these stamps instead of hashing the file.

mod common;

use std::time::{Duration, UNIX_EPOCH};

use common::{bounded, converge, env, start};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hydrated_heads_carry_the_stamp_a_stat_returns() {
    bounded(120, async {
        let e = env().await;
        e.upsert("src/App.tsx", "export default () => null;\n")
            .await;
        e.upsert("empty.txt", "").await;
        // Over core's small-file threshold (256 KiB): streamed to disk by the reading thread.
        e.upsert("data/large.json", &"x".repeat(300_000)).await;
        let many: Vec<Value> = (0..300)
            .map(|i| {
                json!({"file_path": format!("src/m{}/f{i}.ts", i % 7),
                            "content": format!("export const v{i} = {i};\n")})
            })
            .collect();
        e.bulk(json!(many)).await;
        let snap = e.snapshot().await;
        let config = e.config(&snap);
        let state_path = fs_sync_hydrate::state_file(&config.state_dir, &config.project_id);

        let agent = start(config).await;
        agent.ready(WAIT).await;
        converge(&e, WAIT).await;
        let lines = agent.logs.lines();
        let extracted = lines
            .iter()
            .find(|l| l["event_type"] == "snapshot.extracted")
            .expect("a snapshot.extracted line");
        for field in [
            "duration_ms",
            "extract_ms",
            "extract_user_ms",
            "extract_sys_ms",
            "heads_ms",
        ] {
            assert!(extracted[field].is_number(), "{field} in {extracted}");
        }
        agent.stop().await;

        let state: Value = serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
        let heads = state["heads"]
            .as_object()
            .expect("heads in the saved state");
        assert_eq!(heads.len(), 303, "{state}");
        for (path, head) in heads {
            let meta = std::fs::metadata(e.target().join(path)).unwrap();
            let mtime_ns = meta
                .modified()
                .unwrap()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64;
            assert_eq!(
                (head["size"].as_u64(), head["mtime_ns"].as_u64()),
                (Some(meta.len()), Some(mtime_ns)),
                "{path}: {head}"
            );
        }
    })
    .await;
}
