//! The write path under the load pattern of `examples/sql_bench.rs` at a small size: 8 writers
//! saving ~1 KiB files into ONE project at once, each its own paths, every save committed. The
//! project's change log must stay gapless in commit order, every head must be its path's last
//! version, and every save must be announced exactly once.

mod common;

use std::collections::BTreeMap;

use common::{call, create_project, create_user, rate_limits_off, user_claims, UPSERT};
use fs_sync_core::content_hash;
use fs_sync_pg::TestDb;
use serde_json::Value;

const WRITERS: usize = 8;
const SAVES: usize = 60;
const PATHS_PER_WRITER: usize = 5;

/// What one committed save returned.
struct Save {
    path: String,
    content: String,
    version: i64,
    seq: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_writers_on_one_project_keep_the_log_gapless_and_announce_each_save_once() {
    let db = TestDb::new().await.unwrap();
    rate_limits_off(&db).await;
    let owner = create_user(&db, "owner@example.test").await;
    let project = create_project(&db, owner).await;

    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let mut client = db.connect_as("authenticator").await.unwrap();
        let claims = user_claims(owner);
        tasks.push(tokio::spawn(async move {
            let body = "y".repeat(1000);
            let mut saves = Vec::with_capacity(SAVES);
            for i in 0..SAVES {
                let path = format!("src/client{w}/file{}.ts", i % PATHS_PER_WRITER);
                let content = format!("{body}{w}:{i}");
                let head = call(
                    &mut client,
                    &claims,
                    UPSERT,
                    &[&project, &path, &content, &None::<i32>],
                )
                .await
                .unwrap_or_else(|e| panic!("writer {w} save {i}: {e:?}"));
                assert_eq!(
                    head["noop"], false,
                    "writer {w} save {i} changed the content"
                );
                saves.push(Save {
                    path,
                    content,
                    version: head["version"].as_i64().unwrap(),
                    seq: head["seq"].as_i64().expect("a committed save has a seq"),
                });
            }
            saves
        }));
    }
    let mut saves = Vec::new();
    for t in tasks {
        saves.extend(t.await.unwrap());
    }
    saves.sort_by_key(|s| s.seq);
    let n = (WRITERS * SAVES) as i64;
    assert_eq!(
        saves.iter().map(|s| s.seq).collect::<Vec<_>>(),
        (1..=n).collect::<Vec<_>>(),
        "the saves' seqs are exactly 1..={n}"
    );

    // The log: one event per save, in seq order = commit order, naming what was saved.
    let log = db
        .admin()
        .query(
            "select seq, event_type, payload, pg_xact_commit_timestamp(xmin)
               from public.project_events where project_id = $1 order by seq",
            &[&project],
        )
        .await
        .unwrap();
    assert_eq!(log.len(), saves.len(), "exactly one event per save");
    let tracking: String = db
        .admin()
        .query_one("show track_commit_timestamp", &[])
        .await
        .unwrap()
        .get(0);
    let mut last_commit = None;
    for (row, save) in log.iter().zip(&saves) {
        let seq: i64 = row.get(0);
        assert_eq!(seq, save.seq);
        assert_eq!(row.get::<_, String>(1), "file:update");
        let payload: Value = row.get(2);
        assert_eq!(payload["seq"], seq);
        assert_eq!(payload["file_path"], save.path.as_str(), "seq {seq}");
        assert_eq!(payload["version"], save.version, "seq {seq}");
        assert_eq!(
            payload["content_hash"],
            content_hash(save.content.as_bytes()),
            "seq {seq}"
        );
        assert_eq!(payload["size"], save.content.len());
        assert!(
            payload.get("content").is_none(),
            "the log stores no content"
        );
        let at: Option<std::time::SystemTime> = row.get(3);
        // The harness's own cluster tracks commit times; a DATABASE_URL server may not.
        assert!(at.is_some() || tracking == "off");
        if let (Some(prev), Some(at)) = (last_commit, at) {
            assert!(at >= prev, "seq {seq} committed before its predecessor");
        }
        last_commit = at.or(last_commit);
    }

    // The broadcasts: exactly one per save, the event's payload plus the content.
    let messages = db
        .admin()
        .query(
            "select payload from realtime.messages where topic = 'project:' || $1::uuid::text",
            &[&project],
        )
        .await
        .unwrap();
    let mut by_seq: BTreeMap<i64, Vec<Value>> = BTreeMap::new();
    for m in &messages {
        let payload: Value = m.get(0);
        by_seq
            .entry(payload["seq"].as_i64().expect("a message has a seq"))
            .or_default()
            .push(payload);
    }
    assert_eq!(messages.len(), saves.len(), "one message per save");
    for (row, save) in log.iter().zip(&saves) {
        let sent = by_seq.get(&save.seq).map_or(&[][..], Vec::as_slice);
        assert_eq!(
            sent.len(),
            1,
            "seq {} was broadcast {} times",
            save.seq,
            sent.len()
        );
        let mut sent = sent[0].clone();
        assert_eq!(sent["content"], save.content.as_str(), "seq {}", save.seq);
        let object = sent.as_object_mut().unwrap();
        object.remove("content");
        object.remove("id");
        assert_eq!(sent, row.get::<_, Value>(2), "seq {}", save.seq);
    }

    // Versions 1..k per path, one head each: the last save of that path.
    let mut last: BTreeMap<&str, &Save> = BTreeMap::new();
    let mut versions: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for s in &saves {
        last.insert(&s.path, s);
        versions.entry(&s.path).or_default().push(s.version);
    }
    for (path, v) in &versions {
        assert_eq!(*v, (1..=v.len() as i64).collect::<Vec<_>>(), "{path}");
    }
    let heads = db
        .admin()
        .query(
            "select file_path, version, content from public.project_files
              where project_id = $1 and is_current_version order by file_path",
            &[&project],
        )
        .await
        .unwrap();
    assert_eq!(heads.len(), last.len(), "one head per path");
    for h in &heads {
        let path: String = h.get(0);
        let save = last[path.as_str()];
        assert_eq!(i64::from(h.get::<_, i32>(1)), save.version, "{path}");
        assert_eq!(h.get::<_, String>(2), save.content, "{path}");
    }

    let totals = db
        .admin()
        .query_one(
            "select last_seq, live_files, live_bytes from public.projects where id = $1",
            &[&project],
        )
        .await
        .unwrap();
    assert_eq!(totals.get::<_, i64>(0), n, "last_seq is the last event's");
    assert_eq!(totals.get::<_, i64>(1), last.len() as i64, "live files");
    let bytes: i64 = last.values().map(|s| s.content.len() as i64).sum();
    assert_eq!(totals.get::<_, i64>(2), bytes, "live bytes");
}
