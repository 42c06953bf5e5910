//! A local stack per test (own database, in-process fs-sync-dev on a free port), a project with
//! an owner, a snapshot built the way the edge builds it (get_project_snapshot as the service role,
//! fs-sync-core's writer, uploaded to Storage and signed), a container token minted with the
//! stack's JWT secret, and an in-process agent.

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fs_sync_core::{content_hash, Manifest, ManifestEntry, SnapshotWriter, WriteOptions};
use fs_sync_dev::{DatabaseSource, DevStack, Options};
use fs_sync_hydrate::{Agent, Config, Logger, Metrics, MetricsSnapshot, Outcome};
use fs_sync_pg::TestDb;
use serde_json::{json, Value};
use tokio::sync::mpsc;

pub mod edge;

pub const ASSETS: &str = "project-assets";

pub struct Env {
    pub dev: DevStack,
    pub db: TestDb,
    pub http: reqwest::Client,
    pub owner: String,
    pub owner_token: String,
    pub project: String,
    pub session: String,
    pub tmp: tempfile::TempDir,
}

#[derive(Clone)]
pub struct Snapshot {
    pub url: String,
    pub sha256: String,
    pub as_of_seq: u64,
}

pub async fn env() -> Env {
    let db = TestDb::new().await.expect("test database");
    db.admin()
        .batch_execute(
            "update fsync.settings set value = 'false' where key = 'rate_limit.enabled';",
        )
        .await
        .unwrap();
    let dev = DevStack::start(Options {
        port: 0,
        database: DatabaseSource::Existing(db.superuser_url()),
        request_log: false,
        ..Options::default()
    })
    .await
    .expect("stack starts");
    let http = reqwest::Client::new();
    let mut e = Env {
        dev,
        db,
        http,
        owner: String::new(),
        owner_token: String::new(),
        project: String::new(),
        session: "sess-test-1".into(),
        tmp: tempfile::tempdir().unwrap(),
    };
    let u = e.admin("/admin/v1/users", json!({})).await;
    e.owner = u["id"].as_str().unwrap().to_owned();
    let t = e
        .admin(
            "/admin/v1/token",
            json!({"user_id": e.owner, "expires_in": 36000}),
        )
        .await;
    e.owner_token = t["access_token"].as_str().unwrap().to_owned();
    let p = e
        .admin(
            "/admin/v1/projects",
            json!({"owner_id": e.owner, "name": "hydrate test"}),
        )
        .await;
    e.project = p["id"].as_str().unwrap().to_owned();
    // The session the edge's POST /sessions records: container_token() is accepted only while it
    // is live (migrations/*_fsync-sessions.sql).
    let service = e.service();
    e.rpc(
        "open_container_session",
        &service,
        json!({"project_uuid": e.project, "session_id": e.session, "max_age_seconds": 86400}),
    )
    .await;
    e
}

