//! The reader connections, each on a thread of its own, used from async
//! code without blocking an async worker.
//!
//! Reads wait in one queue ([`Workers`], the crate's one worker pool);
//! each reader thread takes the next read as soon as it is free, runs it
//! and answers through a oneshot channel. Dedicated
//! threads rather than tokio's blocking pool: a reader that finds more
//! reads waiting runs them one after the other without being woken for
//! each, so a burst of requests costs a few thread switches instead of two
//! per read. Measured in BENCHMARKS.md. A read owns what it needs, so a
//! caller that stops waiting (a dropped request future) cannot lose a
//! connection: the read finishes and its answer is dropped.

use rusqlite::Connection;

use crate::Result;
use crate::workers::{Lane, Workers};

/// Puts the calling reader thread under Linux's `SCHED_BATCH` policy,
/// keeping its nice value.
///
/// Why: a read is handed from an async worker to a reader and back. Under
/// the normal policy a woken reader preempts the worker at once, and the
/// worker the reader when the answer is ready: two thread switches per
/// read, a large share of a one-core server's time on `find`. `SCHED_BATCH` tells the kernel not to preempt on wakeup, so a
/// reader runs when the worker waits for the network and then takes every
/// read queued meanwhile, which makes `find` markedly cheaper per request
/// and leaves `get` and `create` as they were (BENCHMARKS.md, "reads
/// without thread switches").
///
/// Linux only; elsewhere, or when the kernel refuses, the thread keeps the
/// normal policy (a refusal is logged once per thread, not fatal).
fn batch_scheduling() {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::{
            NormalThreadSchedulePolicy, ThreadPriority, ThreadPriorityOsValue, ThreadSchedulePolicy,
        };
        let batch = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch);
        let thread = rustix::thread::gettid();
        let nice = rustix::process::getpriority_process(Some(thread)).unwrap_or(0);
        // The crate sets nice 0 along with the policy (a nicer process may
        // not, and says so); the inherited value is put back either way.
        let _ = thread_priority::set_thread_priority_and_policy(
            thread_priority::thread_native_id(),
            ThreadPriority::Os(ThreadPriorityOsValue::default()),
            batch,
        );
        let _ = rustix::process::setpriority_process(Some(thread), nice);
        if thread_priority::thread_schedule_policy().ok() != Some(batch) {
            tracing::warn!("cannot run an SQLite reader thread under SCHED_BATCH");
        }
    }
}

/// The scheduling policy of the calling thread, for tests.
#[cfg(all(test, target_os = "linux"))]
pub(super) fn runs_batch() -> bool {
    thread_priority::thread_schedule_policy().ok()
        == Some(thread_priority::ThreadSchedulePolicy::Normal(
            thread_priority::NormalThreadSchedulePolicy::Batch,
        ))
}

/// The reader threads. They end, closing their connections, when the pool
/// is dropped.
#[derive(Debug)]
pub(super) struct Pool {
    workers: Workers<Connection>,
}

impl Pool {
    /// Starts one thread per connection.
    pub(super) fn start(connections: Vec<Connection>) -> Result<Self> {
        let workers = Workers::start(
            "the SQLite reader threads",
            "plume-sqlite-reader",
            connections,
            batch_scheduling,
        )?;
        Ok(Self { workers })
    }

    /// Runs `work` on the next free reader. A panic in `work` becomes an
    /// internal error and the reader goes on (an open transaction rolls
    /// back as it unwinds).
    pub(super) async fn run<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        self.workers.run(Lane::First, work).await
    }
}
