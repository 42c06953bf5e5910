//! fs-sync-dev: a local Supabase-compatible stack for developing, demonstrating and testing
//! fs-sync on one machine, over real PostgreSQL.
//!
//! On one port it serves the Supabase surfaces fs-sync uses, wire-compatible with the official
//! `@supabase/supabase-js` client (behaviour per docs/supabase.md):
//!
//! - `/rest/v1/rpc/<fn>`: PostgREST's function calls: JWT verification, role switch, request
//!   settings, named-argument matching, response shapes and its SQLSTATE→HTTP error mapping.
//! - `/rest/v1/<table>`: PostgREST's table and view endpoints (filters, order, ranges, counts,
//!   inserts, upserts, updates, deletes and their `Prefer` shapes), without resource embedding.
//! - `/storage/v1/object/…`: upload, signed URLs and downloads, with `storage.objects` rows
//!   written under the caller's role so bucket policies apply; objects live on local disk.
//! - `/realtime/v1/websocket`: Phoenix channels (protocol 1.0.0 and 2.0.0 with binary
//!   broadcast frames), private-channel authorization as Realtime does it, and delivery of
//!   committed `realtime.messages` rows in commit order.
//! - `/auth/v1/…`: Supabase Auth's (GoTrue's) admin user creation and deletion and the password
//!   grant, as supabase-js's `auth.admin.createUser`, `auth.admin.deleteUser` and
//!   `auth.signInWithPassword` call them; passwords kept as bcrypt hashes in `auth.users`.
//! - `/admin/v1/…` (service-role key only): create users, mint access tokens, create projects,
//!   inject faults (drop websockets, pause or resume delivery) and count what delivery did.
//!
//! [`DevStack::start`] starts PostgreSQL (an ephemeral cluster, or `DATABASE_URL`), creates a
//! database with the local Supabase base and fs-sync's migrations, and serves; tests use it
//! in-process on port 0. With [`Options::data_dir`] it keeps its cluster, keys and Storage
//! objects in that folder instead and continues from them on the next start (see
//! [`DataDirInfo`]):
//!
//! ```no_run
//! # async fn demo() -> Result<(), fs_sync_dev::Error> {
//! let stack = fs_sync_dev::DevStack::start(fs_sync_dev::Options::default()).await?;
//! let info = stack.info();
//! println!("{} anon key {}", info.api_url, info.anon_key);
//! stack.shutdown().await;
//! # Ok(()) }
//! ```

// Handlers return ready-made error responses as their `Err`; boxing them would only add noise.
#![allow(clippy::result_large_err)]

mod admin;
mod auth;
mod datadir;
mod http;
mod jwt;
mod pool;
mod realtime;
mod rest;
mod setup;
mod storage;
mod timefmt;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::watch;

pub use datadir::DataDirInfo;
pub use jwt::JwtError;

/// What can go wrong starting the stack.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// PostgreSQL could not be started or prepared.
    #[error(transparent)]
    Postgres(#[from] fs_sync_pg::Error),
    /// A database call failed.
    #[error("database: {}", fs_sync_pg::db_message(.0))]
    Db(#[from] tokio_postgres::Error),
    /// A configuration problem.
    #[error("{0}")]
    Config(String),
    /// Binding the port or another I/O step failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Which database the stack serves.
#[derive(Clone, Debug, Default)]
pub enum DatabaseSource {
    /// `DATABASE_URL` when set (a new database is created on that server and dropped at
    /// shutdown), else an ephemeral cluster started by this process (database `fsync`); the
    /// local base and the migrations are applied.
    #[default]
    Auto,
    /// An existing database, as the superuser (`supabase_admin`), that already has the base and
    /// migrations (e.g. an `fs_sync_pg::TestDb`'s `superuser_url()`). Nothing is applied or
    /// dropped.
    Existing(String),
}

/// How to start the stack.
#[derive(Clone, Debug)]
pub struct Options {
    /// The address to listen on (default 127.0.0.1).
    pub bind: IpAddr,
    /// The port; 0 picks a free one (default 54321, Supabase CLI's API port).
    pub port: u16,
    /// The database.
    pub database: DatabaseSource,
    /// Where uploaded objects are kept (default: `<data_dir>/storage`, else a temporary folder
    /// removed at shutdown).
    pub storage_dir: Option<PathBuf>,
    /// Keep the data in this folder and continue from it on the next start: a PostgreSQL cluster
    /// of its own (shut down cleanly by [`DevStack::shutdown`]; `DATABASE_URL` is not consulted),
    /// the keys and the Storage objects. A folder already in use by another stack is refused.
    /// Needs [`DatabaseSource::Auto`]. Default: none, everything ephemeral.
    pub data_dir: Option<PathBuf>,
    /// The JWT secret (default: 48 random characters, new for every start; with a data dir,
    /// the one it keeps, and a different one is refused).
    pub jwt_secret: Option<String>,
    /// Write one JSON line per request to stderr (default true).
    pub request_log: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 54321,
            database: DatabaseSource::Auto,
            storage_dir: None,
            data_dir: None,
            jwt_secret: None,
            request_log: true,
        }
    }
}

