//! The settings a [`SqliteService`]'s calls share, and its declarations
//! (indexes, unique fields: `store::declared`, the same as PostgreSQL's).

use std::sync::Arc;

use super::SqliteService;
use crate::store::base::StoreOptions;
use crate::store::declared::{Declared, declared_builder};

pub(super) use crate::store::declared::Index;

/// A service's settings, shared with its blocking tasks.
#[derive(Debug, Clone)]
pub(super) struct Config {
    pub(super) table: String,
    /// The table's key in the record cache: its name in lower case, since
    /// SQLite's names ignore case (`Users` and `users` are one table).
    pub(super) cache_key: String,
    /// What every store has (`store::base`); its first id is used when the
    /// table's id counter is created, i.e. the first time the table is.
    pub(super) options: StoreOptions,
    pub(super) declared: Declared,
}

impl Config {
    /// True when a declared index covers `field`: a comparison of it is
    /// left in SQL, where the planner can use the index (see `sql`).
    pub(super) fn indexed(&self, field: &str) -> bool {
        self.declared.indexed(field)
    }

    /// True when a declared index sorts by `field`: a plain index on it,
    /// or a compound index ending with it (see `schema`).
    pub(super) fn sortable(&self, field: &str) -> bool {
        self.declared.sortable(field)
    }

    pub(super) fn fold_case(&self) -> Arc<[String]> {
        Arc::clone(&self.declared.fold_case)
    }
}

declared_builder!(SqliteService);

impl SqliteService {
    /// Changes the declarations (for `declared_builder`).
    fn with_declared(self, change: impl FnOnce(&mut Declared)) -> Self {
        self.configure(|c| change(&mut c.declared))
    }

    fn declared(&self) -> &Declared {
        &self.config.declared
    }
}
