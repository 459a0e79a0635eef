//! The store's [`ReadinessCheck`]: a trivial read through the reader pool,
//! so `GET /ready` fails when the database cannot be read (the file gone,
//! the disk failing, every reader stuck).

use async_trait::async_trait;

use super::SqliteStore;
use crate::{Error, ReadinessCheck, Result};

/// Checks that the store answers a read; see
/// [`SqliteStore::readiness_check`].
#[derive(Debug, Clone)]
pub struct SqliteReadiness {
    store: SqliteStore,
}

#[async_trait]
impl ReadinessCheck for SqliteReadiness {
    fn name(&self) -> &str {
        "sqlite"
    }

    async fn check(&self) -> Result<()> {
        let read = self
            .store
            .read(|connection| {
                connection
                    .query_row("SELECT count(*) FROM sqlite_master", [], |row| {
                        row.get::<_, i64>(0)
                    })
                    .map_err(Error::internal)
            })
            .await;
        match read {
            Ok(_) => Ok(()),
            Err(error) => {
                // The cause (which may name the file) goes to the log;
                // whoever calls `/ready` learns only that reading failed.
                tracing::warn!(%error, "readiness: the SQLite database cannot be read");
                Err(Error::unavailable("the database cannot be read"))
            }
        }
    }
}

impl SqliteStore {
    /// A [`ReadinessCheck`] named `sqlite` that reads the schema table
    /// through the reader pool (the app's timeout bounds it): register it
    /// with [`App::add_readiness_check`](crate::App::add_readiness_check).
    pub fn readiness_check(&self) -> SqliteReadiness {
        SqliteReadiness {
            store: self.clone(),
        }
    }
}
