//! The writer connection on a thread of its own, with group commit.
//!
//! With `synchronous = FULL` every commit waits for an fsync, and with one
//! transaction per write that fsync, not SQLite, bounds how many writes a
//! second the store takes. So the writer takes every write that is waiting
//! when it starts a transaction (up to [`MAX_BATCH`]), runs each under its
//! own savepoint, commits them together with one fsync, and only then
//! answers each caller. A failing write rolls back to its savepoint and
//! fails alone; the others still commit. Nothing is answered before the
//! commit that makes it durable, so the guarantee of `synchronous = FULL`
//! (an acknowledged write survives a power cut) is unchanged. Nothing waits
//! to fill a batch either: a lone write commits at once, and batches form
//! only while an fsync is in flight.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::db_error;
use crate::{Error, Result};

/// The most writes committed by one transaction.
const MAX_BATCH: usize = 256;

/// A write waiting for the writer thread.
trait WriteJob: Send {
    /// Runs the write inside the open transaction; `false` when it failed
    /// and its changes must be rolled back.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Answers the caller once the batch has ended: with the write's own
    /// result when the batch committed, with `failed` otherwise.
    fn finish(self: Box<Self>, failed: Option<&Error>);
}

enum Job {
    /// A write, batched with others into one transaction.
    Write(Box<dyn WriteJob>),
    /// Work that runs alone, outside any transaction: the reads of a
    /// `:memory:` database, whose single connection lives here.
    Alone(Box<dyn FnOnce(&mut Connection) + Send>),
}

/// The handle to the writer thread. The thread ends, closing the
/// connection, when the last handle is dropped.
pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl fmt::Debug for Writer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

struct Pending<T, F> {
    work: Option<F>,
    result: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
    /// Runs on the writer thread after the batch ends, before the caller
    /// hears of it, whether or not the call's future is still polled.
    after: Option<Box<dyn FnOnce() + Send>>,
}

impl<T, F> WriteJob for Pending<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T> + Send + 'static,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let result = catch_unwind(AssertUnwindSafe(|| work(conn)))
            .unwrap_or_else(|_| Err(Error::internal("an SQLite write panicked")));
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, failed: Option<&Error>) {
        let this = *self;
        if let Some(after) = this.after {
            after();
        }
        let result = match (failed, this.result) {
            (_, Some(Err(own))) => Err(own),
            (Some(failed), _) => Err(failed.clone()),
            (None, Some(ok)) => ok,
            (None, None) => Err(Error::internal("an SQLite write was never run")),
        };
        // The caller may have stopped waiting; the write stands either way.
        let _ = this.reply.send(result);
    }
}

impl Writer {
    /// Starts the writer thread over `conn`.
    pub(super) fn start(conn: Connection) -> Result<Self> {
        let (jobs, receiver) = mpsc::channel();
        std::thread::Builder::new()
            .name("plume-sqlite-writer".to_owned())
            .spawn(move || serve(conn, &receiver))
            .map_err(Error::internal)?;
        Ok(Self { jobs })
    }

    /// Runs `work` in a write transaction (possibly shared with other
    /// writes, each under its own savepoint) and answers after the commit;
    /// `after` runs on the writer thread once the transaction has ended.
    pub(super) async fn write<T, F>(
        &self,
        work: F,
        after: Option<Box<dyn FnOnce() + Send>>,
    ) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Pending {
            work: Some(work),
            result: None,
            reply,
            after,
        };
        self.jobs
            .send(Job::Write(Box::new(job)))
            .map_err(|_| Error::internal("the SQLite writer thread has stopped"))?;
        answer
            .await
            .map_err(|_| Error::internal("the SQLite writer thread dropped a write"))?
    }

    /// Runs `work` alone on the writer's connection, outside any
    /// transaction.
    pub(super) async fn alone<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Job::Alone(Box::new(move |conn: &mut Connection| {
            let result = catch_unwind(AssertUnwindSafe(|| work(conn)))
                .unwrap_or_else(|_| Err(Error::internal("an SQLite task panicked")));
            let _ = reply.send(result);
        }));
        self.jobs
            .send(job)
            .map_err(|_| Error::internal("the SQLite writer thread has stopped"))?;
        answer
            .await
            .map_err(|_| Error::internal("the SQLite writer thread dropped a task"))?
    }
}

/// The writer thread: batches consecutive writes until every handle is
/// gone.
fn serve(mut conn: Connection, jobs: &mpsc::Receiver<Job>) {
    let mut next = None;
    loop {
        let job = match next.take() {
            Some(job) => job,
            None => match jobs.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
        };
        match job {
            Job::Alone(work) => work(&mut conn),
            Job::Write(first) => {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match jobs.try_recv() {
                        Ok(Job::Write(job)) => batch.push(job),
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                commit(&conn, batch);
            }
        }
    }
}

/// Runs a batch in one transaction and answers every write in it.
fn commit(conn: &Connection, mut batch: Vec<Box<dyn WriteJob>>) {
    let outcome = (|| -> Result<()> {
        execute(conn, "BEGIN IMMEDIATE")?;
        for job in &mut batch {
            execute(conn, "SAVEPOINT plume_write")?;
            if !job.run(conn) {
                execute(conn, "ROLLBACK TO plume_write")?;
            }
            execute(conn, "RELEASE plume_write")?;
        }
        execute(conn, "COMMIT")
    })();
    let failed = match outcome {
        Ok(()) => None,
        Err(error) => {
            if !conn.is_autocommit() {
                let _ = execute(conn, "ROLLBACK");
            }
            Some(error)
        }
    };
    for job in batch {
        job.finish(failed.as_ref());
    }
}

fn execute(conn: &Connection, sql: &str) -> Result<()> {
    conn.prepare_cached(sql)
        .and_then(|mut statement| statement.execute([]))
        .map(|_| ())
        .map_err(db_error)
}
