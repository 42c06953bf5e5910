//! Every migration has a down script that fully reverses it; the pgTAP suite passes.

use std::process::Command;

use fs_sync_pg::{apply, down_files, migration_files, repo_root, TestDb};

/// Everything a migration can create in the database, as sorted text lines.
async fn catalog(db: &TestDb) -> Vec<String> {
    let rows = db
        .admin()
        .query(
            r#"
            select format('relation %s.%s %s', n.nspname, c.relname, c.relkind)
              from pg_class c join pg_namespace n on n.oid = c.relnamespace
             where n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast')
               and n.nspname !~ '^pg_(toast_)?temp_'
            union all
            select format('function %s', p.oid::regprocedure)
              from pg_proc p join pg_namespace n on n.oid = p.pronamespace
             where n.nspname not in ('pg_catalog', 'information_schema')
            union all
            select format('policy %s on %s', pol.polname, pol.polrelid::regclass) from pg_policy pol
            union all
            select format('trigger %s on %s', t.tgname, t.tgrelid::regclass)
              from pg_trigger t where not t.tgisinternal
            union all
            -- Temporary schemas belong to sessions (a script's temp tables), not to the schema.
            select format('schema %s', nspname) from pg_namespace
             where nspname !~ '^pg_(toast_)?temp_'
            union all
            select format('row %s', b.id) from storage.buckets b
            union all
            select format('grant %s on %s to %s', privilege_type, table_schema || '.' || table_name, grantee)
              from information_schema.role_table_grants
             where table_schema not in ('pg_catalog', 'information_schema')
            order by 1
            "#,
            &[],
        )
        .await
        .unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

#[tokio::test]
async fn migrations_go_up_down_and_up_again() {
    let db = TestDb::with_base_only().await.unwrap();
    let base = catalog(&db).await;
    let ups = migration_files().unwrap();
    assert!(ups.len() >= 5, "migrations found: {ups:?}");
    apply(db.admin(), &ups).await.unwrap();
    let installed = catalog(&db).await;
    assert!(installed.len() > base.len());
    apply(db.admin(), &down_files().unwrap()).await.unwrap();
    let after_down = catalog(&db).await;
    let leftovers: Vec<_> = after_down.iter().filter(|l| !base.contains(l)).collect();
    let lost: Vec<_> = base.iter().filter(|l| !after_down.contains(l)).collect();
    assert!(
        leftovers.is_empty() && lost.is_empty(),
        "down scripts left {leftovers:#?} and lost {lost:#?}"
    );
    apply(db.admin(), &ups).await.unwrap();
    assert_eq!(
        catalog(&db).await,
        installed,
        "second up differs from the first"
    );
}

#[tokio::test]
async fn pgtap_suite_passes() {
    let db = TestDb::new().await.unwrap();
    let dir = repo_root().join("tests/sql");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no pgTAP files in {}", dir.display());
    let out = Command::new("pg_prove")
        // Quiet the files' `create extension if not exists pgtap` (the local base installed it).
        .env("PGOPTIONS", "-c client_min_messages=warning")
        .args([
            "--ext",
            ".sql",
            "-d",
            db.name(),
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-p",
        ])
        .arg(db.cluster().port().to_string())
        .args(&files)
        .output()
        .expect(
            "pg_prove runs (npm run bootstrap installs libtap-parser-sourcehandler-pgtap-perl)",
        );
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "pgTAP failures:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Result: PASS"), "{stdout}");
}
