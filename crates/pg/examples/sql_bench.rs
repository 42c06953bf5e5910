//! Benchmarks the write and read RPCs on a real PostgreSQL, as PostgREST would call them
//! (authenticator connection, one transaction per call, role and claims set locally).
//!
//! `cargo run --release -p fs-sync-pg --example sql_bench`
//!
//! Writes: 1 and 8 clients saving into ONE project (its change log serialises them), rate limit
//! off. Each row is the median of several rounds; every round runs the RPC and the baseline back
//! to back, so that the ratio holds on a noisy machine.
//!
//! Baseline: the legacy path the seed starts from, a direct `insert … on conflict do update` into a
//! 12-column `project_files`-shaped table with no versioning, no event and no broadcast.
//!
//! "under lock" is how long each save held the project's lock, read afterwards from what the
//! save left behind: from its version's `created_at` (stamped just after the lock and the head
//! read) to its transaction's commit timestamp (`track_commit_timestamp`), so it includes the
//! round trip between the RPC's result and the client's COMMIT. "event → commit" is its tail,
//! from the event's `created_at` (stamped as the seq is taken): the event row, the broadcast,
//! the RPC's result, the round trip and the COMMIT. "lock busy" is the sum of those holds over
//! the run's time: near 100% the lock is what bounds the rate, lower the CPU is. The commit
//! timestamp is taken before the commit's WAL flush, and the lock is released only after it, so
//! the flush adds to the hold; the last table measures what it costs: the same 8 writers with
//! `synchronous_commit = off` (the flush left to the WAL writer), interleaved round by round. That
//! setting loses the last acknowledged saves on a crash: a measurement, not a configuration.

use std::time::{Duration, Instant};

use fs_sync_pg::{set_claims, TestDb};
use serde_json::json;
use uuid::Uuid;

const SAVES_PER_CLIENT: usize = 400;
const ROUNDS: usize = 3;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let db = TestDb::new().await?;
    db.admin()
        .batch_execute(
            "update fsync.settings set value = 'false' where key = 'rate_limit.enabled';
             create table public.legacy_files (
               id uuid primary key default gen_random_uuid(), project_id uuid not null,
               file_path text not null, content text, file_type text, version integer, checksum text,
               created_at timestamptz default now(), updated_at timestamptz default now(),
               created_by uuid, is_current_version boolean default true, metadata jsonb,
               unique (project_id, file_path));
             grant all on public.legacy_files to authenticated;",
        )
        .await?;
    let owner = Uuid::new_v4();
    db.admin()
        .execute("insert into auth.users (id, aud, role, email) values ($1, 'authenticated', 'authenticated', 'bench@example.test')", &[&owner])
        .await?;
    let claims = json!({"role": "authenticated", "sub": owner.to_string()});

    // The machine is shared: the load says how much of it the numbers below had.
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "load average (1, 5, 15 min) at start: {}\n",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "| writes (1 KiB, one project) | writers | saves/s | p50 ms | p99 ms | under lock p50 µs | p99 µs | event → commit p50 µs | lock busy | legacy saves/s | legacy p99 ms | legacy is faster by |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut profiles = Vec::new();
    let mut upserts = 0;
    for writers in [1usize, 8] {
        let before = function_times(&db, upserts).await?;
        let mut rounds = Vec::new();
        for _ in 0..ROUNDS {
            let rpc = run_writes(&db, &claims, owner, writers, false, true).await?;
            let legacy = run_writes(&db, &claims, owner, writers, true, true).await?;
            rounds.push((rpc, legacy));
        }
        let saves = ROUNDS * writers * SAVES_PER_CLIENT;
        upserts += saves as i64;
        let after = function_times(&db, upserts).await?;
        profiles.push((writers, diff_times(&before, &after, saves as f64)));
        let med = |f: &dyn Fn(&(WriteStats, WriteStats)) -> f64| median_of(&rounds, f);
        println!(
            "| upsert_project_file | {writers} | {:.0} | {:.2} | {:.2} | {:.0} | {:.0} | {:.0} | {:.0}% | {:.0} | {:.2} | {:.2}x |",
            med(&|r| r.0.rate),
            med(&|r| r.0.p50),
            med(&|r| r.0.p99),
            med(&|r| r.0.held[0]),
            med(&|r| r.0.held[1]),
            med(&|r| r.0.held[2]),
            med(&|r| r.0.held[3] * 100.0),
            med(&|r| r.1.rate),
            med(&|r| r.1.p99),
            med(&|r| r.1.rate / r.0.rate),
        );
    }
    println!("\n| 8 writers, one project: the commit's WAL flush | saves/s | p50 ms | p99 ms |");
    println!("|---|---|---|---|");
    let mut flush = Vec::new();
    for _ in 0..ROUNDS {
        let waits = run_writes(&db, &claims, owner, 8, false, true).await?;
        let skips = run_writes(&db, &claims, owner, 8, false, false).await?;
        flush.push((waits, skips));
    }
    let med = |f: &dyn Fn(&(WriteStats, WriteStats)) -> f64| median_of(&flush, f);
    println!(
        "| waited for under the project lock (as deployed) | {:.0} | {:.2} | {:.2} |",
        med(&|r| r.0.rate),
        med(&|r| r.0.p50),
        med(&|r| r.0.p99)
    );
    println!(
        "| not waited for (synchronous_commit = off; not for deployment) | {:.0} | {:.2} | {:.2} |",
        med(&|r| r.1.rate),
        med(&|r| r.1.p50),
        med(&|r| r.1.p99)
    );

    // Database time per save by function (pg_stat_user_functions, track_functions=all). Self
    // time excludes the functions called; lock_project's self time is mostly the wait.
    println!("\n| function | writers | calls/save | total µs/save | self µs/save |");
    println!("|---|---|---|---|---|");
    for (writers, rows) in profiles {
        for (name, calls, total, own) in rows {
            println!("| {name} | {writers} | {calls:.2} | {total:.0} | {own:.0} |");
        }
    }

    println!("\n| read | files | p50 ms | p99 ms | MB returned |");
    println!("|---|---|---|---|---|");
    for files in [1_000usize, 10_000] {
        let project: Uuid = db
            .admin()
            .query_one("select fsync.create_project('list bench', $1)", &[&owner])
            .await?
            .get(0);
        let body = "x".repeat(2000);
        let batch: Vec<_> = (0..files)
            .map(|i| json!({"file_path": format!("src/m{}/f{i}.ts", i % 50), "content": format!("{body}{i}")}))
            .collect();
        for chunk in batch.chunks(5000) {
            call(
                &db,
                &claims,
                "select public.bulk_upsert_project_files(json_build_object('project_uuid', $1::uuid, 'files', $2::jsonb))::text",
                &[&project, &json!(chunk)],
            )
            .await?;
        }
        for (name, sql) in [
            (
                "list_current_files",
                "select coalesce(json_agg(t), '[]')::text
                   from public.list_current_files(json_build_object('project_uuid', $1::uuid)) t",
            ),
            (
                "get_project_snapshot",
                "select public.get_project_snapshot(json_build_object('project_uuid', $1::uuid))::text",
            ),
        ] {
            let mut times = Vec::new();
            let mut bytes = 0;
            for _ in 0..15 {
                let start = Instant::now();
                bytes = call(&db, &claims, sql, &[&project]).await?.len();
                times.push(start.elapsed());
            }
            let (p50, p99) = percentiles(&mut times);
            println!(
                "| {name} | {files} | {p50:.1} | {p99:.1} | {:.1} |",
                bytes as f64 / 1e6
            );
        }
    }
    Ok(())
}

