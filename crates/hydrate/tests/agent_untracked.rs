//! Files the project does not track (a dev server's caches, `npm install`'s `node_modules`) are
//! never deleted and never stop the project's changes from applying, as git treats untracked
//! files.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{bounded, converge_beside, env, start};

const WAIT: Duration = Duration::from_secs(30);

/// Regression: when the project deleted a folder that also held a dev server's file and then
/// put a file of the same name there, the agent refused forever ("a folder of that name holds
/// other project files").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dev_server_writing_beside_the_project_never_blocks_it() {
    bounded(120, async {
        let e = env().await;
        e.upsert("lib/a.ts", "export const a = 1;\n").await;
        e.upsert("src/App.tsx", "app\n").await;
        let snap = e.snapshot().await;
        let mut config = e.config(&snap);
        // The dev server: writes caches among the project's folders, then serves until stopped.
        config.exec = Some(
            "mkdir -p lib/.cache node_modules/pkg src/.vite && echo cache > lib/.cache/x \
             && echo module > node_modules/pkg/index.js && echo deps > src/.vite/deps \
             && echo draft > notes.txt && echo up > .dev-ready && exec sleep 600"
                .into(),
        );
        let agent = start(config).await;
        agent.ready(WAIT).await;
        let ready = e.target().join(".dev-ready");
        common::eventually(WAIT, || ready.exists()).await;

        // The project removes lib/ and puts a file where the folder was, and creates a file the
        // dev server had made on its own.
        e.delete("lib/a.ts").await;
        e.upsert("lib", "now a file\n").await;
        e.upsert("notes.txt", "the project's notes\n").await;
        e.rename("src/App.tsx", "src/Main.tsx").await;
        e.delete("src/Main.tsx").await;

        let untracked: BTreeMap<String, Vec<u8>> = [
            ("node_modules/pkg/index.js", "module\n"),
            ("src/.vite/deps", "deps\n"),
            (".dev-ready", "up\n"),
        ]
        .into_iter()
        .map(|(p, c)| (p.to_owned(), c.as_bytes().to_vec()))
        .collect();
        agent.caught_up_to(e.server_seq().await, WAIT).await;
        converge_beside(&e, &untracked, WAIT).await;
        let m = agent.m();
        assert_eq!(m.apply_errors, 0, "{m:?}");
        assert_eq!(m.untracked_displaced, 2, "{m:?}");

        // What was in the way was moved aside, not deleted.
        let moved: Vec<serde_json::Value> = agent
            .logs
            .lines()
            .into_iter()
            .filter(|l| l["event_type"] == "untracked.displaced")
            .collect();
        let mut kept = BTreeMap::new();
        for l in &moved {
            let to = l["moved_to"].as_str().unwrap();
            assert!(to.starts_with(".fs-sync/displaced/"), "{l}");
            kept.insert(l["path"].as_str().unwrap().to_owned(), to.to_owned());
        }
        let read = |p: String| std::fs::read_to_string(e.target().join(p)).unwrap();
        assert_eq!(read(format!("{}/.cache/x", kept["lib"])), "cache\n");
        assert_eq!(read(kept["notes.txt"].clone()), "draft\n");
        assert!(matches!(
            agent.stop().await,
            fs_sync_hydrate::Outcome::ChildExited(_)
        ));
    })
    .await;
}