/// What a client needs to reach the stack, as `supabase start` prints it.
#[derive(Clone, Debug, Serialize)]
pub struct ReadyInfo {
    /// Base URL of the API (`http://127.0.0.1:<port>`).
    pub api_url: String,
    /// The anon key: an HS256 JWT with role `anon`.
    pub anon_key: String,
    /// The service-role key: an HS256 JWT with role `service_role`.
    pub service_role_key: String,
    /// The JWT secret every token is signed with. Local only.
    pub jwt_secret: String,
    /// The database as `postgres` (no superuser, as on a hosted project).
    pub db_url: String,
}

/// Shared state of the running stack.
pub(crate) struct App {
    pub(crate) info: ReadyInfo,
    pub(crate) rest_pool: pool::Pool,
    pub(crate) admin_pool: pool::Pool,
    pub(crate) role_settings: rest::RoleSettings,
    pub(crate) procs: rest::ProcCache,
    pub(crate) storage_dir: PathBuf,
    pub(crate) hub: Arc<realtime::Hub>,
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) request_log: bool,
}

/// A running stack. Dropping it without [`DevStack::shutdown`] leaves it serving until the
/// process exits.
pub struct DevStack {
    info: ReadyInfo,
    addr: SocketAddr,
    app: Arc<App>,
    stop: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
    listener_task: tokio::task::JoinHandle<()>,
    janitor_task: tokio::task::JoinHandle<()>,
    remove_storage: bool,
    drop_database: Option<(tokio_postgres::Config, String)>,
    postgres: Option<Arc<datadir::PgServer>>,
    data_dir: Option<DataDirInfo>,
}

impl DevStack {
    /// Prepares the database, binds the port and starts serving.
    pub async fn start(options: Options) -> Result<DevStack, Error> {
        let fresh = new_keys(options.jwt_secret.clone().unwrap_or_else(random_secret));
        let Some(dir) = &options.data_dir else {
            let db = setup::prepare(&options.database).await?;
            return DevStack::serve(options, db, fresh, None).await;
        };
        if !matches!(options.database, DatabaseSource::Auto) {
            return Err(Error::Config(
                "a data dir keeps its own PostgreSQL cluster: it cannot serve an existing \
                 database (DatabaseSource::Existing)"
                    .into(),
            ));
        }
        let opened = datadir::open(dir, options.jwt_secret.as_deref(), fresh).await?;
        let server = opened.server.clone();
        let persisted = Persisted {
            storage_dir: opened.storage_dir,
            server: opened.server,
            info: opened.info,
        };
        match DevStack::serve(options, opened.db, opened.keys, Some(persisted)).await {
            Ok(stack) => Ok(stack),
            Err(e) => {
                datadir::stop(server).await;
                Err(e)
            }
        }
    }

