//! `fs-sync-dev start --data-dir DIR` as a process: users, projects, files, Storage objects,
//! keys and issued tokens survive a restart; the cluster is shut down cleanly; a second stack
//! on the same dir, and an applied migration that changed, are refused; a killed stack's dir
//! starts again. The same in-process through `Options::data_dir`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use fs_sync_dev::{DatabaseSource, DevStack, Options};

mod cli;
use cli::{pg_port, wait_for};
use serde_json::{json, Value};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fs-sync-dev-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn command(data_dir: &Path, ready: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fs-sync-dev"));
    cmd.args(["start", "--port", "0", "--quiet", "--data-dir"])
        .arg(data_dir)
        .arg("--ready-file")
        .arg(ready)
        .env_remove("DATABASE_URL");
    cmd
}

/// A running fs-sync-dev, killed if the test fails before stopping it.
struct Stack(Child);

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A stack started on `data_dir`, and its ready file once written.
fn start(data_dir: &Path, ready: &Path) -> (Stack, Value) {
    let _ = std::fs::remove_file(ready);
    let mut child = command(data_dir, ready)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let info = wait_for("the ready file", Duration::from_secs(120), || {
        if let Some(status) = child.try_wait().unwrap() {
            let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
            panic!("fs-sync-dev exited ({status}): {stderr}");
        }
        std::fs::read(ready)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
    });
    (Stack(child), info)
}

/// A start expected to fail: its output.
fn start_refused(data_dir: &Path, ready: &Path) -> Output {
    let out = command(data_dir, ready).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(!ready.exists());
    out
}

/// SIGTERM, then the exit status and stdout.
fn stop(mut stack: Stack) -> String {
    let child = &mut stack.0;
    // SAFETY: signalling our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let out = wait_for("fs-sync-dev to exit", Duration::from_secs(60), || {
        child.try_wait().unwrap()
    });
    assert!(out.success(), "exit status {out:?}");
    std::io::read_to_string(child.stdout.take().unwrap()).unwrap()
}

/// The cluster was shut down cleanly: its port is closed, its pid file gone, and its log says so.
fn assert_clean_shutdown(data_dir: &Path, info: &Value) {
    assert!(std::net::TcpStream::connect(("127.0.0.1", pg_port(info))).is_err());
    assert!(!data_dir.join("postgres/postmaster.pid").exists());
    let log = std::fs::read_to_string(data_dir.join("postgres.log")).unwrap();
    assert!(
        log.trim_end().ends_with("database system is shut down"),
        "{}",
        &log[log.len().saturating_sub(600)..]
    );
}

struct Api {
    http: reqwest::Client,
    info: Value,
}

