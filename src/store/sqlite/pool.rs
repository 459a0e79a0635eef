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