    async fn serve(
        options: Options,
        db: setup::Database,
        keys: datadir::Keys,
        persisted: Option<Persisted>,
    ) -> Result<DevStack, Error> {
        let listener = tokio::net::TcpListener::bind((options.bind, options.port)).await?;
        let addr = listener.local_addr()?;
        let api_url = match addr.ip() {
            IpAddr::V6(ip) => format!("http://[{ip}]:{}", addr.port()),
            IpAddr::V4(ip) => format!("http://{ip}:{}", addr.port()),
        };
        let info = ReadyInfo {
            api_url,
            anon_key: keys.anon_key,
            service_role_key: keys.service_role_key,
            jwt_secret: keys.jwt_secret,
            db_url: db.url.clone(),
        };
        let kept_storage = persisted.as_ref().map(|p| p.storage_dir.clone());
        let (storage_dir, remove_storage) = match options.storage_dir.clone().or(kept_storage) {
            Some(d) => (d, false),
            None => (
                {
                    fs_sync_pg::sweep_orphaned_temp_dirs("fs-sync-dev-storage-");
                    std::env::temp_dir()
                }
                .join(format!(
                    "fs-sync-dev-storage-{}-{}",
                    std::process::id(),
                    uuid::Uuid::new_v4().simple()
                )),
                true,
            ),
        };
        std::fs::create_dir_all(&storage_dir)?;

        let rest_pool = pool::new(db.authenticator.clone(), 32)?;
        let admin_pool = pool::new(db.admin.clone(), 16)?;
        let role_settings = {
            let conn = admin_pool.get().await.map_err(|e| match e {
                pool::PoolError::Backend(e) => Error::Db(e),
                other => Error::Config(format!("connection pool: {other}")),
            })?;
            rest::RoleSettings::load(&conn).await?
        };
        let (stop, shutdown) = watch::channel(false);
        let hub = Arc::new(realtime::Hub::new());
        let listener_task =
            realtime::spawn_listener(db.admin.clone(), hub.clone(), shutdown.clone()).await?;
        let janitor_task = realtime::spawn_janitor(admin_pool.clone(), shutdown.clone()).await?;

        let app = Arc::new(App {
            info: info.clone(),
            rest_pool,
            admin_pool,
            role_settings,
            procs: rest::ProcCache::default(),
            storage_dir,
            hub,
            shutdown: shutdown.clone(),
            request_log: options.request_log,
        });
        let router = http::router(app.clone());
        let mut stop_rx = shutdown.clone();
        // No Nagle delay: small websocket frames and responses go out at once.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stop_rx.wait_for(|s| *s).await;
                })
                .await;
        });
        Ok(DevStack {
            info,
            addr,
            app,
            stop,
            server,
            listener_task,
            janitor_task,
            remove_storage,
            drop_database: db.drop_on_shutdown,
            postgres: persisted.as_ref().map(|p| p.server.clone()),
            data_dir: persisted.map(|p| p.info),
        })
    }

    /// The data dir and what this start applied to it ([`Options::data_dir`]); `None` when
    /// ephemeral.
    pub fn data_dir(&self) -> Option<&DataDirInfo> {
        self.data_dir.as_ref()
    }

    /// URLs and keys.
    pub fn info(&self) -> &ReadyInfo {
        &self.info
    }

    /// The address the stack listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Signs arbitrary claims with the stack's JWT secret (HS256), e.g. to make expired or
    /// foreign-role tokens in tests.
    ///
    /// # Panics
    ///
    /// If `claims` is not a JSON object.
    pub fn sign(&self, claims: &serde_json::Value) -> String {
        jwt::sign(claims, &self.info.jwt_secret)
    }

    /// Stops accepting, closes every websocket (close frame 1001), waits for in-flight
    /// requests, and releases the database connections. A data dir's cluster is then shut down
    /// cleanly and the dir released; an ephemeral cluster (when this process started it) stops
    /// when the process exits.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        self.app.hub.close_all();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), self.server).await;
        self.listener_task.abort();
        let _ = self.listener_task.await;
        self.janitor_task.abort();
        let _ = self.janitor_task.await;
        self.app.rest_pool.close();
        self.app.admin_pool.close();
        if self.remove_storage {
            let _ = std::fs::remove_dir_all(&self.app.storage_dir);
        }
        if let Some((server, name)) = &self.drop_database {
            setup::drop_database(server, name).await;
        }
        if let Some(server) = self.postgres {
            datadir::stop(server).await;
        }
    }
}

/// What a data dir contributes to a running stack.
struct Persisted {
    storage_dir: PathBuf,
    server: Arc<datadir::PgServer>,
    info: DataDirInfo,
}

/// A secret and the anon and service-role keys signed with it (valid ten years, as the Supabase
/// CLI's are long-lived).
fn new_keys(jwt_secret: String) -> datadir::Keys {
    let now = jwt::now();
    let ten_years = 10 * 365 * 24 * 3600;
    let key = |role: &str| {
        jwt::sign(
            &serde_json::json!({
                "iss": "supabase-demo",
                "role": role,
                "iat": now,
                "exp": now + ten_years,
            }),
            &jwt_secret,
        )
    };
    datadir::Keys {
        anon_key: key("anon"),
        service_role_key: key("service_role"),
        jwt_secret,
    }
}

/// 48 random alphanumeric characters.
fn random_secret() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = Vec::with_capacity(48);
    while bytes.len() < 48 {
        for (i, b) in uuid::Uuid::new_v4().as_bytes().iter().enumerate() {
            // Bytes 6 and 8 carry the UUID version and variant bits; 248 = 4 * 62 rejects
            // the tail so the choice stays uniform.
            if i != 6 && i != 8 && *b < 248 && bytes.len() < 48 {
                bytes.push(ALPHABET[(*b % 62) as usize]);
            }
        }
    }
    String::from_utf8(bytes).expect("ASCII")
}