impl Api {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.info["api_url"].as_str().unwrap())
    }

    fn key(&self, k: &str) -> String {
        self.info[k].as_str().unwrap().to_owned()
    }

    async fn admin(&self, path: &str, body: Value) -> Value {
        let service = self.key("service_role_key");
        let r = self
            .http
            .post(self.url(path))
            .header("apikey", &service)
            .bearer_auth(&service)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap()
    }

    async fn rpc(&self, f: &str, token: &str, body: Value) -> Value {
        let r = self
            .http
            .post(self.url(&format!("/rest/v1/rpc/{f}")))
            .header("apikey", self.key("anon_key"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body = r.text().await.unwrap();
        assert!(status.is_success(), "{f}: {status} {body}");
        serde_json::from_str(&body).unwrap()
    }
}

#[tokio::test]
async fn data_and_keys_survive_a_restart() {
    let dir = temp_dir("data-dir");
    let data_dir = dir.join("data");
    let ready = dir.join("ready.json");
    let (first, info) = start(&data_dir, &ready);
    let api = Api {
        http: reqwest::Client::new(),
        info: info.clone(),
    };
    let user = api
        .admin("/admin/v1/users", json!({"email": "dev@example.test"}))
        .await;
    let user_id = user["id"].as_str().unwrap();
    let minted = api
        .admin(
            "/admin/v1/token",
            json!({"user_id": user_id, "expires_in": 3600}),
        )
        .await;
    let token = minted["access_token"].as_str().unwrap().to_owned();
    let project = api
        .admin(
            "/admin/v1/projects",
            json!({"owner_id": user_id, "name": "kept"}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let files = json!([
        {"file_path": "App.tsx", "content": "export default function App() { return null; }\n"},
        {"file_path": "src/index.ts", "content": "import App from '../App';\n"},
    ]);
    api.rpc(
        "bulk_upsert_project_files",
        &token,
        json!({"project_uuid": project, "files": files}),
    )
    .await;
    let object = format!("project-assets/{project}/blobs/kept.bin");
    let bytes: &'static [u8] = b"\x00\x01bytes kept across restarts\xff";
    let up = api
        .http
        .post(api.url(&format!("/storage/v1/object/{object}")))
        .header("apikey", api.key("anon_key"))
        .bearer_auth(&token)
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(up.status(), 200, "{}", up.text().await.unwrap());

    // A second stack on the same dir is refused, naming the holder; the first keeps serving.
    let refused = start_refused(&data_dir, &dir.join("ready-2.json"));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("is in use by another fs-sync-dev")
            && stderr.contains(&format!("pid {}", first.0.id())),
        "{stderr}"
    );
    api.rpc(
        "list_current_files",
        &token,
        json!({"project_uuid": project}),
    )
    .await;

    let out = stop(first);
    assert!(out.contains("(created: the local base and"), "{out}");
    assert_clean_shutdown(&data_dir, &info);
    assert!(!ready.exists());

    // A pid file left by a crash whose pid now belongs to another program (this test) is stale.
    let pid_file = data_dir.join("postgres/postmaster.pid");
    std::fs::write(&pid_file, format!("{}\n", std::process::id())).unwrap();
    let (second, again) = start(&data_dir, &ready);
    for k in ["jwt_secret", "anon_key", "service_role_key", "db_url"] {
        assert_eq!(again[k], info[k], "{k} is kept");
    }
    let api = Api {
        http: reqwest::Client::new(),
        info: again.clone(),
    };
    // The token minted before the restart works: the user, the project and its files are there.
    let current = api
        .rpc(
            "list_current_files",
            &token,
            json!({"project_uuid": project}),
        )
        .await;
    let mut paths: Vec<&str> = current
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["file_path"].as_str().unwrap())
        .collect();
    paths.sort_unstable();
    assert_eq!(paths, ["App.tsx", "src/index.ts"]);
    let projects: Value = api
        .http
        .get(api.url("/rest/v1/projects?select=id,name"))
        .header("apikey", api.key("anon_key"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(projects, json!([{"id": project, "name": "kept"}]));
    let got = api
        .http
        .get(api.url(&format!("/storage/v1/object/authenticated/{object}")))
        .header("apikey", api.key("anon_key"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.unwrap().as_ref(), bytes);

    // Each migration is recorded once, with its checksum: none was applied again.
    let db = fs_sync_pg::connect(&again["db_url"].as_str().unwrap().parse().unwrap())
        .await
        .unwrap();
    let recorded: i64 = db
        .query_one(
            "select count(*) from supabase_migrations.schema_migrations \
             where checksum ~ '^[0-9a-f]{64}$'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        recorded as usize,
        fs_sync_pg::migration_files().unwrap().len()
    );
    drop(db);

    let out = stop(second);
    assert!(out.contains("(reused: no new migrations)"), "{out}");
    assert_clean_shutdown(&data_dir, &again);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_killed_stack_restarts_and_a_changed_migration_is_refused() {
    let dir = temp_dir("data-dir-refuse");
    let data_dir = dir.join("data");
    let ready = dir.join("ready.json");
    let (first, info) = start(&data_dir, &ready);
    // Killed without a chance to stop its cluster (SIGKILL, by the guard): PostgreSQL stops on
    // the parent-death signal, and the next start waits for it rather than failing on its pid
    // file.
    drop(first);
    let (second, again) = start(&data_dir, &ready);
    assert_eq!(again["jwt_secret"], info["jwt_secret"]);

    let db = fs_sync_pg::connect(&again["db_url"].as_str().unwrap().parse().unwrap())
        .await
        .unwrap();
    let version: String = db
        .query_one(
            "update supabase_migrations.schema_migrations set checksum = repeat('0', 64)
             where version = (select min(version) from supabase_migrations.schema_migrations)
             returning version",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    drop(db);
    stop(second);

    let refused = start_refused(&data_dir, &ready);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(&format!(
            "migration {}",
            fs_sync_pg::repo_root().join("migrations").display()
        )) && stderr.contains(&version)
            && stderr.contains("changed after it was applied"),
        "{stderr}"
    );
    // The refused start shut its cluster down again and released the dir.
    assert_clean_shutdown(&data_dir, &again);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The start's error message (DevStack is not Debug, so no `unwrap_err`).
async fn refused(options: Options) -> String {
    match DevStack::start(options).await {
        Ok(stack) => {
            stack.shutdown().await;
            panic!("the start was not refused")
        }
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn in_process_with_a_data_dir() {
    let dir = temp_dir("data-dir-lib");
    let options = || Options {
        port: 0,
        data_dir: Some(dir.join("data")),
        request_log: false,
        ..Options::default()
    };
    let first = DevStack::start(options()).await.unwrap();
    let kept = first.data_dir().unwrap();
    assert!(kept.created);
    assert_eq!(
        kept.migrations_applied.len(),
        fs_sync_pg::migration_files().unwrap().len()
    );
    let info = first.info().clone();
    let err = refused(options()).await;
    assert!(err.contains("is in use by another fs-sync-dev"), "{err}");
    first.shutdown().await;

    let err = refused(Options {
        jwt_secret: Some("another-secret-another-secret-another-secret".into()),
        ..options()
    })
    .await;
    assert!(err.contains("keeps another JWT secret"), "{err}");
    let err = refused(Options {
        database: DatabaseSource::Existing("postgres://supabase_admin@127.0.0.1/fsync".into()),
        ..options()
    })
    .await;
    assert!(err.contains("cannot serve an existing database"), "{err}");

    let second = DevStack::start(options()).await.unwrap();
    let kept = second.data_dir().unwrap();
    assert!(!kept.created);
    assert!(kept.migrations_applied.is_empty() && kept.base_applied.is_empty());
    assert_eq!(second.info().jwt_secret, info.jwt_secret);
    assert_eq!(second.info().anon_key, info.anon_key);
    assert_eq!(second.info().service_role_key, info.service_role_key);
    assert_eq!(second.info().db_url, info.db_url);
    second.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