struct WriteStats {
    p50: f64,
    p99: f64,
    rate: f64,
    /// Microseconds under the project lock per save: p50, p99, p50 of the event stamp → commit;
    /// then the share of the run's time the lock was held (1 = the lock is the bottleneck).
    held: [f64; 4],
}

async fn run_writes(
    db: &TestDb,
    claims: &serde_json::Value,
    owner: Uuid,
    clients: usize,
    legacy: bool,
    wait_for_flush: bool,
) -> Result<WriteStats, Box<dyn std::error::Error>> {
    let project: Uuid = db
        .admin()
        .query_one("select fsync.create_project('write bench', $1)", &[&owner])
        .await?
        .get(0);
    let mut conns = Vec::new();
    for _ in 0..clients {
        conns.push(db.connect_as("authenticator").await?);
    }
    // Statements prepared once per connection, as PostgREST prepares its own.
    let role = claims["role"].as_str().unwrap_or("anon").to_owned();
    let claims = claims.to_string();
    let sync = if wait_for_flush { "on" } else { "off" };
    let write = if legacy {
        "insert into public.legacy_files (project_id, file_path, content, checksum, version)
         values ($1, $2, $3, md5($3), 1)
         on conflict (project_id, file_path) do update
           set content = excluded.content, checksum = excluded.checksum, updated_at = now()"
    } else {
        "select public.upsert_project_file(json_build_object(
           'project_uuid', $1::uuid, 'p_file_path', $2::text, 'p_content', $3::text))"
    };
    let mut prepared = Vec::new();
    for client in &conns {
        prepared.push((
            client
                .prepare(
                    "select set_config('role', $1, true), set_config('request.jwt.claims', $2, true),
                            set_config('synchronous_commit', $3, true)",
                )
                .await?,
            client.prepare(write).await?,
        ));
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (c, (mut client, (set_role, write))) in conns.into_iter().zip(prepared).enumerate() {
        let (role, claims) = (role.clone(), claims.clone());
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::with_capacity(SAVES_PER_CLIENT);
            let body = "y".repeat(1000);
            for i in 0..SAVES_PER_CLIENT {
                let path = format!("src/client{c}/file{}.ts", i % 20);
                let content = format!("{body}{i}");
                let t = Instant::now();
                let tx = client.transaction().await.unwrap();
                tx.execute(&set_role, &[&role, &claims, &sync])
                    .await
                    .unwrap();
                tx.query(&write, &[&project, &path, &content])
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
                times.push(t.elapsed());
            }
            times
        }));
    }
    let mut times = Vec::new();
    for t in tasks {
        times.extend(t.await?);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let calls = times.len();
    let (p50, p99) = percentiles(&mut times);
    let held = if legacy {
        [f64::NAN; 4]
    } else {
        let row = db
            .admin()
            .query_one(
                "with h as (
                   select extract(epoch from pg_xact_commit_timestamp(e.xmin) - f.created_at) * 1e6 as held,
                          extract(epoch from pg_xact_commit_timestamp(e.xmin) - e.created_at) * 1e6 as tail
                     from public.project_events e
                     join public.project_files f
                       on f.project_id = e.project_id and f.file_path = e.payload->>'file_path'
                      and f.version = (e.payload->>'version')::integer
                    where e.project_id = $1)
                 select percentile_cont(0.5) within group (order by held),
                        percentile_cont(0.99) within group (order by held),
                        percentile_cont(0.5) within group (order by tail),
                        count(*), sum(held)::float8
                   from h",
                &[&project],
            )
            .await?;
        let events: i64 = row.get(3);
        if events != calls as i64 {
            return Err(format!("{calls} saves left {events} events").into());
        }
        let busy: f64 = row.get(4);
        [row.get(0), row.get(1), row.get(2), busy / 1e6 / elapsed]
    };
    Ok(WriteStats {
        p50,
        p99,
        rate: calls as f64 / elapsed,
        held,
    })
}

