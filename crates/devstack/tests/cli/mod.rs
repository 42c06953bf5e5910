//! What the tests of the `fs-sync-dev` binary as a process share.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Polls `f` every 50 ms until it returns a value; fails the test naming `what` after `limit`.
pub fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The contents of a ready file once it has been written.
pub fn read_ready(ready: &Path, limit: Duration) -> Value {
    wait_for("the ready file", limit, || {
        std::fs::read(ready)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
    })
}

/// `fs-sync-dev start --ephemeral --port 0 --quiet` writing its ready file into a new folder
/// named after `name`: the child, that folder and the ready file's contents.
pub fn start_ephemeral(name: &str, stdout: Stdio) -> (Child, PathBuf, Value) {
    let dir = std::env::temp_dir().join(format!("fs-sync-dev-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ready = dir.join("ready.json");
    let child = Command::new(env!("CARGO_BIN_EXE_fs-sync-dev"))
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
        .stdout(stdout)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let info = read_ready(&ready, Duration::from_secs(60));
    (child, dir, info)
}

/// The PostgreSQL port of a ready file's `db_url`.
pub fn pg_port(info: &Value) -> u16 {
    let url = info["db_url"].as_str().unwrap();
    url.rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}
