//! Re-hydrating in place: an agent whose position the change log no longer holds (the events
//! after it were pruned) asks the edge for a fresh snapshot (`POST /sessions/snapshot`), brings
//! the folder to it without a restart (untracked files untouched, unchanged files not rewritten,
//! the `--exec` child still running) and follows on from the snapshot's seq.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::edge::start_edge;
use common::{bounded, converge_beside, env, start};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

/// Removes the change log's events of the project up to `through`, as retention does.
async fn prune(e: &common::Env, through: u64) -> u64 {
    e.db.admin()
        .execute(
            "delete from public.project_events where project_id = $1::text::uuid and seq <= $2",
            &[&e.project, &(through as i64)],
        )
        .await
        .unwrap()
}

/// Four edits the agent misses (realtime drops them), then retention prunes the log up to the
/// third: the agent's position (`position`) is behind the oldest event kept. Catch-ups are
/// blocked meanwhile (list_project_events renamed away: they fail and are retried), so that a
/// position check cannot fetch the edits before the prune.
async fn edits_then_prune(e: &common::Env, position: u64) {
    let rename =
        |from: &str, to: &str| format!("alter function public.{from}(json) rename to {to}");
    e.db.admin()
        .batch_execute(&rename(
            "list_project_events",
            "list_project_events_blocked",
        ))
        .await
        .unwrap();
    e.admin("/admin/v1/faults/pause-delivery", json!({"mode": "drop"}))
        .await;
    e.upsert("change.txt", "version 2").await;
    e.delete("gone.txt").await;
    e.upsert("new/file.txt", "created while pruned").await;
    e.rename("dir/a.txt", "moved.txt").await;
    e.dropped(4).await;
    assert!(prune(e, position + 3).await >= 3);
    e.db.admin()
        .batch_execute(&rename(
            "list_project_events_blocked",
            "list_project_events",
        ))
        .await
        .unwrap();
    e.admin("/admin/v1/faults/resume-delivery", json!({})).await;
}

