//! Builders shared by the SQL integration tests.
#![allow(dead_code, unreachable_pub)]

use fs_sync_pg::TestDb;
use serde_json::{json, Value};
use tokio_postgres::Client;
use uuid::Uuid;

pub async fn create_user(db: &TestDb, email: &str) -> Uuid {
    let id = Uuid::new_v4();
    db.admin()
        .execute(
            "insert into auth.users (id, aud, role, email) values ($1, 'authenticated', 'authenticated', $2)",
            &[&id, &email],
        )
        .await
        .unwrap();
    id
}

pub async fn create_project(db: &TestDb, owner: Uuid) -> Uuid {
    db.admin()
        .query_one("select fsync.create_project('test project', $1)", &[&owner])
        .await
        .unwrap()
        .get(0)
}

/// Turns the write rate limit off: concurrency tests write faster than a user may.
pub async fn rate_limits_off(db: &TestDb) {
    db.admin()
        .execute(
            "update fsync.settings set value = 'false' where key = 'rate_limit.enabled'",
            &[],
        )
        .await
        .unwrap();
}

pub fn user_claims(user: Uuid) -> Value {
    json!({"role": "authenticated", "sub": user.to_string(), "aud": "authenticated",
           "exp": 4102444800u64})
}

/// A database error as (SQLSTATE, message, detail as JSON when it parses).
#[derive(Debug)]
pub struct SqlError {
    pub code: String,
    pub message: String,
    pub detail: Value,
}

/// Calls `sql` in one transaction as `claims` on `client` (an authenticator connection),
/// committing on success and rolling back on error, like a PostgREST request.
pub async fn call(
    client: &mut Client,
    claims: &Value,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Value, SqlError> {
    let tx = client.transaction().await.unwrap();
    fs_sync_pg::set_claims(&tx, claims).await.unwrap();
    match tx.query_one(sql, params).await {
        Ok(row) => {
            let v: Value = row.get(0);
            tx.commit().await.unwrap();
            Ok(v)
        }
        Err(e) => {
            let db = e
                .as_db_error()
                .unwrap_or_else(|| panic!("not a database error: {e}"));
            Err(SqlError {
                code: db.code().code().to_owned(),
                message: db.message().to_owned(),
                detail: db
                    .detail()
                    .and_then(|d| serde_json::from_str(d).ok())
                    .unwrap_or(Value::Null),
            })
        }
    }
}

/// upsert_project_file as PostgREST calls it: the arguments as one JSON object.
pub const UPSERT: &str = "select public.upsert_project_file(json_build_object(
     'project_uuid', $1::uuid, 'p_file_path', $2::text, 'p_content', $3::text, 'expected_version', $4::int))";

/// bulk_upsert_project_files as PostgREST calls it.
pub const BULK: &str =
    "select public.bulk_upsert_project_files(json_build_object('project_uuid', $1::uuid, 'files', $2::jsonb))";
