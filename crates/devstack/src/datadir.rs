//! A stack that keeps its data (`Options::data_dir`, `fs-sync-dev start --data-dir DIR`).
//!
//! The data dir holds:
//!
//! - `postgres/`: a PostgreSQL cluster of its own (database `fsync`), started on every start and
//!   shut down cleanly (fast shutdown: SIGINT) at stop; `postgres.log` is its server log.
//! - `storage/`: the Storage objects.
//! - `fs-sync-dev.json`: the JWT secret, the anon and service-role keys (issued once, so every
//!   token stays valid across restarts) and the port PostgreSQL last listened on (reused when
//!   free, so the DB URL stays the same).
//! - `fs-sync-dev.lock`: held (flock) while a stack uses the dir, so a second one is refused.
//!
//! The local base and the migrations are applied the way `supabase db push` tracks migrations:
//! each file in its own transaction together with its row (name and SHA-256) in
//! `supabase_migrations.schema_migrations` (base files: `fsync_dev.local_base`). On the next
//! start only files without a row are applied, in name order; an applied file whose contents
//! changed, or that is gone, is refused.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{mpsc, Arc, Mutex, Once};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio_postgres::{Client, Config};

use crate::setup::{as_authenticator, Database};
use crate::Error;

/// The database the stack serves, in the data dir's cluster.
const DATABASE: &str = "fsync";
/// The cluster's bootstrap superuser, as in every local cluster (docs/supabase.md).
const SUPERUSER: &str = fs_sync_pg::SUPERUSER;
const STATE_FILE: &str = "fs-sync-dev.json";
const LOCK_FILE: &str = "fs-sync-dev.lock";

/// The keys a stack signs and hands out.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Keys {
    pub(crate) jwt_secret: String,
    pub(crate) anon_key: String,
    pub(crate) service_role_key: String,
}

#[derive(Serialize, Deserialize)]
struct State {
    #[serde(flatten)]
    keys: Keys,
    postgres_port: u16,
}

/// What a data dir held, and what this start did to it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct DataDirInfo {
    /// The data dir (absolute).
    pub path: PathBuf,
    /// True when this start created the cluster (the dir had none).
    pub created: bool,
    /// Files of the local Supabase base applied by this start (all of them when created).
    pub base_applied: Vec<String>,
    /// Migrations applied by this start, in order (none when nothing new was added).
    pub migrations_applied: Vec<String>,
}

/// A data dir opened for one stack: its database, keys and Storage folder, and the server.
pub(crate) struct Opened {
    pub(crate) db: Database,
    pub(crate) keys: Keys,
    pub(crate) storage_dir: PathBuf,
    pub(crate) server: Arc<PgServer>,
    pub(crate) info: DataDirInfo,
}

