//! The time budget of one read: a read that runs longer is stopped by
//! SQLite (its progress handler) and answered 400 BadRequest, so no query a
//! client can write holds a reader for long, whatever the size of the
//! table or the shape of the query.
//!
//! The deadline lives in a thread-local, set by the read job on the thread
//! that runs it (a reader's, or the writer's for `:memory:`) and cleared
//! when the job ends; writes never set one and are never stopped.

use std::cell::Cell;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::db_error;
use crate::Result;

/// The default budget of one read (`sqlite.queryTimeoutMs`).
pub const DEFAULT_QUERY_BUDGET: Duration = Duration::from_millis(250);

/// How many SQLite virtual machine steps pass between two looks at the
/// clock: a few tens of microseconds of work.
const STEPS: i32 = 10_000;

thread_local! {
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Makes `connection` stop a statement once the running read's deadline
/// has passed.
pub(super) fn install(connection: &Connection) -> Result<()> {
    connection
        .progress_handler(
            STEPS,
            Some(|| DEADLINE.with(|d| d.get().is_some_and(|at| Instant::now() >= at))),
        )
        .map_err(db_error)
}

/// The deadline of the read running on this thread, until dropped.
pub(super) struct Deadline(());

impl Deadline {
    /// Starts the budget (none when `budget` is zero).
    pub(super) fn start(budget: Duration) -> Self {
        let at = (!budget.is_zero()).then(|| Instant::now() + budget);
        DEADLINE.with(|d| d.set(at));
        Self(())
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        DEADLINE.with(|d| d.set(None));
    }
}
