//! Faults: events dropped (a gap, and a dropped last event), every websocket dropped mid-burst,
//! the agent killed and restarted. Each ends with the folder equal to the database, nothing
//! lost and nothing applied twice.

mod common;

use std::time::Duration;

use common::{bounded, converge, env, start};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_in_the_stream_is_caught_up_from_the_log() {
    bounded(120, async {
        let e = env().await;
        e.upsert("a.txt", "1").await;
        let snap = e.snapshot().await;
        let mut config = e.config(&snap);
        // No position check: only the gap can reveal the dropped events.
        config.sync_interval = Duration::from_secs(3600);
        let agent = start(config).await;
        agent.ready(WAIT).await;

        e.admin("/admin/v1/faults/pause-delivery", json!({"mode": "drop"}))
            .await;
        e.upsert("b.txt", "dropped 1").await;
        e.upsert("a.txt", "dropped 2").await;
        e.delete("b.txt").await;
        // Delivery mode applies when the stack fans a message out, just after commit.
        tokio::time::sleep(Duration::from_millis(300)).await;
        e.admin("/admin/v1/faults/resume-delivery", json!({})).await;
        e.upsert("c.txt", "delivered").await;
        let last = e.server_seq().await;
        agent.caught_up_to(last, WAIT).await;
        converge(&e, WAIT).await;
        common::eventually(WAIT, || agent.m().catchups == 1).await;
        let m = agent.m();
        assert_eq!(m.gaps, 1);
        assert_eq!(m.catchup_events, 3);
        assert_eq!(m.events_applied, last - snap.as_of_seq);
        agent.stop().await;
    })
    .await;
}

// A dropped *last* event has no successor to reveal it (DESIGN invariant 3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_last_event_is_found_by_the_position_check() {
    bounded(120, async {
        let e = env().await;
        e.upsert("a.txt", "1").await;
        let snap = e.snapshot().await;
        let agent = start(e.config(&snap)).await; // position check every second
        agent.ready(WAIT).await;
        e.admin("/admin/v1/faults/pause-delivery", json!({"mode": "drop"}))
            .await;
        e.upsert("a.txt", "the last edit, never delivered").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        e.admin("/admin/v1/faults/resume-delivery", json!({})).await;
        let last = e.server_seq().await;
        agent.caught_up_to(last, Duration::from_secs(10)).await;
        converge(&e, WAIT).await;
        common::eventually(WAIT, || agent.m().catchups == 1).await;
        assert_eq!(agent.m().gaps, 0);
        agent.stop().await;
    })
    .await;
}

