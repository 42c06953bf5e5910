//! The harness itself: clusters start, templates clone, claims act like PostgREST's.

use fs_sync_pg::TestDb;
use serde_json::json;

#[tokio::test]
async fn each_test_gets_its_own_database() {
    let a = TestDb::new().await.unwrap();
    let b = TestDb::new().await.unwrap();
    assert_ne!(a.name(), b.name());
    a.admin()
        .batch_execute("create table public.only_in_a(x int)")
        .await
        .unwrap();
    let found = b
        .admin()
        .query_opt("select 1 from pg_class where relname = 'only_in_a'", &[])
        .await
        .unwrap();
    assert!(found.is_none(), "databases share state");
}

#[tokio::test]
async fn claims_set_role_and_auth_helpers_like_postgrest() {
    let db = TestDb::new().await.unwrap();
    let user = "7d5b3c1e-2f4a-4e6b-8c9d-0a1b2c3d4e5f";
    let rows = db
        .as_claims(
            json!({"role": "authenticated", "sub": user, "email": "a@example.com"}),
            "select current_user::text, auth.uid()::text, auth.role(), auth.jwt()->>'email'",
        )
        .await
        .unwrap();
    let row = &rows[0];
    assert_eq!(row.get::<_, String>(0), "authenticated");
    assert_eq!(row.get::<_, Option<String>>(1).as_deref(), Some(user));
    assert_eq!(
        row.get::<_, Option<String>>(2).as_deref(),
        Some("authenticated")
    );
    assert_eq!(
        row.get::<_, Option<String>>(3).as_deref(),
        Some("a@example.com")
    );

    let rows = db
        .as_claims(json!({}), "select current_user::text, auth.uid()")
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, String>(0), "anon");
    assert!(rows[0].get::<_, Option<uuid::Uuid>>(1).is_none());
}

#[tokio::test]
async fn settings_are_transaction_local() {
    let db = TestDb::new().await.unwrap();
    let mut client = db.connect_as("authenticator").await.unwrap();
    let tx = client.transaction().await.unwrap();
    fs_sync_pg::set_claims(&tx, &json!({"role": "service_role"}))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let row = client
        .query_one(
            "select current_user::text, coalesce(current_setting('request.jwt.claims', true), '')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "authenticator");
    assert_eq!(row.get::<_, String>(1), "");
}

#[tokio::test]
async fn authenticator_cannot_become_a_superuser() {
    let db = TestDb::new().await.unwrap();
    let err = db
        .as_claims(json!({"role": "postgres"}), "select 1")
        .await
        .expect_err("authenticator switched to postgres");
    assert!(err.to_string().contains("42501"), "{err}");
}

/// A cluster this process starts counts calls and time per function (pg_stat_user_functions),
/// which the benchmarks read as the database time per save.
#[tokio::test]
async fn started_clusters_track_function_calls() {
    if fs_sync_pg::shared_cluster().unwrap().data_dir().is_none() {
        // DATABASE_URL: a server configured elsewhere.
        return;
    }
    let db = TestDb::new().await.unwrap();
    let setting: String = db
        .admin()
        .query_one("select current_setting('track_functions')", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(setting, "all");
}
