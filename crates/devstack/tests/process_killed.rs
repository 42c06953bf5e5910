//! `start --ephemeral` killed outright (SIGKILL: no exit handler runs) still leaves no PostgreSQL
//! running: fs-sync-pg's parent-death signal stops the cluster, also when the cluster runs as
//! another OS user (as root, PostgreSQL runs as `postgres`, and a uid change clears that signal
//! unless it is set afterwards).

use std::process::Stdio;
use std::time::Duration;

mod cli;
use cli::{pg_port, start_ephemeral, wait_for};

#[test]
fn sigkill_leaves_no_postgres_running() {
    let (mut child, dir, info) = start_ephemeral("killed-test", Stdio::null());
    let pg_port = pg_port(&info);
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
