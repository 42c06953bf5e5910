//! A stack per test: its own database (cloned from the schema template) and an in-process
//! server on a free port.

#![allow(dead_code, unreachable_pub)]

use fs_sync_dev::{DatabaseSource, DevStack, Options};
use fs_sync_pg::TestDb;
use serde_json::{json, Value};

pub struct Stack {
    pub dev: DevStack,
    pub db: TestDb,
    pub http: reqwest::Client,
}

pub async fn stack() -> Stack {
    let db = TestDb::new().await.expect("test database");
    let dev = DevStack::start(Options {
        port: 0,
        database: DatabaseSource::Existing(db.superuser_url()),
        request_log: false,
        ..Options::default()
    })
    .await
    .expect("stack starts");
    Stack {
        dev,
        db,
        http: reqwest::Client::new(),
    }
}

impl Stack {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.dev.info().api_url)
    }

    pub fn anon(&self) -> String {
        self.dev.info().anon_key.clone()
    }

    pub fn service(&self) -> String {
        self.dev.info().service_role_key.clone()
    }

    /// POST to the admin API with the service-role key.
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

    /// `GET /admin/v1/faults`: the delivery mode and counts.
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

    /// Polls `GET /admin/v1/faults` until `done` holds for it (10 s at most); returns it.
    pub async fn faults_until(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let f = self.faults().await;
            if done(&f) {
                return f;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}: {f}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// A new user: (id, access token).
    pub async fn user(&self) -> (String, String) {
        let u = self.admin("/admin/v1/users", json!({})).await;
        (
            u["id"].as_str().unwrap().to_owned(),
            u["access_token"].as_str().unwrap().to_owned(),
        )
    }

    pub async fn project(&self, owner: &str) -> String {
        let p = self
            .admin(
                "/admin/v1/projects",
                json!({"owner_id": owner, "name": "test"}),
            )
            .await;
        p["id"].as_str().unwrap().to_owned()
    }

    /// POST /rest/v1/rpc/<f> with the anon key as apikey and `token` as bearer (if any).
    pub async fn rpc(&self, f: &str, token: Option<&str>, body: Value) -> reqwest::Response {
        let mut req = self
            .http
            .post(self.url(&format!("/rest/v1/rpc/{f}")))
            .header("apikey", self.anon())
            .json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    pub fn sign(&self, claims: Value) -> String {
        self.dev.sign(&claims)
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
