//! A fixed set of SQLite connections used from async code without blocking
//! an async worker.
//!
//! A call waits (asynchronously) for a permit, takes an idle connection and
//! runs its closure on tokio's blocking thread pool. The closure owns the
//! permit and the connection, and puts the connection back itself, so a
//! caller that stops waiting (a dropped request future) can neither lose a
//! connection nor free a permit while its statement still runs.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::Connection;
use tokio::sync::Semaphore;

use crate::{Error, Result};

/// Connections of one kind (the writer, or the readers).
pub(super) struct Pool {
    name: &'static str,
    permits: Arc<Semaphore>,
    idle: Mutex<Vec<Connection>>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("name", &self.name)
            .field("available", &self.permits.available_permits())
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// A pool over `connections`, one permit per connection.
    pub(super) fn new(name: &'static str, connections: Vec<Connection>) -> Arc<Self> {
        Arc::new(Self {
            name,
            permits: Arc::new(Semaphore::new(connections.len())),
            idle: Mutex::new(connections),
        })
    }

    /// Runs `work` on a connection of the pool, on a blocking thread.
    ///
    /// A panic in `work` becomes an internal error; the connection goes
    /// back to the pool either way (an open `rusqlite::Transaction` rolls
    /// back as it unwinds), so a `:memory:` database is never lost.
    pub(super) async fn run<T, F>(self: &Arc<Self>, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(Error::internal)?;
        let pool = Arc::clone(self);
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut connection = pool
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop()
                .ok_or_else(|| Error::internal("an SQLite pool had a permit but no connection"))?;
            let result = catch_unwind(AssertUnwindSafe(|| work(&mut connection)));
            pool.idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(connection);
            result.unwrap_or_else(|_| Err(Error::internal("an SQLite task panicked")))
        });
        task.await.map_err(Error::internal)?
    }
}
