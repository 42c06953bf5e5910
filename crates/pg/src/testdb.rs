//! Per-test databases cloned from a template with the schema applied.

use std::sync::OnceLock;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls, Row};

use crate::{schema, Cluster, Error};

/// The process-wide cluster: `DATABASE_URL` when set, else an ephemeral one started on first use.
pub fn shared_cluster() -> Result<&'static Cluster, Error> {
    static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
    CLUSTER
        .get_or_init(|| match std::env::var("DATABASE_URL") {
            Ok(url) if !url.is_empty() => Cluster::from_url(&url).map_err(|e| e.to_string()),
            _ => Cluster::start().map_err(|e| e.to_string()),
        })
        .as_ref()
        .map_err(|e| Error::Server(e.clone()))
}

/// A database of its own for one test, with the local base and all migrations applied, owned by
/// `postgres` as a hosted project's database is.
pub struct TestDb {
    cluster: &'static Cluster,
    name: String,
    admin: Client,
}

impl TestDb {
    /// Clones the template (building it on first use) into a uniquely named database.
    pub async fn new() -> Result<TestDb, Error> {
        let cluster = shared_cluster()?;
        let template = template(cluster).await?;
        let server = connect_to(cluster, "postgres").await?;
        let name = format!("t_{}_{}", std::process::id(), next_id());
        server
            .batch_execute(&format!(
                "create database {name} template {template} owner postgres"
            ))
            .await?;
        // A template kept on a DATABASE_URL server may be days old: today's realtime.messages
        // partitions are made here, as Realtime's janitor makes them on a hosted project.
        connect_to(cluster, &name)
            .await?
            .batch_execute("select realtime.fsync_dev_create_partitions()")
            .await?;
        let admin = connect(&cluster.postgres_config(&name)).await?;
        Ok(TestDb {
            cluster,
            name,
            admin,
        })
    }

    /// A database with only the local Supabase base applied, for tests that apply migrations
    /// themselves (up/down round trips, upgrades from the legacy schema).
    pub async fn with_base_only() -> Result<TestDb, Error> {
        let cluster = shared_cluster()?;
        let server = connect_to(cluster, "postgres").await?;
        let name = format!("t_{}_{}", std::process::id(), next_id());
        server
            .batch_execute(&format!("create database {name}"))
            .await?;
        {
            // Roles are cluster-wide: two databases creating them at once would race.
            let _roles = ROLES.lock().await;
            schema::apply(&connect_to(cluster, &name).await?, &schema::base_files()?).await?;
        }
        let admin = connect(&cluster.postgres_config(&name)).await?;
        Ok(TestDb {
            cluster,
            name,
            admin,
        })
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cluster it lives on.
    pub fn cluster(&self) -> &'static Cluster {
        self.cluster
    }

    /// A URL for this database as `postgres`, the role a direct connection to a hosted project
    /// has: no superuser, but BYPASSRLS and the owner of what the migrations created.
    pub fn url(&self) -> String {
        self.cluster.postgres_url(&self.name)
    }

    /// A URL for this database as the superuser (`supabase_admin`), the role Supabase's own
    /// services (Realtime, and fs-sync-dev standing in for them) connect as.
    pub fn superuser_url(&self) -> String {
        self.cluster.url(&self.name)
    }

    /// A connection to this database as `postgres` (see [`TestDb::url`]).
    pub fn admin(&self) -> &Client {
        &self.admin
    }

    /// A new connection as `role` (e.g. `authenticator`, as PostgREST connects).
    pub async fn connect_as(&self, role: &str) -> Result<Client, Error> {
        let config: tokio_postgres::Config = self
            .cluster
            .url_as(role, None, &self.name)
            .parse()
            .map_err(|e| Error::Config(format!("{e}")))?;
        Ok(connect(&config).await?)
    }

