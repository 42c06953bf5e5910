//! The stack's PostgreSQL connection pools, through `deadpool-postgres`.
//!
//! Two pools: `authenticator` (PostgREST's login role) for REST and Storage requests, and the
//! superuser (`supabase_admin`, as Supabase's own services) for the admin API, Realtime's
//! authorization checks and its partitions. A request switches role and sets its claims with
//! `set_config(…, true)` inside its own transaction, so nothing of it stays on the connection: the
//! cheapest recycling (`Fast`: is the connection still open?) suffices, and statements prepared
//! with `prepare_cached` are kept per connection.
//!
//! Realtime's LISTEN connection is not pooled (`realtime::spawn_listener`): notifications arrive
//! on the connection's message stream, which a pooled client does not expose.

use deadpool_postgres::{Manager, ManagerConfig, RecyclingMethod};
use tokio_postgres::{Config, NoTls};

pub(crate) use deadpool_postgres::{Object as Conn, Pool, PoolError};

/// A pool of at most `max` connections made with `config`, opened as they are needed.
pub(crate) fn new(config: Config, max: usize) -> Result<Pool, crate::Error> {
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(max)
        .build()
        .map_err(|e| crate::Error::Config(format!("connection pool: {e}")))
}

/// Closes a connection instead of returning it: after an error that was not the database's
/// answer (a broken socket, a failed conversion) its state is unknown.
pub(crate) fn discard(conn: Conn) {
    drop(Conn::take(conn));
}