/// Opens `dir` (creating it on first use): locks it, starts its cluster and brings the database
/// up to date. `requested_secret` must match the kept one, if any; `fresh` are the keys a new
/// data dir keeps.
pub(crate) async fn open(
    dir: &Path,
    requested_secret: Option<&str>,
    fresh: Keys,
) -> Result<Opened, Error> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Config(format!("creating the data dir {}: {e}", dir.display())))?;
    let dir = dir.canonicalize()?;
    let lock = lock(&dir)?;
    let state_path = dir.join(STATE_FILE);
    let kept = read_state(&state_path)?;
    if let (Some(state), Some(secret)) = (&kept, requested_secret) {
        if state.keys.jwt_secret != secret {
            return Err(Error::Config(format!(
                "the data dir {} keeps another JWT secret (in {}); tokens it issued would \
                 stop working: leave the secret unset to use the kept one",
                dir.display(),
                state_path.display()
            )));
        }
    }
    let keys = kept.as_ref().map_or(fresh, |s| s.keys.clone());
    let pgdata = dir.join("postgres");
    let created = tokio::task::spawn_blocking({
        let pgdata = pgdata.clone();
        move || init_cluster(&pgdata)
    })
    .await
    .map_err(|e| Error::Config(format!("initdb panicked: {e}")))??;
    let port = kept
        .as_ref()
        .map(|s| s.postgres_port)
        .filter(|p| *p != 0 && port_free(*p))
        .map_or_else(free_port, Ok)?;
    write_state(
        &state_path,
        &State {
            keys: keys.clone(),
            postgres_port: port,
        },
    )?;
    let storage_dir = dir.join("storage");
    std::fs::create_dir_all(&storage_dir)?;
    let server = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || PgServer::start(&dir, port, lock)
    })
    .await
    .map_err(|e| Error::Config(format!("starting postgres panicked: {e}")))??;
    match migrate(&server, port).await {
        Ok((base_applied, migrations_applied)) => {
            let admin = config(port, SUPERUSER, DATABASE);
            Ok(Opened {
                db: Database {
                    authenticator: as_authenticator(&admin),
                    url: format!("postgres://postgres@127.0.0.1:{port}/{DATABASE}"),
                    admin,
                    drop_on_shutdown: None,
                },
                keys,
                storage_dir,
                server,
                info: DataDirInfo {
                    path: dir,
                    created,
                    base_applied,
                    migrations_applied,
                },
            })
        }
        Err(e) => {
            stop(server).await;
            Err(e)
        }
    }
}

/// Stops the cluster cleanly and releases the data dir.
pub(crate) async fn stop(server: Arc<PgServer>) {
    let _ = tokio::task::spawn_blocking(move || {
        server.stop();
        RUNNING
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|s| !Arc::ptr_eq(s, &server));
    })
    .await;
}

fn config(port: u16, user: &str, database: &str) -> Config {
    let mut c = Config::new();
    c.host("127.0.0.1").port(port).user(user).dbname(database);
    c
}

/// Takes the data dir's lock, or says which process holds it.
fn lock(dir: &Path) -> Result<File, Error> {
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Error::Config(format!("opening {}: {e}", path.display())))?;
    // flock, not a pid file: the kernel releases it when the holder dies, however it dies.
    // SAFETY: flock on a descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(Error::Config(format!("locking {}: {e}", path.display())));
        }
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        return Err(Error::Config(format!(
            "the data dir {} is in use by another fs-sync-dev (pid {}, per {}): stop it \
             first, or pass another --data-dir or --ephemeral",
            dir.display(),
            holder.trim(),
            path.display()
        )));
    }
    file.set_len(0)?;
    write!(file, "{}", std::process::id())?;
    Ok(file)
}

fn read_state(path: &Path) -> Result<Option<State>, Error> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            Error::Config(format!(
                "{} is not an fs-sync-dev state file ({e}); remove the data dir to start over",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Config(format!("reading {}: {e}", path.display()))),
    }
}

/// Writes the state file atomically, readable by its owner only (it holds the JWT secret).
fn write_state(path: &Path, state: &State) -> Result<(), Error> {
    let tmp = path.with_extension("json.tmp");
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(&serde_json::to_vec_pretty(state).expect("serialisable"))?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Creates the cluster when `pgdata` has none; true when it did.
fn init_cluster(pgdata: &Path) -> Result<bool, Error> {
    if pgdata.join("PG_VERSION").is_file() {
        return Ok(false);
    }
    if std::fs::read_dir(pgdata).is_ok_and(|mut d| d.next().is_some()) {
        return Err(Error::Config(format!(
            "{} is neither empty nor a PostgreSQL data directory; move it away",
            pgdata.display()
        )));
    }
    std::fs::create_dir_all(pgdata)?;
    let owner = fs_sync_pg::run_as(pgdata);
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(pgdata, Some(uid), Some(gid))?;
    }
    let out = fs_sync_pg::command(&server_binary("initdb")?, owner, libc::SIGINT)
        .args([
            "-U",
            SUPERUSER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "-D",
        ])
        .arg(pgdata)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Config(format!("cannot run initdb: {e}")))?;
    if !out.status.success() {
        // A half-made cluster would be refused on every later start.
        let _ = std::fs::remove_dir_all(pgdata);
        return Err(Error::Config(format!(
            "initdb {} failed: {}{}",
            pgdata.display(),
            String::from_utf8_lossy(&out.stderr).trim(),
            if owner.is_some() {
                " (as root, PostgreSQL runs as the `postgres` OS user, which must be able to \
                 reach the data dir)"
            } else {
                ""
            }
        )));
    }
    Ok(true)
}

