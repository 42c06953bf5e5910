//! Many connections at once: optimistic concurrency, gapless versions and seqs, commit order,
//! and all-or-nothing bulks.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use common::{call, create_project, create_user, rate_limits_off, user_claims, BULK, UPSERT};
use fs_sync_core::content_hash;
use fs_sync_pg::TestDb;
use serde_json::json;
use tokio::sync::Barrier;
use uuid::Uuid;

async fn add_editor(db: &TestDb, project: Uuid, user: Uuid) {
    db.admin()
        .execute(
            "insert into public.project_members (project_id, user_id, role) values ($1, $2, 'editor')",
            &[&project, &user],
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_writers_with_one_expected_version_one_wins() {
    let db = TestDb::new().await.unwrap();
    let owner = create_user(&db, "owner@example.test").await;
    let project = create_project(&db, owner).await;
    let mut first = db.connect_as("authenticator").await.unwrap();
    call(
        &mut first,
        &user_claims(owner),
        UPSERT,
        &[&project, &"src/App.tsx", &"v1", &Some(0i32)],
    )
    .await
    .unwrap();

    const WRITERS: usize = 32;
    let barrier = Arc::new(Barrier::new(WRITERS));
    let mut tasks = Vec::new();
    for i in 0..WRITERS {
        let mut client = db.connect_as("authenticator").await.unwrap();
        let barrier = barrier.clone();
        let claims = user_claims(owner);
        tasks.push(tokio::spawn(async move {
            let content = format!("edit by writer {i}");
            barrier.wait().await;
            let result = call(
                &mut client,
                &claims,
                UPSERT,
                &[&project, &"src/App.tsx", &content, &Some(1i32)],
            )
            .await;
            (content, result)
        }));
    }
    let mut winners = Vec::new();
    let mut conflicts = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            (content, Ok(head)) => winners.push((content, head)),
            (_, Err(e)) => conflicts.push(e),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one writer may win");
    let (content, head) = &winners[0];
    assert_eq!(head["version"], 2);
    assert_eq!(conflicts.len(), WRITERS - 1);
    for e in &conflicts {
        assert_eq!(e.code, "PT409", "{e:?}");
        assert_eq!(e.detail["path"], "src/App.tsx");
        assert_eq!(e.detail["expected_version"], 1);
        assert_eq!(e.detail["current_version"], 2);
        assert_eq!(e.detail["current_hash"], content_hash(content.as_bytes()));
    }
    let events: i64 = db
        .admin()
        .query_one(
            "select count(*) from public.project_events where project_id = $1",
            &[&project],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(events, 2, "one event for the create, one for the winner");
}

/// What one writer saw happen to one of its saves.
#[derive(Debug)]
enum Outcome {
    Committed {
        path: String,
        version: i64,
        seq: i64,
        hash: String,
    },
    RolledBack {
        hash: String,
    },
    Conflict,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_writers_keep_versions_and_seqs_gapless_in_commit_order() {
    let db = TestDb::new().await.unwrap();
    rate_limits_off(&db).await;
    let owner = create_user(&db, "owner@example.test").await;
    let project = create_project(&db, owner).await;
    const WRITERS: usize = 8;
    const SAVES: usize = 500;
    let paths: Vec<String> = (0..12).map(|i| format!("src/file{i}.ts")).collect();

    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let user = create_user(&db, &format!("writer{w}@example.test")).await;
        add_editor(&db, project, user).await;
        let mut client = db.connect_as("authenticator").await.unwrap();
        let paths = paths.clone();
        tasks.push(tokio::spawn(async move {
            let claims = user_claims(user);
            let mut outcomes = Vec::with_capacity(SAVES);
            let mut last_seq = 0;
            for i in 0..SAVES {
                let path = &paths[(i * 7 + w * 3) % paths.len()];
                let content = format!("// writer {w} save {i}\nexport const v = {i};\n");
                let hash = content_hash(content.as_bytes());
                // Every 5th save claims a version that is almost surely stale: exercises PT409.
                let expected = (i % 5 == 4).then_some(1i32);
                let tx = client.transaction().await.unwrap();
                fs_sync_pg::set_claims(&tx, &claims).await.unwrap();
                let result = tx
                    .query_one(UPSERT, &[&project, path, &content, &expected])
                    .await;
                match result {
                    Ok(row) if i % 9 == 8 => {
                        let _: serde_json::Value = row.get(0);
                        tx.rollback().await.unwrap();
                        outcomes.push(Outcome::RolledBack { hash });
                    }
                    Ok(row) => {
                        let head: serde_json::Value = row.get(0);
                        tx.commit().await.unwrap();
                        let seq = head["seq"].as_i64().expect("a committed write has a seq");
                        assert!(seq > last_seq, "one writer's seqs must increase");
                        last_seq = seq;
                        outcomes.push(Outcome::Committed {
                            path: path.clone(),
                            version: head["version"].as_i64().unwrap(),
                            seq,
                            hash,
                        });
                    }
                    Err(e) => {
                        let code = e.as_db_error().map(|d| d.code().code().to_owned());
                        assert_eq!(code.as_deref(), Some("PT409"), "{e}");
                        outcomes.push(Outcome::Conflict);
                    }
                }
            }
            outcomes
        }));
    }
    let mut committed = Vec::new();
    let mut rolled_back = BTreeSet::new();
    let mut conflicts = 0;
    for t in tasks {
        for o in t.await.unwrap() {
            match o {
                Outcome::Committed {
                    path,
                    version,
                    seq,
                    hash,
                } => committed.push((seq, path, version, hash)),
                Outcome::RolledBack { hash } => {
                    rolled_back.insert(hash);
                }
                Outcome::Conflict => conflicts += 1,
            }
        }
    }
    assert!(
        conflicts > 0 && !rolled_back.is_empty(),
        "the mix exercised conflicts and rollbacks"
    );
    committed.sort();

    // Seqs: exactly 1..=N, one per committed write.
    let seqs: Vec<i64> = committed.iter().map(|c| c.0).collect();
    assert_eq!(seqs, (1..=committed.len() as i64).collect::<Vec<_>>());
    let log = db
        .admin()
        .query(
            "select seq, payload->>'file_path', (payload->>'version')::bigint, payload->>'content_hash',
                    pg_xact_commit_timestamp(xmin)
               from public.project_events where project_id = $1 order by seq",
            &[&project],
        )
        .await
        .unwrap();
    assert_eq!(
        log.len(),
        committed.len(),
        "exactly one event per committed write"
    );
    let tracking: String = db
        .admin()
        .query_one("show track_commit_timestamp", &[])
        .await
        .unwrap()
        .get(0);
    let mut last_commit = None;
    for (row, (seq, path, version, hash)) in log.iter().zip(&committed) {
        assert_eq!(row.get::<_, i64>(0), *seq);
        assert_eq!(row.get::<_, String>(1), *path);
        assert_eq!(row.get::<_, i64>(2), *version);
        assert_eq!(row.get::<_, String>(3), *hash);
        // seq order is commit order.
        let at: Option<std::time::SystemTime> = row.get(4);
        // The harness's own cluster tracks commit times; a DATABASE_URL server may not.
        assert!(at.is_some() || tracking == "off");
        if let (Some(prev), Some(at)) = (last_commit, at) {
            assert!(at >= prev, "seq {seq} committed before its predecessor");
        }
        last_commit = at.or(last_commit);
    }
    let last_seq: i64 = db
        .admin()
        .query_one(
            "select last_seq from public.projects where id = $1",
            &[&project],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(last_seq, committed.len() as i64);

    // Versions per path: 1..=k, each a committed write, nothing from rolled-back ones.
    let rows = db
        .admin()
        .query(
            "select file_path, version, content_hash, is_current_version, created_at from public.project_files
              where project_id = $1 order by file_path, version",
            &[&project],
        )
        .await
        .unwrap();
    let mut by_path: BTreeMap<String, Vec<(i64, String, bool, std::time::SystemTime)>> =
        BTreeMap::new();
    for r in &rows {
        by_path.entry(r.get(0)).or_default().push((
            r.get::<_, i32>(1).into(),
            r.get(2),
            r.get(3),
            r.get(4),
        ));
    }
    for (path, versions) in &by_path {
        let numbers: Vec<i64> = versions.iter().map(|v| v.0).collect();
        assert_eq!(
            numbers,
            (1..=versions.len() as i64).collect::<Vec<_>>(),
            "{path}"
        );
        // Stamped under the project lock: a later version never looks older.
        assert!(
            versions.windows(2).all(|w| w[0].3 <= w[1].3),
            "{path}: created_at decreases along the versions"
        );
        let heads = versions.iter().filter(|v| v.2).count();
        assert_eq!(heads, 1, "{path} has {heads} heads");
        assert!(
            versions.last().unwrap().2,
            "{path}: the head is the latest version"
        );
        for v in versions {
            assert!(
                !rolled_back.contains(&v.1),
                "{path} v{} came from a rolled-back write",
                v.0
            );
        }
    }
    assert_eq!(rows.len(), committed.len());
}

#[tokio::test]
async fn a_bulk_that_fails_midway_leaves_nothing() {
    let db = TestDb::new().await.unwrap();
    let owner = create_user(&db, "owner@example.test").await;
    let project = create_project(&db, owner).await;
    let mut client = db.connect_as("authenticator").await.unwrap();
    let claims = user_claims(owner);
    call(
        &mut client,
        &claims,
        UPSERT,
        &[&project, &"keep.ts", &"kept", &None::<i32>],
    )
    .await
    .unwrap();

    // Validation passes; the third entry's stale expected_version fails while writing, after
    // the first two entries were written inside the transaction.
    let files = json!([
        {"file_path": "a.ts", "content": "a"},
        {"file_path": "b.ts", "content": "b"},
        {"file_path": "keep.ts", "content": "changed", "expected_version": 7},
        {"file_path": "d.ts", "content": "d"},
    ]);
    let err = call(&mut client, &claims, BULK, &[&project, &files])
        .await
        .unwrap_err();
    assert_eq!(err.code, "PT409", "{err:?}");
    assert_eq!(err.detail["path"], "keep.ts");

    let state = db
        .admin()
        .query_one(
            "select (select count(*) from public.project_files where project_id = $1),
                    (select count(*) from public.project_events where project_id = $1),
                    (select last_seq from public.projects where id = $1),
                    (select count(*) from realtime.messages where topic = 'project:' || $1::text)",
            &[&project],
        )
        .await
        .unwrap();
    assert_eq!(
        state.get::<_, i64>(0),
        1,
        "no file row from the failed bulk"
    );
    assert_eq!(state.get::<_, i64>(1), 1, "no event from the failed bulk");
    assert_eq!(
        state.get::<_, i64>(2),
        1,
        "no seq consumed by the failed bulk"
    );
    assert_eq!(
        state.get::<_, i64>(3),
        1,
        "no realtime message from the failed bulk"
    );

    // The same bulk without the bad entry commits as one event.
    let good = json!([
        {"file_path": "a.ts", "content": "a"},
        {"file_path": "b.ts", "content": "b"},
        {"file_path": "keep.ts", "delete": true},
    ]);
    call(&mut client, &claims, BULK, &[&project, &good])
        .await
        .unwrap();
    let events = db
        .admin()
        .query("select event_type, payload from public.project_events where project_id = $1 order by seq", &[&project])
        .await
        .unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].get::<_, String>(0), "bulk:apply");
    let payload: serde_json::Value = events[1].get(1);
    assert_eq!(payload["files"].as_array().unwrap().len(), 3);
}

/// One user's writes racing for their rate-limit bucket: no more are admitted than the token
/// bucket allows over the measured time, and the bucket's refill time never moves backwards
/// (a refill computed from a clock read before the bucket's lock was taken would count the
/// time spent queueing twice).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_writes_stay_within_the_token_bucket() {
    const CAPACITY: f64 = 10.0;
    const REFILL_PER_SECOND: f64 = 400.0;
    const CLIENTS: usize = 16;
    const WRITES: usize = 50;
    let db = TestDb::new().await.unwrap();
    db.admin()
        .batch_execute(&format!(
            "update fsync.settings set value = '{CAPACITY}' where key = 'rate_limit.capacity';
             update fsync.settings set value = '{REFILL_PER_SECOND}' where key = 'rate_limit.refill_per_second';
             -- Every committed change of a bucket, to check that refilled_at only moves forward.
             create table public.bucket_moves (old_at timestamptz, new_at timestamptz);
             create function public.record_bucket_move() returns trigger language plpgsql as $$
             begin
               insert into public.bucket_moves values (old.refilled_at, new.refilled_at);
               return new;
             end $$;
             create trigger record_bucket_move before update on fsync.rate_limit_buckets
               for each row execute function public.record_bucket_move();"
        ))
        .await
        .unwrap();
    let owner = create_user(&db, "owner@example.test").await;
    let project = create_project(&db, owner).await;

    let barrier = Arc::new(Barrier::new(CLIENTS + 1));
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let mut client = db.connect_as("authenticator").await.unwrap();
        let barrier = barrier.clone();
        let claims = user_claims(owner);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut admitted = 0usize;
            for _ in 0..WRITES {
                // The same save every time: after the first it is a no-op, which is still
                // charged, so the calls are quick and queue on the bucket.
                match call(
                    &mut client,
                    &claims,
                    UPSERT,
                    &[&project, &"a.ts", &"same", &None::<i32>],
                )
                .await
                {
                    Ok(_) => admitted += 1,
                    Err(e) => assert_eq!(e.code, "PT429", "{e:?}"),
                }
            }
            admitted
        }));
    }
    let started = std::time::Instant::now();
    barrier.wait().await;
    let mut admitted = 0;
    for t in tasks {
        admitted += t.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();

    let bound = CAPACITY + REFILL_PER_SECOND * elapsed;
    assert!(
        admitted as f64 <= bound,
        "{admitted} of {} writes admitted in {elapsed:.3} s; a bucket of {CAPACITY} refilled at \
         {REFILL_PER_SECOND}/s admits at most {bound:.1}",
        CLIENTS * WRITES
    );
    assert!(
        admitted >= CAPACITY as usize,
        "a full bucket admits at least {CAPACITY}: {admitted} admitted"
    );
    let moves = db
        .admin()
        .query_one(
            "select count(*), count(*) filter (where new_at < old_at) from public.bucket_moves",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        moves.get::<_, i64>(0) as usize,
        admitted - 1,
        "every admitted write after the first updated the bucket"
    );
    assert_eq!(
        moves.get::<_, i64>(1),
        0,
        "refilled_at moved backwards {} times",
        moves.get::<_, i64>(1)
    );
}