async fn writer(e: &common::Env, id: usize, n: usize, done: &std::sync::atomic::AtomicUsize) {
    for i in 0..n {
        let path = format!("w{id}/f{}.txt", i % 25);
        if i % 17 == 16 {
            e.delete_lenient(&format!("w{id}/f{}.txt", (i + 3) % 25))
                .await;
        } else {
            e.upsert(&path, &format!("writer {id} edit {i}\n")).await;
        }
        done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_websockets_mid_burst_reconnect_and_converge() {
    bounded(180, async {
        let e = env().await;
        for i in 0..25 {
            e.upsert(&format!("w0/f{i}.txt"), "seed").await;
            e.upsert(&format!("w1/f{i}.txt"), "seed").await;
        }
        let snap = e.snapshot().await;
        let agent = start(e.config(&snap)).await;
        agent.ready(WAIT).await;

        let done = std::sync::atomic::AtomicUsize::new(0);
        let dropper = async {
            for (n, at) in [(0, 60), (1, 180)] {
                // The second drop waits for the first reconnect, or it would drop nothing.
                common::eventually(WAIT, || agent.m().reconnects >= n).await;
                while done.load(std::sync::atomic::Ordering::Relaxed) < at {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                e.admin("/admin/v1/faults/drop-websockets", json!({})).await;
            }
        };
        tokio::join!(
            writer(&e, 0, 150, &done),
            writer(&e, 1, 150, &done),
            dropper
        );
        let last = e.server_seq().await;
        agent.caught_up_to(last, WAIT).await;
        converge(&e, WAIT).await;
        let m = agent.m();
        assert!(m.reconnects >= 2, "{m:?}");
        assert_eq!(
            m.events_applied,
            last - snap.as_of_seq,
            "each event applied once"
        );
        assert_eq!(m.apply_errors, 0);
        agent.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_agent_resumes_from_its_state_and_applies_nothing_twice() {
    bounded(180, async {
        let e = env().await;
        for i in 0..10 {
            e.upsert(&format!("src/f{i}.ts"), "seed").await;
        }
        let snap = e.snapshot().await;
        let config = e.config(&snap);
        let a = start(config.clone()).await;
        a.ready(WAIT).await;
        let a_metrics = a.metrics.clone();

        // Kill it in the middle of a burst.
        let done = std::sync::atomic::AtomicUsize::new(0);
        let killer = async {
            while a_metrics.snapshot().events_applied < 40 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            a.kill().await;
        };
        tokio::join!(writer(&e, 0, 120, &done), killer);
        let a_last = a_metrics.snapshot().last_applied_seq;
        e.rename("w0/f1.txt", "w0/renamed.txt").await;
        e.delete("src/f3.ts").await;
        e.bulk(json!([{"file_path": "src/f4.ts", "content": "bulk"},
                      {"file_path": "src/f5.ts", "delete": true}]))
            .await;
        let last = e.server_seq().await;
        assert!(a_last < last);

        let b = start(config.clone()).await;
        b.ready(WAIT).await;
        b.caught_up_to(last, WAIT).await;
        converge(&e, WAIT).await;
        let m = b.m();
        assert!(m.resumed, "resumed from state, not the snapshot");
        assert_eq!(
            m.start_seq, a_last,
            "the state (and its journal) kept A's position"
        );
        assert_eq!(m.events_applied, last - a_last, "nothing applied twice");
        assert!(
            m.skipped_writes <= 1,
            "at most the one event A had in flight: {m:?}"
        );
        let written_and_moved = m.files_written + m.files_moved + m.files_deleted;
        assert!(written_and_moved <= last - a_last + 1, "{m:?}");
        assert_eq!(m.files_repaired, 0);

        // A clean stop and restart with no edits in between applies nothing at all.
        b.stop().await;
        let c = start(config).await;
        c.ready(WAIT).await;
        let m = c.m();
        assert!(m.resumed);
        assert_eq!(
            (m.start_seq, m.events_applied, m.files_written),
            (last, 0, 0)
        );
        converge(&e, WAIT).await;
        c.stop().await;
    })
    .await;
}

/// Files changed behind the agent's back while it was down are re-fetched at their head version;
/// an unusable state (another project's) means a fresh hydration from the snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_repairs_a_tampered_folder_and_ignores_foreign_state() {
    bounded(120, async {
        let e = env().await;
        e.upsert("keep.txt", "keep").await;
        e.upsert("tamper.txt", "original").await;
        e.upsert("gone.txt", "gone").await;
        let snap = e.snapshot().await;
        let config = e.config(&snap);
        let a = start(config.clone()).await;
        a.ready(WAIT).await;
        a.stop().await;

        std::fs::write(e.target().join("tamper.txt"), "changed by hand").unwrap();
        std::fs::remove_file(e.target().join("gone.txt")).unwrap();
        let b = start(config.clone()).await;
        b.ready(WAIT).await;
        converge(&e, WAIT).await;
        assert!(b.m().resumed);
        assert_eq!(b.m().files_repaired, 2);
        b.stop().await;

        // State written for another project is not trusted.
        let state = fs_sync_hydrate::state_file(&config.state_dir, &config.project_id);
        let text = std::fs::read_to_string(&state).unwrap();
        std::fs::write(
            &state,
            text.replace(&e.project, "00000000-0000-0000-0000-000000000000"),
        )
        .unwrap();
        let c = start(config).await;
        c.ready(WAIT).await;
        assert!(!c.m().resumed);
        converge(&e, WAIT).await;
        c.stop().await;
    })
    .await;
}