/// The PostgreSQL server of a data dir, started by this process.
pub(crate) struct PgServer {
    pgdata: PathBuf,
    log: PathBuf,
    running: Mutex<Option<Running>>,
}

struct Running {
    child: Child,
    /// Dropped after the server exited: ends the thread that spawned it.
    _guardian: mpsc::Sender<()>,
    /// Released only once the server is down, so the next stack never meets it still running.
    _lock: File,
}

static RUNNING: Mutex<Vec<Arc<PgServer>>> = Mutex::new(Vec::new());

impl PgServer {
    fn start(dir: &Path, port: u16, lock: File) -> Result<Arc<PgServer>, Error> {
        let pgdata = dir.join("postgres");
        let log = dir.join("postgres.log");
        wait_for_previous_server(&pgdata)?;
        let owner = fs_sync_pg::run_as(&pgdata);
        let postgres = server_binary("postgres")?;
        let log_file = OpenOptions::new().create(true).append(true).open(&log)?;
        // SIGINT if fs-sync-dev dies: a fast, clean shutdown of data that is kept.
        let mut cmd = fs_sync_pg::command(&postgres, owner, libc::SIGINT);
        cmd.arg("-D")
            .arg(&pgdata)
            .args(["-p", &port.to_string()])
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                // TCP only: a socket path under the data dir could exceed the 107-byte limit.
                "-c",
                "unix_socket_directories=",
            ])
            .args(fs_sync_pg::server_settings())
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file);
        // The parent-death signal fires when the spawning *thread* exits: spawn from a thread
        // that lives until the server has stopped.
        let (tx, rx) = mpsc::channel();
        let (guardian, done) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("fs-sync-dev-postgres".into())
            .spawn(move || {
                let _ = tx.send(cmd.spawn());
                let _ = done.recv();
            })?;
        let child = rx
            .recv()
            .map_err(|_| Error::Config("the postgres guardian thread died".into()))?
            .map_err(|e| Error::Config(format!("cannot start {}: {e}", postgres.display())))?;
        let server = Arc::new(PgServer {
            pgdata,
            log,
            running: Mutex::new(Some(Running {
                child,
                _guardian: guardian,
                _lock: lock,
            })),
        });
        static AT_EXIT: Once = Once::new();
        // SAFETY: registering a plain extern "C" fn.
        AT_EXIT.call_once(|| unsafe {
            libc::atexit(stop_all);
        });
        RUNNING
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(server.clone());
        Ok(server)
    }

    /// The server's exit status, when it has exited.
    fn exited(&self) -> Option<String> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        match running.as_mut().map(|r| r.child.try_wait()) {
            Some(Ok(Some(status))) => Some(status.to_string()),
            Some(_) => None,
            None => Some("stopped".into()),
        }
    }

    /// The last lines of the server log, for error messages.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut lines: Vec<&str> = log.lines().rev().take(15).collect();
        lines.reverse();
        lines.join("\n")
    }

    /// Fast shutdown (SIGINT: sessions end, a checkpoint is written), waited for; SIGQUIT if it
    /// takes over a minute. Idempotent.
    fn stop(&self) {
        let Some(mut running) = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        else {
            return;
        };
        let pid = running.child.id() as i32;
        // SAFETY: signalling our own child.
        unsafe { libc::kill(pid, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match running.child.try_wait() {
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok(None) => {
                    // SAFETY: as above.
                    unsafe { libc::kill(pid, libc::SIGQUIT) };
                    let _ = running.child.wait();
                    break;
                }
                _ => break,
            }
        }
    }
}

