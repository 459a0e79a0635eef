//! The time budget of one read: a read that runs longer is stopped by
//! SQLite (its progress handler) and answered 400 BadRequest, so no query a
//! client can write holds a reader for long, whatever the size of the
//! table or the shape of the query.
//!
//! A read whose caller stopped waiting (a client that disconnected drops
//! its request's future) is stopped the same way, at once, rather than
//! holding a reader for the rest of its budget while other reads queue.
//!
//! The deadline lives in a thread-local, set by the read job on the thread
//! that runs it (a reader's, or the writer's for `:memory:`) and cleared
//! when the job ends; writes never set one and are never stopped.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::db_error;
use crate::Result;

/// The default budget of one read (`sqlite.queryTimeoutMs`).
pub const DEFAULT_QUERY_BUDGET: Duration = Duration::from_millis(1000);

/// How many SQLite virtual machine steps pass between two looks at the
/// clock: a few tens of microseconds of work.
const STEPS: i32 = 10_000;

/// What stops the running read: its deadline, its caller giving up.
#[derive(Default)]
struct Limits {
    at: Option<Instant>,
    abandoned: Option<Arc<AtomicBool>>,
}

thread_local! {
    static LIMITS: RefCell<Limits> = RefCell::new(Limits::default());
}

/// Makes `connection` stop a statement once the running read's deadline
/// has passed or its caller has stopped waiting.
pub(super) fn install(connection: &Connection) -> Result<()> {
    connection
        .progress_handler(
            STEPS,
            Some(|| {
                LIMITS.with(|limits| {
                    let limits = limits.borrow();
                    limits.at.is_some_and(|at| Instant::now() >= at)
                        || limits
                            .abandoned
                            .as_ref()
                            .is_some_and(|flag| flag.load(Ordering::Relaxed))
                })
            }),
        )
        .map_err(db_error)
}

/// The deadline of the read running on this thread, until dropped.
pub(super) struct Deadline(());

impl Deadline {
    /// Starts the budget (none when `budget` is zero); `abandoned` turns
    /// true when the read's caller stops waiting.
    pub(super) fn start(budget: Duration, abandoned: Arc<AtomicBool>) -> Self {
        let at = (!budget.is_zero()).then(|| Instant::now() + budget);
        LIMITS.with(|limits| {
            *limits.borrow_mut() = Limits {
                at,
                abandoned: Some(abandoned),
            };
        });
        Self(())
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        LIMITS.with(|limits| *limits.borrow_mut() = Limits::default());
    }
}

/// Held by a read's caller: when dropped, finished or not, the read is
/// marked abandoned (after it finished, nobody looks any more).
pub(super) struct Waiting(pub(super) Arc<AtomicBool>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}
