//! Hydration and deltas: the hydrated folder equals list_current_files byte for byte (unicode
//! paths, an empty file, a binary), then every kind of write shows up.

mod common;

use std::time::Duration;

use common::{bounded, converge, env, start};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hydrates_byte_for_byte_then_follows_every_kind_of_write() {
    bounded(120, async {
        let e = env().await;
        let app_v1 = "export default function App() {\n  return <h1>héllo</h1>;\n}\n".repeat(20);
        e.upsert("src/App.tsx", &app_v1).await;
        e.upsert(
            "docs/ünïcødé/日本語 ファイル.md",
            "# 見出し\n\nΚαλημέρα 🌍\n",
        )
        .await;
        e.upsert("empty.txt", "").await;
        e.upsert("old/name.ts", "export const n = 1;\n").await;
        e.upsert("data/big.json", &"x".repeat(100_000)).await;
        let png: Vec<u8> = b"\x89PNG\r\n\x1a\n"
            .iter()
            .copied()
            .chain((0..3000u32).map(|i| (i * 31 % 256) as u8))
            .collect();
        e.binary("public/logo.png", "blobs/logo.png", &png).await;
        let snap = e.snapshot().await;
        // Committed after the cut and before the agent starts: the join's catch-up brings it.
        e.upsert("src/App.tsx", "export default () => null;\n")
            .await;

        let agent = start(e.config(&snap)).await;
        assert_eq!(
            agent.get("/healthz").await.0,
            503,
            "not ready before hydration"
        );
        agent.ready(WAIT).await;
        converge(&e, WAIT).await;
        assert!(!agent.m().resumed);
        assert_eq!(agent.m().start_seq, snap.as_of_seq);
        let (status, body) = agent.get("/healthz").await;
        let health: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (status, &health["state"]),
            (200, &serde_json::json!("ready"))
        );
        assert_eq!(health["reasons"], serde_json::json!([]));
        assert_eq!(health["applied_seq"], e.server_seq().await);
        let (status, metrics) = agent.get("/metrics").await;
        assert_eq!(status, 200);
        for name in [
            "# TYPE hydrate_seconds gauge",
            "# TYPE events_applied_total counter",
            "# TYPE event_lag_seconds histogram",
            "# TYPE catchups_total counter",
            "# TYPE reconnects_total counter",
            "# TYPE skipped_writes_total counter",
        ] {
            assert!(metrics.contains(name), "{name} in\n{metrics}");
        }

        // Every kind of write, live.
        let big_v2 = format!("{{\"data\":\"{}\"}}", "y".repeat(90_000));
        e.upsert("src/App.tsx", "export default () => <main/>;\n")
            .await; // inline update
        e.upsert("data/big.json", &big_v2).await; // content_omitted
        e.upsert("src/new/deep/file.ts", "export {};\n").await; // create, nested
        e.upsert("empty.txt", "no longer empty").await;
        e.delete("docs/ünïcødé/日本語 ファイル.md").await;
        e.rename("old/name.ts", "new/ñame.ts").await;
        e.bulk(json!([
            {"file_path": "bulk/a.ts", "content": "a"},
            {"file_path": "bulk/b.ts", "content": "b".repeat(70_000)},
            {"file_path": "src/App.tsx", "content": "export default () => <div/>;\n"},
            {"file_path": "src/new/deep/file.ts", "delete": true},
        ]))
        .await;
        e.upsert("empty.txt", "").await;
        let last = e.server_seq().await;
        agent.caught_up_to(last, WAIT).await;
        converge(&e, WAIT).await;
        let have = common::tree(&e.target());
        assert!(!have.contains_key("old/name.ts") && have.contains_key("new/ñame.ts"));
        assert!(
            !e.target().join("old").exists(),
            "emptied folders are removed"
        );
        assert!(!e.target().join("docs").exists());
        assert_eq!(have["data/big.json"], big_v2.as_bytes());
        assert_eq!(have["empty.txt"], b"");
        assert_eq!(have["public/logo.png"], png);

        let m = agent.m();
        assert_eq!(
            m.events_applied,
            last - snap.as_of_seq,
            "every event after the cut applied exactly once"
        );
        assert_eq!(
            m.files_moved, 1,
            "the rename moved the file already on disk"
        );
        assert_eq!(m.apply_errors, 0);
        assert!(m.hydrate_seconds > 0.0);

        // Logs: one JSON object per line, with ids; never a token or a signed URL's query.
        let token = e.container_token(3600).0;
        let text = agent.logs.text();
        assert!(!text.contains(&token[..40]), "no token in logs");
        assert!(!text.contains("token="), "no signed-URL token in logs");
        let lines = agent.logs.lines();
        let applied: Vec<_> = lines
            .iter()
            .filter(|l| l["event_type"] != "" && l["seq"].is_u64() && l["duration_ms"].is_number())
            .collect();
        assert!(!applied.is_empty());
        assert!(lines.iter().all(
            |l| l["project_id"] == e.project.as_str() && l["session_id"] == e.session.as_str()
        ));
        assert!(lines.iter().any(|l| l["event_type"] == "ready"));
        match agent.stop().await {
            fs_sync_hydrate::Outcome::Stopped => {}
            other => panic!("{other:?}"),
        }
    })
    .await;
}

/// A binary changed after the snapshot reaches the container: the container token may read its
/// own project's folder of the project-assets bucket (migrations/…090900_fsync-storage.sql).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_changes_after_the_snapshot_are_fetched_from_storage() {
    bounded(120, async {
        let e = env().await;
        e.binary("img/a.png", "blobs/a-v1.png", b"\x89PNG v1").await;
        let snap = e.snapshot().await;
        let agent = start(e.config(&snap)).await;
        agent.ready(WAIT).await;
        converge(&e, WAIT).await;

        e.binary("img/a.png", "blobs/a-v2.png", b"\x89PNG v2 bytes")
            .await;
        e.upsert("after.txt", "later edits still flow").await;
        let last = e.server_seq().await;
        agent.caught_up_to(last, WAIT).await;
        converge(&e, WAIT).await;
        let have = common::tree(&e.target());
        assert_eq!(have["img/a.png"], b"\x89PNG v2 bytes");
        assert_eq!(agent.m().binary_fetch_failures, 0);
        agent.stop().await;
    })
    .await;
}