extern "C" fn stop_all() {
    let servers: Vec<_> = RUNNING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain(..)
        .collect();
    for s in servers {
        s.stop();
    }
}

/// A server left by a stack that was killed shuts down on its own (parent-death signal): wait
/// for it. One that stays up was started by something else.
fn wait_for_previous_server(pgdata: &Path) -> Result<(), Error> {
    let pid_file = pgdata.join("postmaster.pid");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pid = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<i32>().ok()));
        let Some(pid) = pid.filter(|p| *p > 0) else {
            return Ok(());
        };
        // SAFETY: signal 0 only checks for existence.
        let alive = unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        if !alive {
            return Ok(());
        }
        // After a reboot the pid may belong to something else: PostgreSQL would refuse to start
        // over that, but with the lock held no stack of ours uses the cluster.
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if !comm.is_empty() && comm.trim() != "postgres" {
            std::fs::remove_file(&pid_file)?;
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::Config(format!(
                "PostgreSQL (pid {pid}) is still running on {}, not started by an fs-sync-dev \
                 holding the data dir: stop it (kill -INT {pid}) and start again",
                pgdata.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for the server, then applies what the database does not have yet.
async fn migrate(server: &PgServer, port: u16) -> Result<(Vec<String>, Vec<String>), Error> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let maintenance = loop {
        match config(port, SUPERUSER, "postgres")
            .connect(tokio_postgres::NoTls)
            .await
        {
            Ok((client, conn)) => {
                tokio::spawn(conn);
                break client;
            }
            Err(e) => {
                if let Some(status) = server.exited() {
                    return Err(Error::Config(format!(
                        "postgres on {} exited ({status}); its log ends:\n{}",
                        server.pgdata.display(),
                        server.log_tail()
                    )));
                }
                if Instant::now() > deadline {
                    return Err(Error::Config(format!(
                        "postgres on {} did not accept connections within 120 s ({}); its log \
                         ends:\n{}",
                        server.pgdata.display(),
                        fs_sync_pg::db_message(&e),
                        server.log_tail()
                    )));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let exists = maintenance
        .query_opt("select 1 from pg_database where datname = $1", &[&DATABASE])
        .await?
        .is_some();
    if !exists {
        maintenance
            .batch_execute(&format!("create database {DATABASE}"))
            .await?;
    }
    drop(maintenance);

    let mut admin = fs_sync_pg::connect(&config(port, SUPERUSER, DATABASE)).await?;
    // Bookkeeping of the local stand-in only: hosted projects have no such schema.
    admin
        .batch_execute(
            "create schema if not exists fsync_dev;
             revoke all on schema fsync_dev from public;",
        )
        .await?;
    let base = apply_tracked(
        &mut admin,
        &fs_sync_pg::base_files()?,
        "fsync_dev.local_base",
        "local Supabase base file",
        Changed::Reapply,
    )
    .await?;
    let mut postgres = fs_sync_pg::connect(&config(port, "postgres", DATABASE)).await?;
    // What `supabase db push` keeps, created by `postgres` as the CLI does; plus each file's
    // checksum, so an edited migration is noticed.
    postgres
        .batch_execute("create schema if not exists supabase_migrations")
        .await?;
    let migrations = apply_tracked(
        &mut postgres,
        &fs_sync_pg::migration_files()?,
        "supabase_migrations.schema_migrations",
        "migration",
        Changed::Refuse,
    )
    .await?;
    Ok((base, migrations))
}

/// `20251126090000_fsync-setup.sql` → (`20251126090000`, `fsync-setup`), as the Supabase CLI
/// splits names; `00_roles.sql` → (`00`, `roles`).
fn version_and_name(file: &Path) -> (String, String) {
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    match stem.split_once('_') {
        Some((v, n)) => (v.to_owned(), n.to_owned()),
        None => (stem.clone(), stem),
    }
}

/// What to do with a file whose contents changed after it was applied.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Changed {
    /// Refuse to start (migrations: `supabase db push` never re-runs one either).
    Refuse,
    /// Apply it again (the local base: written to be re-run, as Supabase's images re-apply
    /// their own schemas on upgrade). Files gone from disk are left alone.
    Reapply,
}

/// Applies, in order, the `files` that `table` (schema-qualified; created when missing, in an
/// existing schema) has no row for (and, with [`Changed::Reapply`], those whose contents
/// changed), each in one transaction with its row; otherwise refuses when a recorded file
/// changed or is gone. Returns the files applied.
pub(crate) async fn apply_tracked(
    client: &mut Client,
    files: &[PathBuf],
    table: &str,
    kind: &str,
    changed: Changed,
) -> Result<Vec<String>, Error> {
    client
        .batch_execute(&format!(
            "create table if not exists {table} (
               version text primary key,
               name text not null,
               checksum text not null,
               applied_at timestamptz not null default now()
             )"
        ))
        .await?;
    let recorded: HashMap<String, (String, String)> = client
        .query(&format!("select version, name, checksum from {table}"), &[])
        .await?
        .into_iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect();
    let mut pending = Vec::new();
    let mut on_disk = HashSet::new();
    for file in files {
        let sql = std::fs::read_to_string(file)?;
        let checksum = hex::encode(Sha256::digest(sql.as_bytes()));
        let (version, name) = version_and_name(file);
        let file_name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match recorded.get(&version) {
            Some((was_name, was)) if *was_name == name && *was == checksum => {}
            Some(_) if changed == Changed::Reapply => {
                pending.push((file, file_name, version.clone(), name, checksum, sql));
            }
            Some((was_name, was)) => {
                return Err(Error::Config(format!(
                    "{kind} {} changed after it was applied to this data dir's database \
                     (applied: {version}_{was_name}, sha256 {was}; now: {file_name}, sha256 \
                     {checksum}). An applied {kind} must not change: put the change in a new \
                     file, or start over with an empty data dir (its data is lost) or \
                     --ephemeral",
                    file.display()
                )));
            }
            None => pending.push((file, file_name, version.clone(), name, checksum, sql)),
        }
        on_disk.insert(version);
    }
    let mut gone: Vec<_> = recorded
        .iter()
        .filter(|(v, _)| !on_disk.contains(*v))
        .map(|(v, (n, _))| format!("{v}_{n}.sql"))
        .collect();
    if !gone.is_empty() && changed == Changed::Refuse {
        gone.sort();
        return Err(Error::Config(format!(
            "this data dir's database has {kind}s applied that are no longer on disk: {}. \
             Restore them, or start over with an empty data dir (its data is lost) or --ephemeral",
            gone.join(", ")
        )));
    }
    let mut applied = Vec::with_capacity(pending.len());
    for (file, file_name, version, name, checksum, sql) in pending {
        let tx = client.transaction().await?;
        tx.batch_execute(&sql)
            .await
            .map_err(|e| fs_sync_pg::Error::Sql {
                file: file.display().to_string(),
                message: fs_sync_pg::db_message(&e),
            })?;
        tx.execute(
            &format!(
                "insert into {table} (version, name, checksum) values ($1, $2, $3)
                 on conflict (version) do update
                 set name = excluded.name, checksum = excluded.checksum, applied_at = now()"
            ),
            &[&version, &name, &checksum],
        )
        .await?;
        tx.commit().await?;
        applied.push(file_name);
    }
    Ok(applied)
}

/// `initdb` or `postgres` of the system's PostgreSQL ([`fs_sync_pg::server_bindir`]).
fn server_binary(name: &str) -> Result<PathBuf, Error> {
    fs_sync_pg::server_bindir()
        .map(|dir| dir.join(name))
        .map_err(|e| {
            Error::Config(format!(
                "{e} (a data dir runs a cluster of its own: DATABASE_URL is used with --ephemeral only)"
            ))
        })
}

fn port_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

fn free_port() -> Result<u16, Error> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn run(client: &mut Client, files: Vec<PathBuf>) -> Result<Vec<String>, Error> {
        apply_tracked(client, &files, "tracked.m", "migration", Changed::Refuse).await
    }

    fn write(dir: &Path, name: &str, sql: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, sql).unwrap();
        p
    }

    #[test]
    fn splits_versions_as_the_supabase_cli_does() {
        assert_eq!(
            version_and_name(Path::new("m/20251126090000_fsync-setup.sql")),
            ("20251126090000".into(), "fsync-setup".into())
        );
        assert_eq!(
            version_and_name(Path::new("00_roles.sql")),
            ("00".into(), "roles".into())
        );
    }

    /// New files are applied in order, applied ones are not re-run, changed or missing ones are
    /// refused: on a real database, with migration files of this test's own.
    #[tokio::test]
    async fn applies_only_new_files_and_refuses_changed_ones() {
        let db = fs_sync_pg::TestDb::new().await.unwrap();
        let mut client = fs_sync_pg::connect(&db.url().parse().unwrap())
            .await
            .unwrap();
        client
            .batch_execute(
                "create schema tracked;
                 create table tracked.log (n int);",
            )
            .await
            .unwrap();
        let dir = std::env::temp_dir().join(format!("fs-sync-dev-tracked-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = write(&dir, "001_a.sql", "insert into tracked.log values (1);");
        let b = write(&dir, "002_b.sql", "insert into tracked.log values (2);");
        assert_eq!(
            run(&mut client, vec![a.clone(), b.clone()]).await.unwrap(),
            ["001_a.sql", "002_b.sql"]
        );
        assert!(run(&mut client, vec![a.clone(), b.clone()])
            .await
            .unwrap()
            .is_empty());
        // Added later, even sorting between applied ones: applied once, in order.
        let c = write(&dir, "0015_c.sql", "insert into tracked.log values (3);");
        let d = write(&dir, "003_d.sql", "insert into tracked.log values (4);");
        assert_eq!(
            run(
                &mut client,
                vec![a.clone(), c.clone(), b.clone(), d.clone()]
            )
            .await
            .unwrap(),
            ["0015_c.sql", "003_d.sql"]
        );
        // A failing file leaves neither its effects nor its row.
        let bad = write(
            &dir,
            "004_bad.sql",
            "insert into tracked.log values (5); select 1/0;",
        );
        let all = vec![a.clone(), c.clone(), b.clone(), d.clone()];
        let err = run(&mut client, [all.clone(), vec![bad.clone()]].concat())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("004_bad.sql") && err.contains("22012"),
            "{err}"
        );
        std::fs::remove_file(&bad).unwrap();
        let log: Vec<i32> = client
            .query("select n from tracked.log order by n", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(log, [1, 2, 3, 4]);

        write(&dir, "002_b.sql", "insert into tracked.log values (20);");
        let err = run(&mut client, all.clone()).await.unwrap_err().to_string();
        assert!(
            err.contains("002_b.sql") && err.contains("changed after it was applied"),
            "{err}"
        );
        // The local base's rule: a changed file runs again, once.
        let again = apply_tracked(&mut client, &all, "tracked.m", "base", Changed::Reapply);
        assert_eq!(again.await.unwrap(), ["002_b.sql"]);
        let again = apply_tracked(&mut client, &all, "tracked.m", "base", Changed::Reapply);
        assert!(again.await.unwrap().is_empty());
        let n: i64 = client
            .query_one("select count(*) from tracked.log where n = 20", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 1);
        let err = run(&mut client, vec![a, c, b])
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("no longer on disk: 003_d.sql"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
