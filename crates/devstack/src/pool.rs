//! A small connection pool: idle clients in a stack, a semaphore bounding the total, and a
//! per-connection cache of prepared statements for the fixed queries.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::{Client, Config, GenericClient, Statement};

/// A pooled connection and its prepared statements.
pub(crate) struct Conn {
    pub(crate) client: Client,
    statements: HashMap<&'static str, Statement>,
}

impl Conn {
    /// The prepared form of a fixed query, preparing it on first use on this connection.
    pub(crate) async fn prepared<C: GenericClient>(
        statements: &mut HashMap<&'static str, Statement>,
        client: &C,
        sql: &'static str,
    ) -> Result<Statement, tokio_postgres::Error> {
        if let Some(s) = statements.get(sql) {
            return Ok(s.clone());
        }
        let s = client.prepare(sql).await?;
        statements.insert(sql, s.clone());
        Ok(s)
    }

    /// The client and the statement cache, borrowed separately (a transaction borrows the
    /// client mutably while statements are prepared on it).
    pub(crate) fn parts(&mut self) -> (&mut Client, &mut HashMap<&'static str, Statement>) {
        (&mut self.client, &mut self.statements)
    }
}

struct Inner {
    config: Config,
    idle: Mutex<Vec<Conn>>,
    permits: Arc<Semaphore>,
}

/// A bounded pool of connections made with one configuration.
#[derive(Clone)]
pub(crate) struct Pool {
    inner: Arc<Inner>,
}

impl Pool {
    pub(crate) fn new(config: Config, max: usize) -> Pool {
        Pool {
            inner: Arc::new(Inner {
                config,
                idle: Mutex::new(Vec::new()),
                permits: Arc::new(Semaphore::new(max)),
            }),
        }
    }

    /// An idle connection, or a new one; waits while `max` are in use.
    pub(crate) async fn get(&self) -> Result<Pooled, tokio_postgres::Error> {
        let permit = self
            .inner
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        loop {
            let conn = self
                .inner
                .idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop();
            match conn {
                Some(c) if c.client.is_closed() => continue,
                Some(c) => {
                    return Ok(Pooled {
                        conn: Some(c),
                        pool: self.inner.clone(),
                        _permit: permit,
                    })
                }
                None => break,
            }
        }
        let client = connect(&self.inner.config).await?;
        Ok(Pooled {
            conn: Some(Conn {
                client,
                statements: HashMap::new(),
            }),
            pool: self.inner.clone(),
            _permit: permit,
        })
    }

    /// Closes the idle connections.
    pub(crate) fn clear(&self) {
        self.inner
            .idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

/// A connection on loan; goes back to the pool when dropped (unless it broke).
pub(crate) struct Pooled {
    conn: Option<Conn>,
    pool: Arc<Inner>,
    _permit: OwnedSemaphorePermit,
}

impl Pooled {
    /// Drops the connection instead of returning it (after an error that may have left it in
    /// an unknown state).
    pub(crate) fn discard(mut self) {
        self.conn = None;
    }
}

impl Deref for Pooled {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        self.conn.as_ref().expect("present until drop")
    }
}

impl DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut Conn {
        self.conn.as_mut().expect("present until drop")
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            if !conn.client.is_closed() {
                self.pool
                    .idle
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(conn);
            }
        }
    }
}

/// Connects, retrying while a just-started server is not yet accepting logins.
pub(crate) async fn connect(config: &Config) -> Result<Client, tokio_postgres::Error> {
    fs_sync_pg::connect(config).await
}