impl Env {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.dev.info().api_url)
    }

    pub fn service(&self) -> String {
        self.dev.info().service_role_key.clone()
    }

    pub async fn admin(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(self.url(path))
            .header("apikey", self.service())
            .bearer_auth(self.service())
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap()
    }

    /// POST /rest/v1/rpc/<f> as `token`; panics unless 2xx.
    pub async fn rpc(&self, f: &str, token: &str, body: Value) -> Value {
        let r = self
            .http
            .post(self.url(&format!("/rest/v1/rpc/{f}")))
            .header("apikey", self.dev.info().anon_key.clone())
            .bearer_auth(token)
            .header("Content-Profile", "public")
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        assert!(status.is_success(), "{f}: {status}: {text}");
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        }
    }

    pub async fn upsert(&self, path: &str, content: &str) -> Value {
        self.rpc(
            "upsert_project_file",
            &self.owner_token,
            json!({"project_uuid": self.project, "p_file_path": path, "p_content": content}),
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> Value {
        self.rpc(
            "delete_project_file",
            &self.owner_token,
            json!({"project_uuid": self.project, "p_file_path": path}),
        )
        .await
    }

    /// Deletes `path` if it exists (a missing path is no error here).
    pub async fn delete_lenient(&self, path: &str) {
        let r = self
            .http
            .post(self.url("/rest/v1/rpc/delete_project_file"))
            .header("apikey", self.dev.info().anon_key.clone())
            .bearer_auth(&self.owner_token)
            .json(&json!({"project_uuid": self.project, "p_file_path": path}))
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_success() || r.status() == reqwest::StatusCode::NOT_FOUND,
            "delete {path}: {}",
            r.status()
        );
    }

    pub async fn rename(&self, from: &str, to: &str) -> Value {
        self.rpc(
            "rename_project_file",
            &self.owner_token,
            json!({"project_uuid": self.project, "p_from_path": from, "p_to_path": to}),
        )
        .await
    }

    pub async fn bulk(&self, files: Value) -> Value {
        self.rpc(
            "bulk_upsert_project_files",
            &self.owner_token,
            json!({"project_uuid": self.project, "files": files}),
        )
        .await
    }

    /// Uploads `bytes` to Storage (service role) and registers them as a binary file.
    pub async fn binary(&self, path: &str, object: &str, bytes: &[u8]) -> Value {
        let storage_path = format!("{ASSETS}/{}/{object}", self.project);
        let r = self
            .http
            .post(self.url(&format!("/storage/v1/object/{storage_path}")))
            .header("apikey", self.service())
            .bearer_auth(self.service())
            .header("content-type", "image/png")
            .header("x-upsert", "true")
            .body(bytes.to_vec())
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "upload: {}", r.status());
        self.rpc(
            "register_binary_file",
            &self.owner_token,
            json!({"project_uuid": self.project, "p_file_path": path,
                   "p_storage_path": storage_path, "p_content_hash": content_hash(bytes),
                   "p_size_bytes": bytes.len()}),
        )
        .await
    }

    async fn storage_get(&self, storage_path: &str) -> Vec<u8> {
        let r = self
            .http
            .get(self.url(&format!("/storage/v1/object/{storage_path}")))
            .header("apikey", self.service())
            .bearer_auth(self.service())
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_success(),
            "download {storage_path}: {}",
            r.status()
        );
        r.bytes().await.unwrap().to_vec()
    }

    /// GET /admin/v1/faults: `{mode, delivered, dropped, held}`.
    pub async fn faults(&self) -> Value {
        let r = self
            .http
            .get(self.url("/admin/v1/faults"))
            .header("apikey", self.service())
            .bearer_auth(self.service())
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "/admin/v1/faults: {}", r.status());
        r.json().await.unwrap()
    }

    /// Waits until fs-sync-dev has dropped `n` messages in all (the drop fault), so a test
    /// resumes delivery only once the messages it meant to lose are lost.
    pub async fn dropped(&self, n: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.faults().await["dropped"].as_u64() < Some(n) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "fs-sync-dev did not drop {n} messages"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn server_seq(&self) -> u64 {
        let v = self
            .rpc(
                "get_project_sync_state",
                &self.service(),
                json!({"project_uuid": self.project}),
            )
            .await;
        v["seq"].as_u64().unwrap()
    }

    /// Cuts a snapshot as fs-sync-edge does and hands out a signed URL to it.
    pub async fn snapshot(&self) -> Snapshot {
        self.snapshot_of(&self.project).await
    }

    /// [`Env::snapshot`] of any project of the stack.
    pub async fn snapshot_of(&self, project: &str) -> Snapshot {
        let s = self
            .rpc(
                "get_project_snapshot",
                &self.service(),
                json!({"project_uuid": project, "include_content": true}),
            )
            .await;
        let mut contents = BTreeMap::new();
        let mut entries = Vec::new();
        for f in s["files"].as_array().unwrap() {
            let path = f["file_path"].as_str().unwrap().to_owned();
            let bytes = match f["content"].as_str() {
                Some(c) => c.as_bytes().to_vec(),
                None => self.storage_get(f["storage_path"].as_str().unwrap()).await,
            };
            entries.push(ManifestEntry {
                content_hash: f["content_hash"].as_str().unwrap().to_owned(),
                file_type: f["file_type"].as_str().unwrap().to_owned(),
                path: path.clone(),
                size: bytes.len() as u64,
                version: f["version"].as_u64().unwrap(),
            });
            contents.insert(path, bytes);
        }
        let as_of_seq = s["as_of_seq"].as_u64().unwrap();
        let manifest = Manifest::new(project.to_owned(), as_of_seq, entries).unwrap();
        let id = manifest.snapshot_id();
        let order: Vec<String> = manifest.files.iter().map(|f| f.path.clone()).collect();
        let mut w = SnapshotWriter::new(Vec::new(), manifest, WriteOptions::default()).unwrap();
        for p in order {
            w.add_file(&p, &contents[&p]).unwrap();
        }
        let (zip, _) = w.finish().unwrap();
        let object = format!("project-snapshots/{project}/{id}.zip");
        let r = self
            .http
            .post(self.url(&format!("/storage/v1/object/{object}")))
            .header("apikey", self.service())
            .bearer_auth(self.service())
            .header("content-type", "application/zip")
            .header("x-upsert", "true")
            .body(zip.clone())
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "snapshot upload: {}", r.status());
        let signed: Value = self
            .http
            .post(self.url(&format!("/storage/v1/object/sign/{object}")))
            .header("apikey", self.service())
            .bearer_auth(self.service())
            .json(&json!({"expiresIn": 3600}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Snapshot {
            url: self.url(&format!(
                "/storage/v1{}",
                signed["signedURL"].as_str().unwrap()
            )),
            sha256: content_hash(&zip),
            as_of_seq,
        }
    }

    /// A container token with exactly docs/contracts.md's claims, valid for `ttl` seconds.
    pub fn container_token(&self, ttl: i64) -> (String, i64) {
        let now = now();
        let token = self.dev.sign(&json!({
            "role": "fsync_container",
            "sub": self.session,
            "project_id": self.project,
            "session_id": self.session,
            "scope": "fsync:read",
            "iat": now,
            "exp": now + ttl,
        }));
        (token, now + ttl)
    }

    /// The container env as fs-sync-edge hands it out.
    pub fn container_env(&self, snap: &Snapshot, token: &str, exp: i64) -> Vec<(String, String)> {
        [
            ("PROJECT_ID", self.project.clone()),
            ("SESSION_ID", self.session.clone()),
            ("SNAPSHOT_URL", snap.url.clone()),
            ("SNAPSHOT_SHA256", snap.sha256.clone()),
            ("SUPABASE_URL", self.dev.info().api_url.clone()),
            ("SUPABASE_ANON_KEY", self.dev.info().anon_key.clone()),
            ("REALTIME_TOKEN", token.to_owned()),
            (
                "TOKEN_EXPIRES_AT",
                chrono::DateTime::from_timestamp(exp, 0)
                    .unwrap()
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    pub fn target(&self) -> PathBuf {
        self.tmp.path().join("container/project")
    }

    /// Config for an in-process agent: metrics on a free port, a 1 s position check.
    pub fn config(&self, snap: &Snapshot) -> Config {
        let (token, exp) = self.container_token(3600);
        let args = [
            "--target".to_owned(),
            self.target().display().to_string(),
            "--metrics-addr".to_owned(),
            "127.0.0.1:0".to_owned(),
            "--sync-interval".to_owned(),
            "1".to_owned(),
            "--no-progress".to_owned(),
        ];
        let mut c = Config::from_env_and_args(self.container_env(snap, &token, exp), args).unwrap();
        c.join_timeout = Duration::from_secs(5);
        c
    }

    /// The live files as the database has them (binaries from Storage).
    pub async fn db_files(&self) -> BTreeMap<String, Vec<u8>> {
        let rows = self
            .rpc(
                "list_current_files",
                &self.service(),
                json!({"project_uuid": self.project}),
            )
            .await;
        let mut out = BTreeMap::new();
        for r in rows.as_array().unwrap() {
            let bytes = match r["content"].as_str() {
                Some(c) => c.as_bytes().to_vec(),
                None => self.storage_get(r["storage_path"].as_str().unwrap()).await,
            };
            out.insert(r["file_path"].as_str().unwrap().to_owned(), bytes);
        }
        out
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Every regular file under `root`, by `/`-separated relative path, except the agent's own
/// reserved `.fs-sync/` folder (never a project path).
pub fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                walk(root, &p, out);
            } else if ft.is_file() {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out.retain(|p, _| !p.starts_with(".fs-sync/"));
    out
}

/// Waits until the folder equals the database byte for byte; panics with the difference.
pub async fn converge(env: &Env, within: Duration) {
    converge_beside(env, &BTreeMap::new(), within).await;
}

/// [`converge`] for a folder that also holds `untracked` files, which must be there unchanged.
pub async fn converge_beside(env: &Env, untracked: &BTreeMap<String, Vec<u8>>, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    let target = env.target();
    loop {
        let mut want = env.db_files().await;
        want.extend(untracked.iter().map(|(k, v)| (k.clone(), v.clone())));
        let have = tree(&target);
        if want == have {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            let missing: Vec<_> = want.keys().filter(|k| !have.contains_key(*k)).collect();
            let extra: Vec<_> = have.keys().filter(|k| !want.contains_key(*k)).collect();
            let differ: Vec<_> = want
                .iter()
                .filter(|(k, v)| have.get(*k).is_some_and(|h| h != *v))
                .map(|(k, _)| k)
                .collect();
            panic!(
                "folder did not converge: missing {missing:?}, extra {extra:?}, differ {differ:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Captured log lines.
#[derive(Clone, Default)]
pub struct Logs(pub Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        // Also show them in the test output (captured unless --nocapture).
        let _ = std::io::stderr().write_all(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }

    pub fn lines(&self) -> Vec<Value> {
        self.text()
            .lines()
            .map(|l| serde_json::from_str(l).expect("every log line is JSON"))
            .collect()
    }
}

pub struct Running {
    pub task: tokio::task::JoinHandle<anyhow::Result<Outcome>>,
    pub metrics: Arc<Metrics>,
    pub addr: std::net::SocketAddr,
    pub signals: mpsc::UnboundedSender<i32>,
    pub logs: Logs,
}

pub async fn start(config: Config) -> Running {
    let logs = Logs::default();
    let logger = Logger::to_writer(
        &config.project_id,
        &config.session_id,
        Box::new(logs.clone()),
    );
    let agent = Agent::start(config, logger).await.unwrap();
    let metrics = agent.metrics();
    let addr = agent.metrics_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(agent.run(rx));
    Running {
        task,
        metrics,
        addr,
        signals: tx,
        logs,
    }
}

impl Running {
    pub fn m(&self) -> MetricsSnapshot {
        self.metrics.snapshot()
    }

    pub async fn ready(&self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while !self.metrics.is_ready() {
            assert!(!self.task.is_finished(), "the agent stopped before ready");
            assert!(tokio::time::Instant::now() < deadline, "not ready in time");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the agent applied everything up to the server's seq.
    pub async fn caught_up_to(&self, seq: u64, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while self.m().last_applied_seq < seq {
            assert!(
                tokio::time::Instant::now() < deadline,
                "agent at seq {} never reached {seq}",
                self.m().last_applied_seq
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// GET a path from the agent's HTTP server: (status, body).
    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = reqwest::get(format!("http://{}{path}", self.addr))
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// GET /healthz: (status, its JSON body).
    pub async fn health(&self) -> (u16, Value) {
        let (status, body) = self.get("/healthz").await;
        (
            status,
            serde_json::from_str(&body).expect("/healthz answers JSON"),
        )
    }

    /// Polls /healthz until `cond` holds; returns the body. Panics after `within`.
    pub async fn health_until(
        &self,
        within: Duration,
        cond: impl Fn(u16, &Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let (status, body) = self.health().await;
            if cond(status, &body) {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "/healthz never got there; last: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM through the signal channel; waits for the run to end.
    pub async fn stop(self) -> Outcome {
        self.signals.send(libc_sigterm()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the agent stops")
            .unwrap()
            .unwrap()
    }

    /// Like a SIGKILL: the run is dropped wherever it is.
    pub async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

pub fn libc_sigterm() -> i32 {
    15
}

/// Waits until `cond` holds; panics after `within`.
pub async fn eventually(within: Duration, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met in time"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs `f` with a deadline, so no test can hang.
pub async fn bounded<F: std::future::Future<Output = ()>>(secs: u64, f: F) {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .expect("the test finished in time");
}