    /// Runs `sql` the way PostgREST runs a request: one transaction on an `authenticator`
    /// connection, `role` and `request.jwt.claims` set transaction-locally from `claims`.
    pub async fn as_claims(&self, claims: serde_json::Value, sql: &str) -> Result<Vec<Row>, Error> {
        let mut client = self.connect_as("authenticator").await?;
        let tx = client.transaction().await?;
        set_claims(&tx, &claims).await?;
        let rows = tx.query(sql, &[]).await?;
        tx.commit().await?;
        Ok(rows)
    }
}

/// Sets the role named by `claims.role` (default `anon`) and `request.jwt.claims`, both
/// transaction-locally, as PostgREST's pre-request does.
pub async fn set_claims(
    tx: &tokio_postgres::Transaction<'_>,
    claims: &serde_json::Value,
) -> Result<(), Error> {
    let mut claims = claims.clone();
    let role = claims
        .get("role")
        .and_then(|r| r.as_str())
        .unwrap_or("anon")
        .to_owned();
    claims["role"] = serde_json::Value::String(role.clone());
    tx.execute(
        "select set_config('role', $1, true), set_config('request.jwt.claims', $2, true)",
        &[&role, &claims.to_string()],
    )
    .await?;
    Ok(())
}

/// Held while SQL that creates cluster-wide roles runs.
static ROLES: Mutex<()> = Mutex::const_new(());

fn next_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A superuser connection to `database`.
async fn connect_to(cluster: &Cluster, database: &str) -> Result<Client, Error> {
    Ok(connect(&cluster.config(database)).await?)
}

/// Connects with `config`, retrying while a just-started server is not yet accepting logins, and
/// drives the connection on its own task.
pub async fn connect(config: &tokio_postgres::Config) -> Result<Client, tokio_postgres::Error> {
    // A just-started server accepts TCP a moment before it accepts logins.
    let mut attempt = 0;
    loop {
        match config.connect(NoTls).await {
            Ok((client, connection)) => {
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                return Ok(client);
            }
            Err(e)
                if attempt < 100 && e.as_db_error().is_none_or(|d| d.code().code() == "57P03") =>
            {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Builds (once per schema digest) the template database and returns its name.
async fn template(cluster: &Cluster) -> Result<String, Error> {
    static BUILT: Mutex<Option<String>> = Mutex::const_new(None);
    let mut built = BUILT.lock().await;
    if let Some(name) = built.as_ref() {
        return Ok(name.clone());
    }
    let name = format!("fsync_template_{}", schema::schema_digest()?);
    let admin = connect_to(cluster, "postgres").await?;
    let exists = admin
        .query_opt("select 1 from pg_database where datname = $1", &[&name])
        .await?
        .is_some();
    if !exists {
        // Build under a scratch name and rename, so a half-built template is never used.
        let scratch = format!("{name}_building_{}", std::process::id());
        admin
            .batch_execute(&format!("drop database if exists {scratch}"))
            .await?;
        admin
            .batch_execute(&format!("create database {scratch}"))
            .await?;
        let roles = ROLES.lock().await;
        schema::install(cluster, &scratch).await?;
        drop(roles);
        // The dropped connections close asynchronously; renaming needs them gone.
        let mut renamed = Err(None);
        for _ in 0..100 {
            let busy = admin
                .query_one(
                    "select count(*) from pg_stat_activity where datname = $1",
                    &[&scratch],
                )
                .await?
                .get::<_, i64>(0);
            if busy == 0 {
                renamed = admin
                    .batch_execute(&format!("alter database {scratch} rename to {name}"))
                    .await
                    .map_err(Some);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if renamed.is_ok() {
            admin
                .batch_execute(&format!("alter database {name} is_template true"))
                .await?;
        } else {
            // Another process finished first; either copy is the same schema.
            admin
                .batch_execute(&format!("drop database if exists {scratch}"))
                .await?;
        }
    }
    *built = Some(name.clone());
    Ok(name)
}
