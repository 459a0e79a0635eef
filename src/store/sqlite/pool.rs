//! The reader connections, each on a thread of its own, used from async
//! code without blocking an async worker.
//!
//! Reads wait in one queue; each reader thread takes the next read as soon
//! as it is free, runs it and answers through a oneshot channel. Dedicated
//! threads rather than tokio's blocking pool: a reader that finds more
//! reads waiting runs them one after the other without being woken for
//! each, so a burst of requests costs a few thread switches instead of two
//! per read. Measured in BENCHMARKS.md. A read owns what it needs, so a
//! caller that stops waiting (a dropped request future) cannot lose a
//! connection: the read finishes and its answer is dropped.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, PoisonError, mpsc};

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::{Error, Result};

/// Work for a connection's thread that answers through its own channel.
pub(super) type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// Wraps `work` for a connection's thread: the job runs it (a panic
/// becomes an internal error) and sends the result to the receiver.
pub(super) fn job<T, F>(work: F) -> (Job, oneshot::Receiver<Result<T>>)
where
    T: Send + 'static,
    F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
{
    let (reply, answer) = oneshot::channel();
    let job: Job = Box::new(move |connection| {
        let result = catch_unwind(AssertUnwindSafe(|| work(connection)))
            .unwrap_or_else(|_| Err(Error::internal("an SQLite task panicked")));
        let _ = reply.send(result);
    });
    (job, answer)
}

/// The result a job sends; `gone` names the thread for the error when the
/// job was dropped unanswered.
pub(super) async fn answer<T>(answer: oneshot::Receiver<Result<T>>, gone: &str) -> Result<T> {
    answer
        .await
        .map_err(|_| Error::internal(format!("{gone} dropped a task")))?
}

/// Puts the calling reader thread under Linux's `SCHED_BATCH` policy,
/// keeping its nice value.
///
/// Why: a read is handed from an async worker to a reader and back. Under
/// the normal policy a woken reader preempts the worker at once, and the
/// worker the reader when the answer is ready: two thread switches per
/// read, a fifth of a one-core server's time in `finish_task_switch` on
/// `find`. `SCHED_BATCH` tells the kernel not to preempt on wakeup, so a
/// reader runs when the worker waits for the network and then takes every
/// read queued meanwhile. `bench/ab find`, same binary, one server with
/// its readers switched by `chrt -b`: 0.55–0.63 of the CPU per request and
/// 1.6–1.8 times the requests a second; `get` and `create` unchanged.
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
pub(super) struct Pool {
    threads: usize,
    jobs: mpsc::Sender<Job>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// Starts one thread per connection.
    pub(super) fn start(connections: Vec<Connection>) -> Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let threads = connections.len();
        for (n, mut connection) in connections.into_iter().enumerate() {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("plume-sqlite-reader-{n}"))
                .spawn(move || {
                    batch_scheduling();
                    loop {
                        // The lock is held only to take a read, not to run it.
                        let job = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
                        match job {
                            Ok(job) => job(&mut connection),
                            Err(_) => return,
                        }
                    }
                })
                .map_err(Error::internal)?;
        }
        Ok(Self { threads, jobs })
    }

    /// Runs `work` on the next free reader. A panic in `work` becomes an
    /// internal error and the reader goes on (an open transaction rolls
    /// back as it unwinds).
    pub(super) async fn run<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let (job, reply) = job(work);
        self.jobs
            .send(job)
            .map_err(|_| Error::internal("the SQLite reader threads have stopped"))?;
        answer(reply, "an SQLite reader").await
    }
}