async fn seed(e: &common::Env) {
    e.upsert("keep.txt", "never changes").await;
    e.upsert("change.txt", "version 1").await;
    e.upsert("gone.txt", "deleted later").await;
    e.upsert("dir/a.txt", "renamed later").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pruned_position_rehydrates_in_place_without_a_restart() {
    bounded(180, async {
        let e = Arc::new(env().await);
        seed(&e).await;
        let snap = e.snapshot().await;
        let edge = start_edge(e.clone(), 3600).await;
        // The first snapshot request fails: the agent retries with backoff.
        edge.state.snapshot_failures.store(1, Ordering::SeqCst);
        let mut config = e.config(&snap);
        config.edge_url = Some(edge.url.clone());
        let container = e.tmp.path().join("container");
        config.exec = Some(
            "echo $$ >> ../exec.starts; trap 'exit 0' TERM; while :; do sleep 0.05; done".into(),
        );
        let agent = start(config).await;
        agent.ready(WAIT).await;
        common::eventually(WAIT, || container.join("exec.starts").exists()).await;

        let target = e.target();
        let untracked: BTreeMap<String, Vec<u8>> = [
            ("notes.local".to_owned(), b"the developer's notes".to_vec()),
            ("dir/cache.bin".to_owned(), b"a dev server's cache".to_vec()),
        ]
        .into();
        for (p, c) in &untracked {
            std::fs::write(target.join(p), c).unwrap();
        }
        let keep = std::fs::metadata(target.join("keep.txt")).unwrap();
        let position = agent.m().last_applied_seq;

        edits_then_prune(&e, position).await;
        // The next edit is delivered: its gap sends the agent to the log, which no longer holds
        // what follows the agent's position.
        e.upsert("after.txt", "delivered").await;

        common::eventually(WAIT, || agent.m().rehydrations == 1).await;
        let last = e.server_seq().await;
        agent.caught_up_to(last, WAIT).await;
        converge_beside(&e, &untracked, WAIT).await;
        agent
            .health_until(WAIT, |status, body| {
                status == 200 && body["state"] == "ready"
            })
            .await;

        assert!(!agent.task.is_finished(), "the agent never stopped");
        let starts = std::fs::read_to_string(container.join("exec.starts")).unwrap();
        assert_eq!(
            starts.lines().count(),
            1,
            "the --exec child was started once"
        );
        let pid: i32 = starts.trim().parse().unwrap();
        // SAFETY: kill(2) with signal 0 only checks that the process exists.
        assert_eq!(
            unsafe { libc::kill(pid, 0) },
            0,
            "the --exec child still runs"
        );
        let now = std::fs::metadata(target.join("keep.txt")).unwrap();
        assert_eq!(
            (now.ino(), now.mtime_nsec(), now.mtime()),
            (keep.ino(), keep.mtime_nsec(), keep.mtime()),
            "a file the snapshot holds unchanged is not rewritten"
        );
        let lines = agent.logs.lines();
        let of = |t: &str| -> Vec<&serde_json::Value> {
            lines.iter().filter(|l| l["event_type"] == t).collect()
        };
        assert_eq!(of("rehydrate.start").len(), 1);
        assert_eq!(of("rehydrate.retry").len(), 1, "the injected 503, retried");
        let applied = of("rehydrate.applied");
        assert_eq!(applied.len(), 1);
        let a = applied[0];
        assert_eq!(a["previous_seq"], position);
        // change.txt, new/file.txt, moved.txt (and after.txt, if its commit made the cut)
        // written; gone.txt and dir/a.txt deleted; keep.txt kept.
        assert!(a["written"].as_u64().unwrap() >= 3, "{a}");
        assert_eq!(
            (a["deleted"].as_u64(), a["failed"].as_u64()),
            (Some(2), Some(0)),
            "{a}"
        );
        assert!(a["kept"].as_u64().unwrap() >= 1, "{a}");
        assert_eq!(edge.calls_to("/sessions/snapshot"), 2);
        let m = agent.m();
        assert_eq!((m.rehydrations, m.apply_errors), (1, 0));
        let (_, metrics) = agent.get("/metrics").await;
        assert!(
            metrics.contains("hydrate_rehydrations_total 1\n"),
            "{metrics}"
        );

        // Following goes on from the snapshot's seq.
        e.upsert("change.txt", "version 3").await;
        e.delete("moved.txt").await;
        agent.caught_up_to(e.server_seq().await, WAIT).await;
        converge_beside(&e, &untracked, WAIT).await;
        assert!(!agent.task.is_finished());
        agent.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_edge_url_a_pruned_position_stops_the_agent_with_a_clear_message() {
    bounded(120, async {
        let e = env().await;
        seed(&e).await;
        let snap = e.snapshot().await;
        let mut config = e.config(&snap);
        config.edge_url = None;
        let agent = start(config).await;
        agent.ready(WAIT).await;
        let position = agent.m().last_applied_seq;
        edits_then_prune(&e, position).await;
        e.upsert("after.txt", "delivered").await;
        let err = tokio::time::timeout(WAIT, agent.task)
            .await
            .expect("the agent stops")
            .unwrap()
            .expect_err("it cannot re-hydrate");
        let msg = format!("{err:#}");
        assert!(
            msg.contains("cannot bring this folder up to date")
                && msg.contains("re-hydrating in place needs EDGE_URL"),
            "{msg}"
        );
    })
    .await;
}

/// A snapshot the log cannot follow on from (older than its oldest kept event) sends the agent
/// back to the edge, with backoff rather than in a tight loop; a fresh one ends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_older_than_the_log_is_asked_for_again_with_backoff() {
    bounded(120, async {
        let e = Arc::new(env().await);
        seed(&e).await;
        let snap = e.snapshot().await;
        let edge = start_edge(e.clone(), 3600).await;
        *edge.state.stale_snapshot.lock().unwrap() = Some(snap.clone());
        let mut config = e.config(&snap);
        config.edge_url = Some(edge.url.clone());
        let agent = start(config).await;
        agent.ready(WAIT).await;
        let position = agent.m().last_applied_seq;
        edits_then_prune(&e, position).await;
        e.upsert("after.txt", "delivered").await;

        common::eventually(WAIT, || agent.m().rehydrations >= 5).await;
        *edge.state.stale_snapshot.lock().unwrap() = None;
        agent.caught_up_to(e.server_seq().await, WAIT).await;
        converge_beside(&e, &BTreeMap::new(), WAIT).await;

        let starts: Vec<chrono::DateTime<chrono::FixedOffset>> = agent
            .logs
            .lines()
            .iter()
            .filter(|l| l["event_type"] == "rehydrate.start")
            .map(|l| chrono::DateTime::parse_from_rfc3339(l["ts"].as_str().unwrap()).unwrap())
            .collect();
        // The 2nd, 3rd and 4th repeat wait at least 125, 250 and 500 ms (core's backoff, jittered
        // down to half at most) before asking the edge.
        let spread = starts[4] - starts[0];
        assert!(
            spread >= chrono::TimeDelta::milliseconds(875),
            "five re-hydrations within {spread}"
        );
        assert!(!agent.task.is_finished());
        agent.stop().await;
    })
    .await;
}