/// (function, calls, total ms, self ms) of the fs-sync functions, once the statistics include
/// `upserts` calls of public.upsert_project_file (backends report theirs when they exit).
async fn function_times(
    db: &TestDb,
    upserts: i64,
) -> Result<Vec<(String, i64, f64, f64)>, Box<dyn std::error::Error>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows = db
            .admin()
            .query(
                "select schemaname || '.' || funcname, calls, total_time, self_time
                   from pg_stat_user_functions where schemaname in ('fsync', 'public', 'realtime')",
                &[],
            )
            .await?;
        let rows: Vec<(String, i64, f64, f64)> = rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect();
        let seen = rows
            .iter()
            .find(|r| r.0 == "public.upsert_project_file")
            .map_or(0, |r| r.1);
        if seen >= upserts {
            return Ok(rows);
        }
        if Instant::now() > deadline {
            return Err(format!("function statistics show {seen} of {upserts} upserts").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Per save: (function, calls, total µs, self µs) between two snapshots, by self time.
fn diff_times(
    before: &[(String, i64, f64, f64)],
    after: &[(String, i64, f64, f64)],
    saves: f64,
) -> Vec<(String, f64, f64, f64)> {
    let mut rows: Vec<_> = after
        .iter()
        .map(|(name, calls, total, own)| {
            let b = before.iter().find(|b| &b.0 == name);
            let (c0, t0, s0) = b.map_or((0, 0.0, 0.0), |b| (b.1, b.2, b.3));
            (
                name.clone(),
                (calls - c0) as f64 / saves,
                (total - t0) * 1e3 / saves,
                (own - s0) * 1e3 / saves,
            )
        })
        .filter(|r| r.1 > 0.0)
        .collect();
    rows.sort_by(|a, b| b.3.total_cmp(&a.3));
    rows
}

async fn call(
    db: &TestDb,
    claims: &serde_json::Value,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<String, Box<dyn std::error::Error>> {
    let mut client = db.connect_as("authenticator").await?;
    let tx = client.transaction().await?;
    set_claims(&tx, claims).await?;
    let out: String = tx.query_one(sql, params).await?.get(0);
    tx.commit().await?;
    Ok(out)
}

/// The median over interleaved rounds of what `f` reads from each round's pair of runs.
fn median_of(
    rounds: &[(WriteStats, WriteStats)],
    f: &dyn Fn(&(WriteStats, WriteStats)) -> f64,
) -> f64 {
    let mut v: Vec<f64> = rounds.iter().map(f).collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentiles(times: &mut [Duration]) -> (f64, f64) {
    times.sort();
    let at = |q: f64| {
        times[((times.len() as f64 * q) as usize).min(times.len() - 1)].as_secs_f64() * 1e3
    };
    (at(0.50), at(0.99))
}
