//! The `fs-sync-hydrate` binary: refuses service credentials; runs `--exec` after hydration,
//! forwards SIGTERM to it and exits with its status.

mod common;

use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use common::{bounded, env};

const BIN: &str = env!("CARGO_BIN_EXE_fs-sync-hydrate");

fn jwt(payload: &str) -> String {
    let b = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    format!(
        "{}.{}.c2ln",
        b(r#"{"alg":"HS256","typ":"JWT"}"#),
        b(payload)
    )
}

fn design_env() -> Vec<(&'static str, String)> {
    vec![
        ("PROJECT_ID", "0f8fad5b-d9cb-469f-a165-70867728950e".into()),
        ("SESSION_ID", "s1".into()),
        ("SNAPSHOT_URL", "http://127.0.0.1:9/x.zip".into()),
        ("SNAPSHOT_SHA256", "ab".repeat(32)),
        ("SUPABASE_URL", "http://127.0.0.1:9".into()),
        (
            "SUPABASE_ANON_KEY",
            jwt(r#"{"role":"anon","exp":4102444800}"#),
        ),
        (
            "REALTIME_TOKEN",
            jwt(r#"{"role":"fsync_container","exp":4102444800}"#),
        ),
        ("TOKEN_EXPIRES_AT", "2100-01-01T00:00:00Z".into()),
        ("EDGE_URL", "http://127.0.0.1:9".into()),
    ]
}

#[test]
fn refuses_to_start_next_to_a_service_credential() {
    let service_jwt = jwt(r#"{"role":"service_role","iss":"supabase-demo","exp":4102444800}"#);
    for (name, value) in [
        ("SUPABASE_SERVICE_ROLE_KEY", service_jwt.as_str()),
        (
            "SUPABASE_JWT_SECRET",
            "super-secret-jwt-token-with-at-least-32-characters",
        ),
        (
            "JWT_SECRET",
            "super-secret-jwt-token-with-at-least-32-characters",
        ),
        ("SOME_INNOCENT_NAME", service_jwt.as_str()),
    ] {
        let out = std::process::Command::new(BIN)
            .env_clear()
            .envs(design_env())
            .env(name, value)
            .args(["--target", "/nonexistent/project", "--metrics-addr", "off"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains("refusing to start") && stderr.contains(name),
            "{stderr}"
        );
        assert!(
            !stderr.contains(value),
            "the secret is never printed: {stderr}"
        );
    }
    // The same env without the credential gets past the check (and fails later, on the network).
    let out = std::process::Command::new(BIN)
        .env_clear()
        .envs(design_env())
        .arg("--help")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--exec"));
}

/// Regression: a failure was printed twice (a JSON log line, then again as plain text).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_is_reported_once_naming_what_failed() {
    bounded(60, async {
        let e = env().await;
        let snap = e.snapshot().await;
        let (token, exp) = e.container_token(3600);
        let target = e.tmp.path().join("container/project");
        let out = tokio::process::Command::new(BIN)
            .env_clear()
            .envs(e.container_env(&snap, &token, exp))
            .env("SNAPSHOT_SHA256", "0".repeat(64))
            .args(["--target", &target.display().to_string()])
            .args(["--metrics-addr", "off", "--no-progress"])
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        let failures: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("SNAPSHOT_SHA256"))
            .collect();
        assert_eq!(failures.len(), 1, "{stderr}");
        let line: serde_json::Value = serde_json::from_str(failures[0]).unwrap();
        assert_eq!(line["event_type"], "agent.failed");
        assert!(line["msg"]
            .as_str()
            .unwrap()
            .contains("refusing to extract it"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_starts_after_hydration_gets_sigterm_forwarded_and_sets_the_exit_code() {
    bounded(120, async {
        let e = env().await;
        e.upsert("package.json", "{\"name\":\"demo\"}\n").await;
        e.upsert("src/main.ts", "console.log(1);\n").await;
        let snap = e.snapshot().await;
        let (token, exp) = e.container_token(3600);
        let root = e.tmp.path().join("container");
        let script = "env > ../child.env; ls > ../seen.txt; trap 'exit 7' TERM; \
                      touch ../started; while :; do sleep 0.05; done";
        let mut child = tokio::process::Command::new(BIN)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(e.container_env(&snap, &token, exp))
            .args(["--target", &root.join("project").display().to_string()])
            .args(["--metrics-addr", "127.0.0.1:0", "--sync-interval", "1"])
            .args(["--exec", script])
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        common::eventually(Duration::from_secs(30), || root.join("started").exists()).await;
        let seen = std::fs::read_to_string(root.join("seen.txt")).unwrap();
        assert_eq!(
            seen, "package.json\nsrc\n",
            "the dev server starts in a hydrated folder"
        );
        let child_env = std::fs::read_to_string(root.join("child.env")).unwrap();
        assert!(!child_env.contains("REALTIME_TOKEN") && !child_env.contains(&token));
        assert!(child_env.contains("PROJECT_ID="));

        // Edits keep flowing while the dev server runs.
        e.upsert("src/main.ts", "console.log(2);\n").await;
        common::converge(&e, Duration::from_secs(20)).await;

        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(child.id().unwrap() as i32, libc::SIGTERM);
        }
        let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .expect("the agent exits")
            .unwrap();
        assert_eq!(status.code(), Some(7), "exits with the dev server's status");
        let mut stderr = String::new();
        tokio::io::AsyncReadExt::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr)
            .await
            .unwrap();
        // The dev server shares stderr (sh reports its killed `sleep`); the agent's lines are JSON.
        let lines: Vec<serde_json::Value> = stderr
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
            .collect();
        let types: Vec<&str> = lines
            .iter()
            .filter_map(|l| l["event_type"].as_str())
            .collect();
        for t in ["ready", "exec.start", "exec.signal", "exec.exited"] {
            assert!(types.contains(&t), "{t} in {types:?}");
        }
        assert!(!stderr.contains(&token));

        // A command that ends by itself ends the agent with its code.
        let mut child = tokio::process::Command::new(BIN)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(e.container_env(&snap, &token, exp))
            .args(["--target", &root.join("project").display().to_string()])
            .args([
                "--metrics-addr",
                "off",
                "--exec",
                "test -f package.json && exit 3",
            ])
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .expect("the agent exits")
            .unwrap();
        assert_eq!(status.code(), Some(3));
    })
    .await;
}

/// A container provisioned with exactly the nine variables POST /sessions returns, and nothing
/// else (no PATH, no HOME, no TMPDIR): it hydrates, serves ready, runs the dev server with a
/// default PATH, and reports its cold start from the token's `iat`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_with_nothing_but_the_nine_container_variables() {
    bounded(120, async {
        let e = std::sync::Arc::new(env().await);
        e.upsert("package.json", "{\"name\":\"demo\"}\n").await;
        let snap = e.snapshot().await;
        let edge = common::edge::start_edge(e.clone(), 3600).await;
        let (token, exp) = e.container_token(3600);
        let mut vars = e.container_env(&snap, &token, exp);
        vars.push(("EDGE_URL".into(), edge.url.clone()));
        let names: Vec<&str> = vars.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "PROJECT_ID",
                "SESSION_ID",
                "SNAPSHOT_URL",
                "SNAPSHOT_SHA256",
                "SUPABASE_URL",
                "SUPABASE_ANON_KEY",
                "REALTIME_TOKEN",
                "TOKEN_EXPIRES_AT",
                "EDGE_URL"
            ]
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let root = e.tmp.path().join("container");
        let mut child = tokio::process::Command::new(BIN)
            .env_clear()
            .envs(vars)
            .args(["--target", &root.join("project").display().to_string()])
            .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
            .args([
                "--exec",
                "echo \"$PATH\" > ../child.path; env > ../child.env; trap 'exit 0' TERM; \
                 while :; do sleep 0.05; done",
            ])
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let health = loop {
            let r = http
                .get(format!("http://127.0.0.1:{port}/healthz"))
                .send()
                .await;
            if let Ok(r) = r {
                if r.status() == 200 {
                    break r.json::<serde_json::Value>().await.unwrap();
                }
            }
            assert!(
                child.try_wait().unwrap().is_none(),
                "the agent exited before ready"
            );
            assert!(tokio::time::Instant::now() < deadline, "never ready");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(health["state"], "ready");
        common::converge(&e, Duration::from_secs(20)).await;
        common::eventually(Duration::from_secs(10), || root.join("child.env").exists()).await;
        let child_env = std::fs::read_to_string(root.join("child.env")).unwrap();
        assert!(!child_env.contains("REALTIME_TOKEN") && !child_env.contains(&token));
        let path = std::fs::read_to_string(root.join("child.path")).unwrap();
        assert!(
            path.contains("/usr/bin"),
            "the dev server gets a PATH: {path}"
        );
        let metrics = http
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let cold: f64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix("hydrate_cold_start_seconds "))
            .expect("hydrate_cold_start_seconds")
            .parse()
            .unwrap();
        assert!(cold > 0.0 && cold < 60.0, "{cold}");

        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(child.id().unwrap() as i32, libc::SIGTERM);
        }
        let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .expect("the agent exits")
            .unwrap();
        let mut stderr = String::new();
        tokio::io::AsyncReadExt::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr)
            .await
            .unwrap();
        assert_eq!(status.code(), Some(0), "{stderr}");
        assert!(!stderr.contains(&token));
    })
    .await;
}
