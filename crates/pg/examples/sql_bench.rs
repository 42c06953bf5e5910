//! Benchmarks the write and read RPCs on a real PostgreSQL, as PostgREST would call them
//! (authenticator connection, one transaction per call, role and claims set locally).
//!
//! `cargo run --release -p fs-sync-pg --example sql_bench`
//!
//! Baseline: the legacy path the seed starts from, a direct `insert … on conflict do update` into a
//! 12-column `project_files`-shaped table with no versioning, no event and no broadcast.

use std::time::{Duration, Instant};

use fs_sync_pg::{set_claims, TestDb};
use serde_json::json;
use uuid::Uuid;

const SAVES_PER_CLIENT: usize = 400;

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

    println!(
        "| writes | clients | calls | p50 ms | p99 ms | calls/s | legacy calls/s | legacy is faster by |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for clients in [1usize, 8] {
        let rpc = run_writes(&db, &claims, owner, clients, false).await?;
        let legacy = run_writes(&db, &claims, owner, clients, true).await?;
        println!(
            "| upsert_project_file (1 KiB) | {clients} | {} | {:.2} | {:.2} | {:.0} | {:.0} | {:.2}x |",
            rpc.calls, rpc.p50, rpc.p99, rpc.rate, legacy.rate, legacy.rate / rpc.rate
        );
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
    calls: usize,
    p50: f64,
    p99: f64,
    rate: f64,
}

async fn run_writes(
    db: &TestDb,
    claims: &serde_json::Value,
    owner: Uuid,
    clients: usize,
    legacy: bool,
) -> Result<WriteStats, Box<dyn std::error::Error>> {
    let project: Uuid = db
        .admin()
        .query_one("select fsync.create_project('write bench', $1)", &[&owner])
        .await?
        .get(0);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let mut client = db.connect_as("authenticator").await?;
        let claims = claims.clone();
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::with_capacity(SAVES_PER_CLIENT);
            let body = "y".repeat(1000);
            for i in 0..SAVES_PER_CLIENT {
                let path = format!("src/client{c}/file{}.ts", i % 20);
                let content = format!("{body}{i}");
                let t = Instant::now();
                let tx = client.transaction().await.unwrap();
                set_claims(&tx, &claims).await.unwrap();
                if legacy {
                    tx.execute(
                        "insert into public.legacy_files (project_id, file_path, content, checksum, version)
                         values ($1, $2, $3, md5($3), 1)
                         on conflict (project_id, file_path) do update
                           set content = excluded.content, checksum = excluded.checksum, updated_at = now()",
                        &[&project, &path, &content],
                    )
                    .await
                    .unwrap();
                } else {
                    tx.query_one(
                        "select public.upsert_project_file(json_build_object(
                           'project_uuid', $1::uuid, 'p_file_path', $2::text, 'p_content', $3::text))",
                        &[&project, &path, &content],
                    )
                    .await
                    .unwrap();
                }
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
    Ok(WriteStats {
        calls,
        p50,
        p99,
        rate: calls as f64 / elapsed,
    })
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

fn percentiles(times: &mut [Duration]) -> (f64, f64) {
    times.sort();
    let at = |q: f64| {
        times[((times.len() as f64 * q) as usize).min(times.len() - 1)].as_secs_f64() * 1e3
    };
    (at(0.50), at(0.99))
}
