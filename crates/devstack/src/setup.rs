//! Getting a database: an ephemeral cluster (or `DATABASE_URL`), a fresh database in it, the
//! local Supabase base applied by the superuser and the migrations by `postgres`, as on hosted
//! Supabase.

use std::sync::atomic::{AtomicU64, Ordering};

use fs_sync_pg::Cluster;
use tokio_postgres::Config;

use crate::{DatabaseSource, Error};
use fs_sync_pg::connect;

/// Where the stack's database lives and how to reach it.
pub(crate) struct Database {
    /// Superuser (`supabase_admin`) connection settings for the stack's database: what Supabase's
    /// own services connect as.
    pub(crate) admin: Config,
    /// `authenticator` connection settings (PostgREST's login role).
    pub(crate) authenticator: Config,
    /// A libpq URL of the database as `postgres`, for people and tests: what a hosted project's
    /// connection string gives them.
    pub(crate) url: String,
    /// A database this process created on a server it did not start, dropped at shutdown.
    pub(crate) drop_on_shutdown: Option<(Config, String)>,
}

static NEXT: AtomicU64 = AtomicU64::new(0);

pub(crate) async fn prepare(source: &DatabaseSource) -> Result<Database, Error> {
    match source {
        DatabaseSource::Existing(url) => {
            let admin: Config = url
                .parse()
                .map_err(|e| Error::Config(format!("database URL {url:?}: {e}")))?;
            let client = connect(&admin).await?;
            check_schema(&client).await?;
            Ok(Database {
                authenticator: as_authenticator(&admin),
                url: Cluster::from_url(url)?.postgres_url(admin.get_dbname().unwrap_or("postgres")),
                admin,
                drop_on_shutdown: None,
            })
        }
        DatabaseSource::Auto => {
            let from_env = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty());
            let (cluster, name, owned) = match &from_env {
                Some(url) => {
                    let cluster = Cluster::from_url(url)?;
                    let name = format!(
                        "fsync_dev_{}_{}",
                        std::process::id(),
                        NEXT.fetch_add(1, Ordering::Relaxed)
                    );
                    (cluster, name, true)
                }
                None => {
                    let cluster = tokio::task::spawn_blocking(Cluster::start)
                        .await
                        .map_err(|e| Error::Config(format!("cluster start panicked: {e}")))??;
                    let n = NEXT.fetch_add(1, Ordering::Relaxed);
                    let name = if n == 0 {
                        "fsync".to_owned()
                    } else {
                        format!("fsync_{n}")
                    };
                    (cluster, name, false)
                }
            };
            let server = connect(&cluster.config("postgres")).await?;
            server
                .batch_execute(&format!("create database {name}"))
                .await?;
            fs_sync_pg::install(&cluster, &name).await?;
            let admin = cluster.config(&name);
            Ok(Database {
                authenticator: as_authenticator(&admin),
                url: cluster.postgres_url(&name),
                drop_on_shutdown: owned.then(|| (cluster.config("postgres"), name)),
                admin,
            })
        }
    }
}

/// The same server and database, logging in as `authenticator` (trusted locally, as the
/// ephemeral cluster is; a password-protected server needs `PGPASSWORD`-free trust for it).
pub(crate) fn as_authenticator(admin: &Config) -> Config {
    let mut c = Config::new();
    c.user("authenticator");
    if let Some(db) = admin.get_dbname() {
        c.dbname(db);
    }
    for host in admin.get_hosts() {
        match host {
            tokio_postgres::config::Host::Tcp(h) => c.host(h),
            tokio_postgres::config::Host::Unix(p) => c.host_path(p),
        };
    }
    for port in admin.get_ports() {
        c.port(*port);
    }
    c
}

async fn check_schema(client: &tokio_postgres::Client) -> Result<(), Error> {
    let ok = client
        .query_one(
            "select to_regclass('realtime.messages') is not null
                and exists (select 1 from pg_trigger where tgname = 'fsync_dev_notify')
                and to_regprocedure('realtime.fsync_dev_create_partitions()') is not null",
            &[],
        )
        .await?
        .get::<_, bool>(0);
    if ok {
        Ok(())
    } else {
        Err(Error::Config(
            "the database lacks the local Supabase base (realtime.messages, its fsync_dev_notify \
             trigger and realtime.fsync_dev_create_partitions() from supabase/local-base/)"
                .into(),
        ))
    }
}

/// Drops a database this process created on someone else's server.
pub(crate) async fn drop_database(server: &Config, name: &str) {
    if let Ok(client) = connect(server).await {
        let _ = client
            .batch_execute(&format!("drop database if exists {name} with (force)"))
            .await;
    }
}
