//! An ephemeral PostgreSQL cluster started from the system's server binaries.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::Error;

/// The bootstrap superuser of a cluster this crate starts, as on Supabase: it applies the local
/// base. Migrations and tests use `postgres`, which is not a superuser there.
pub const SUPERUSER: &str = "supabase_admin";

/// Where a cluster listens and who to connect as.
#[derive(Clone, Debug)]
pub struct Cluster {
    host: String,
    port: u16,
    user: String,
    password: Option<String>,
    data_dir: Option<PathBuf>,
}

impl Cluster {
    /// Uses the server named by a `postgres://supabase_admin[:password]@host[:port]/db` URL: the
    /// local base must be applied by a superuser named `supabase_admin`, and `postgres` (which the
    /// base creates, or demotes) must then be able to log in with the same password or none.
    pub fn from_url(url: &str) -> Result<Cluster, Error> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| Error::Config(format!("DATABASE_URL {url:?}: {e}")))?;
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
            None => "localhost".into(),
        };
        Ok(Cluster {
            host,
            port: config.get_ports().first().copied().unwrap_or(5432),
            user: config.get_user().unwrap_or(SUPERUSER).to_owned(),
            password: config
                .get_password()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
            data_dir: None,
        })
    }

    /// Starts a new cluster in a temporary folder on a free loopback port.
    ///
    /// The bootstrap superuser is [`SUPERUSER`]. When the process runs as root, initdb and postgres
    /// run as the `postgres` OS user (initdb refuses root). The server runs in UTC, as hosted
    /// Supabase does, is tuned for tests (no fsync) and is stopped when this process exits: by an
    /// exit handler, and failing that by the parent-death signal.
    pub fn start() -> Result<Cluster, Error> {
        let bin = server_bindir()?;
        sweep_stale_clusters();
        let data_dir = std::env::temp_dir().join(format!("fs-sync-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data_dir);
        std::fs::create_dir_all(&data_dir)?;
        // The folder was just made by this process: as root, PostgreSQL runs as `postgres`.
        let owner = run_as(&data_dir);
        if let Some((uid, gid)) = owner {
            chown(&data_dir, uid, gid)?;
        }
        let pgdata = data_dir.join("data");
        let out = command(&bin.join("initdb"), owner, libc::SIGQUIT)
            .args([
                "-U",
                SUPERUSER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "-N",
                "-D",
            ])
            .arg(&pgdata)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::Server(format!("cannot run initdb: {e}")))?;
        if !out.status.success() {
            return Err(Error::Server(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let port = free_port()?;
        let child = spawn_postgres(&bin.join("postgres"), owner, &pgdata, &data_dir, port)?;
        let cluster = Cluster {
            host: "127.0.0.1".into(),
            port,
            user: SUPERUSER.into(),
            password: None,
            data_dir: Some(data_dir.clone()),
        };
        register_for_exit(child, data_dir);
        cluster.wait_ready(&pgdata)?;
        Ok(cluster)
    }

    /// A libpq-style URL for `database` as the cluster's superuser.
    pub fn url(&self, database: &str) -> String {
        self.url_as(&self.user, self.password.as_deref(), database)
    }

    /// A URL for `database` as `postgres`, the role migrations and tests run as.
    pub fn postgres_url(&self, database: &str) -> String {
        self.url_as("postgres", self.password.as_deref(), database)
    }

    /// A URL for `database` as `user` (the local cluster trusts every local connection).
    pub fn url_as(&self, user: &str, password: Option<&str>, database: &str) -> String {
        let auth = match password {
            Some(p) => format!("{user}:{p}"),
            None => user.to_owned(),
        };
        format!("postgres://{auth}@{}:{}/{database}", self.host, self.port)
    }

    /// Connection settings for `database` as the superuser.
    pub fn config(&self, database: &str) -> tokio_postgres::Config {
        self.url(database).parse().expect("a URL this type built")
    }

    /// Connection settings for `database` as `postgres`.
    pub fn postgres_config(&self, database: &str) -> tokio_postgres::Config {
        self.postgres_url(database)
            .parse()
            .expect("a URL this type built")
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's folder, when this process started it.
    pub fn data_dir(&self) -> Option<&Path> {
        self.data_dir.as_deref()
    }

    fn wait_ready(&self, pgdata: &Path) -> Result<(), Error> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = format!("127.0.0.1:{}", self.port);
        loop {
            if std::net::TcpStream::connect(&addr).is_ok() && pgdata.join("postmaster.pid").exists()
            {
                // Accepting TCP precedes accepting logins by a moment; the caller's first
                // connection retries (see `connect`).
                return Ok(());
            }
            if Instant::now() > deadline {
                let log =
                    std::fs::read_to_string(pgdata.join("../postgres.log")).unwrap_or_default();
                return Err(Error::Server(format!(
                    "postgres did not start within 30 s:\n{}",
                    log.lines().rev().take(20).collect::<Vec<_>>().join("\n")
                )));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

/// The folder holding the PostgreSQL server binaries (`initdb`, `postgres`): the first folder on
/// `PATH` that has both, else the newest `/usr/lib/postgresql/<version>/bin` (Debian's layout).
pub fn server_bindir() -> Result<PathBuf, Error> {
    if let Some(dir) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .find(|d| d.join("initdb").is_file() && d.join("postgres").is_file())
    }) {
        return Ok(dir);
    }
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|d| d.join("initdb").is_file())
        .collect();
    candidates.sort();
    candidates.pop().ok_or_else(|| {
        Error::Server(
            "PostgreSQL server binaries (initdb, postgres) not found on PATH or in \
             /usr/lib/postgresql/*/bin; run `npm run bootstrap` (installs postgresql-15 on Debian) \
             or set DATABASE_URL"
                .into(),
        )
    })
}

/// Who PostgreSQL runs as: `None` (this process's user) unless this process is root, which
/// PostgreSQL refuses. As root: the owner of `dir` (a data directory) when it exists and is not
/// root, so a cluster keeps running as whoever created it; else the `postgres` OS user; `None`
/// when there is no such user (initdb then fails, naming the problem).
pub fn run_as(dir: &Path) -> Option<(u32, u32)> {
    use std::os::unix::fs::MetadataExt as _;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    if let Ok(meta) = std::fs::metadata(dir) {
        if meta.uid() != 0 {
            return Some((meta.uid(), meta.gid()));
        }
    }
    let name = std::ffi::CString::new("postgres").expect("no NUL");
    // SAFETY: getpwnam returns a pointer to static storage or null; read immediately.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        return None;
    }
    // SAFETY: non-null result of getpwnam.
    Some(unsafe { ((*pw).pw_uid, (*pw).pw_gid) })
}

fn chown(path: &Path, uid: u32, gid: u32) -> Result<(), Error> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(Error::from)
}

/// A command for a PostgreSQL binary (`initdb`, `postgres`) that drops to `owner` (see
/// [`run_as`]; `HOME` is then `/tmp`) and receives `death_signal` when the *thread* that spawns
/// it exits: spawn a server from a thread that lives as long as it should. Use `SIGQUIT`
/// (immediate shutdown) for throwaway data, `SIGINT` (fast, clean shutdown) for data to keep.
pub fn command(program: &Path, owner: Option<(u32, u32)>, death_signal: libc::c_int) -> Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(program);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if let Some((uid, gid)) = owner {
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(gid) != 0
                    || libc::setuid(uid) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
            }
            // After the uid change, which clears the parent-death signal.
            if libc::prctl(libc::PR_SET_PDEATHSIG, death_signal) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    if owner.is_some() {
        cmd.env("HOME", "/tmp");
    }
    cmd
}

/// The server settings every cluster fs-sync starts runs with (throwaway or kept), as `-c`
/// arguments for `postgres`: what the stack and its tests rely on.
pub fn server_settings() -> Vec<String> {
    [
        "max_connections=300",
        "max_locks_per_transaction=256",
        // Lets tests check that change-log order is commit order.
        "track_commit_timestamp=on",
        // realtime.messages partitions are UTC days, inserted_at the session's time.
        "timezone=UTC",
        // Benchmarks read the database time per save from pg_stat_user_functions.
        "track_functions=all",
    ]
    .iter()
    .flat_map(|s| ["-c".to_owned(), (*s).to_owned()])
    .collect()
}

fn spawn_postgres(
    postgres: &Path,
    owner: Option<(u32, u32)>,
    pgdata: &Path,
    data_dir: &Path,
    port: u16,
) -> Result<Child, Error> {
    let log = std::fs::File::create(data_dir.join("postgres.log"))?;
    let socket_dir = data_dir.join("sock");
    std::fs::create_dir_all(&socket_dir)?;
    if let Some((uid, gid)) = owner {
        chown(&socket_dir, uid, gid)?;
    }
    let postgres = postgres.to_path_buf();
    let pgdata = pgdata.to_path_buf();
    // The parent-death signal fires when the spawning *thread* exits, so spawn from a thread that
    // lives as long as the process.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("fs-sync-pg-guardian".into())
        .spawn(move || {
            let child = command(&postgres, owner, libc::SIGQUIT)
                .arg("-D")
                .arg(&pgdata)
                .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
                .arg("-c")
                .arg(format!("unix_socket_directories={}", socket_dir.display()))
                .args([
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                    "shared_buffers=128MB",
                ])
                .args(server_settings())
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("dup log"))
                .stderr(log)
                .spawn();
            let _ = tx.send(child);
            loop {
                std::thread::park();
            }
        })?;
    rx.recv()
        .map_err(|_| Error::Server("guardian thread died".into()))?
        .map_err(|e| Error::Server(format!("cannot start postgres: {e}")))
}

static RUNNING: Mutex<Vec<(Child, PathBuf)>> = Mutex::new(Vec::new());

fn register_for_exit(child: Child, data_dir: PathBuf) {
    let mut running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
    if running.is_empty() {
        // SAFETY: registering a plain extern "C" fn.
        unsafe { libc::atexit(stop_all) };
    }
    running.push((child, data_dir));
}

extern "C" fn stop_all() {
    let mut running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
    for (mut child, dir) in running.drain(..) {
        // SIGQUIT: immediate shutdown; the data is throwaway.
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGQUIT) };
        let _ = child.wait();
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Removes folders of clusters whose process is gone (killed without running exit handlers).
fn sweep_stale_clusters() {
    sweep_orphaned_temp_dirs("fs-sync-pg-");
}

/// Removes the folders `<temp dir>/<prefix><pid>[-…]` whose process `pid` no longer runs: what
/// a process killed without running its exit handlers left behind.
pub fn sweep_orphaned_temp_dirs(prefix: &str) {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix))
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: signal 0 only checks for existence.
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        if !alive {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn free_port() -> Result<u16, Error> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
