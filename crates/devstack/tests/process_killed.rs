//! `start --ephemeral` killed outright (SIGKILL: no exit handler runs) still leaves no PostgreSQL
//! running: fs-sync-pg's parent-death signal stops the cluster, also when the cluster runs as
//! another OS user (as root, PostgreSQL runs as `postgres`, and a uid change clears that signal
//! unless it is set afterwards).

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
fn sigkill_leaves_no_postgres_running() {
    let dir = std::env::temp_dir().join(format!("fs-sync-dev-killed-test-{}", std::process::id()));
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
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let info: Value = wait_for("the ready file", Duration::from_secs(60), || {
        std::fs::read(&ready)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
    });
    let pg_port: u16 = info["db_url"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(std::net::TcpStream::connect(("127.0.0.1", pg_port)).is_ok());

    child.kill().unwrap();
    child.wait().unwrap();
    wait_for(
        "the killed stack's PostgreSQL to stop listening",
        Duration::from_secs(30),
        || {
            std::net::TcpStream::connect(("127.0.0.1", pg_port))
                .is_err()
                .then_some(())
        },
    );
    // What the exit handler would have removed; the next cluster's start sweeps it too.
    let _ =
        std::fs::remove_dir_all(std::env::temp_dir().join(format!("fs-sync-pg-{}", child.id())));
    let _ = std::fs::remove_dir_all(&dir);
}
