//! The binary: `start --ephemeral` prints what a developer needs, writes the ready file, and on
//! SIGTERM exits 0 leaving no PostgreSQL behind.

use std::process::{Command, Stdio};
use std::time::Duration;

mod cli;
use cli::{pg_port, start_ephemeral, wait_for};

#[test]
fn sigterm_stops_everything() {
    let (mut child, dir, info) = start_ephemeral("process-test", Stdio::piped());
    let ready = dir.join("ready.json");
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
    let pg_port = pg_port(&info);
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
