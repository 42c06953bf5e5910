//! The binary: `start --ephemeral` prints what a developer needs, writes the ready file, and on
//! SIGTERM exits 0 leaving no PostgreSQL behind.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigterm_stops_everything() {
    let dir = std::env::temp_dir().join(format!("fs-sync-dev-process-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ready = dir.join("ready.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_fs-sync-dev"))
        .args([
            "start",
            "--ephemeral",
            "--port",
            "0",
            "--quiet",
            "--ready-file",
        ])
        .arg(&ready)
        .env_remove("DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let info: Value = wait_for("the ready file", Duration::from_secs(60), || {
        std::fs::read(&ready)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
    });
    for k in [
        "api_url",
        "anon_key",
        "service_role_key",
        "jwt_secret",
        "db_url",
    ] {
        assert!(info[k].as_str().is_some_and(|v| !v.is_empty()), "{k}");
    }
    assert!(info["jwt_secret"].as_str().unwrap().len() >= 40);
    let db_url = info["db_url"].as_str().unwrap();
    let pg_port: u16 = db_url
        .rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(std::net::TcpStream::connect(("127.0.0.1", pg_port)).is_ok());
    let cluster_dir = std::env::temp_dir().join(format!("fs-sync-pg-{}", child.id()));
    assert!(cluster_dir.exists());

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = wait_for("the process to exit", Duration::from_secs(30), || {
        child.try_wait().unwrap()
    });
    assert!(exit.success(), "exit status {exit:?}");
    let out = std::io::read_to_string(child.stdout.take().unwrap()).unwrap();
    assert!(out.contains("API URL: http://127.0.0.1:"), "{out}");
    assert!(out.contains("anon key: "));

    // No orphaned PostgreSQL: its port is closed and its folder removed.
    assert!(std::net::TcpStream::connect(("127.0.0.1", pg_port)).is_err());
    assert!(!cluster_dir.exists());
    assert!(!ready.exists(), "the ready file is removed at shutdown");
    let _ = std::fs::remove_dir_all(&dir);
}
