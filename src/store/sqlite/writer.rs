//! The writer connection on a thread of its own, with group commit.
//!
//! With `synchronous = FULL` every commit waits for an fsync, and with one
//! transaction per write that fsync, not SQLite, bounds how many writes a
//! second the store takes. So the writer takes every write that is waiting
//! when it starts a transaction (up to [`MAX_BATCH`]), runs each under its
//! own savepoint, commits them together with one fsync, and only then
//! answers each caller. A write that returns an error (or panics) rolls
//! back to its savepoint and fails alone; the others still commit. An error
//! that aborts the whole transaction (disk full, I/O error, a failing
//! `COMMIT`) fails every write of the batch, and none of them is kept.
//! Nothing is answered before the commit that makes it durable, so the
//! guarantee of `synchronous = FULL` (an acknowledged write survives a
//! power cut) is unchanged. Nothing waits to fill a batch either: a lone
//! write commits at once; batches form from the writes that arrive while
//! the previous batch runs and syncs.
//!
//! A write must not begin or end transactions or savepoints itself: that
//! would commit or undo the other writes of its batch behind their backs.
//! An authorizer on the connection refuses such statements while a write
//! runs (the write fails with an internal error).
//!
//! The record cache of every table a batch wrote to is emptied twice:
//! before the commit, so that no read can find an entry the commit is
//! about to make stale, and after it, so that no read that began before the
//! commit can leave one (see the private `cache` module); only then are the
//! callers answered.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};

use rusqlite::Connection;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use tokio::sync::oneshot;

use super::db_error;
use crate::workers::{self, Task};
use crate::{Error, Result};

/// The most writes committed by one transaction.
const MAX_BATCH: usize = 256;

/// A write waiting for the writer thread.
trait WriteJob: Send {
    /// Runs the write inside the open transaction; `false` when it failed
    /// and its changes must be rolled back.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Empties the record cache of what the write touched.
    fn invalidate(&self);
    /// Answers the caller once the batch has ended: with the write's own
    /// result when the batch committed, with `failed` otherwise.
    fn finish(self: Box<Self>, failed: Option<&Error>);
}

/// What waits in the writer's queue.
enum Queued {
    /// A write, batched with others into one transaction.
    Write(Box<dyn WriteJob>),
    /// Work that runs alone, outside any transaction: the reads of a
    /// `:memory:` database, whose single connection lives here.
    Alone(Task<Connection>),
}

/// The handle to the writer thread. The thread ends, closing the
/// connection, when the last handle is dropped.
pub(super) struct Writer {
    jobs: mpsc::Sender<Queued>,
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
    /// Runs on the writer thread before and after the commit, before the
    /// caller hears of it, whether or not the call's future is still polled.
    invalidate: Option<Invalidate>,
}

/// What empties the record cache of the tables a write touched.
pub(super) type Invalidate = Box<dyn Fn() + Send>;

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

    fn invalidate(&self) {
        if let Some(invalidate) = &self.invalidate {
            invalidate();
        }
    }

    fn finish(self: Box<Self>, failed: Option<&Error>) {
        let this = *self;
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
        let in_write = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&in_write);
        // Installed once: setting an authorizer expires every prepared
        // statement. It is asked when a statement is prepared, so the
        // writer's own BEGIN/SAVEPOINT/COMMIT, prepared between writes,
        // pass.
        conn.authorizer(Some(move |context: AuthContext<'_>| match context.action {
            AuthAction::Transaction { .. } | AuthAction::Savepoint { .. }
                if flag.load(Ordering::Relaxed) =>
            {
                Authorization::Deny
            }
            _ => Authorization::Allow,
        }))
        .map_err(db_error)?;
        let (jobs, receiver) = mpsc::channel();
        std::thread::Builder::new()
            .name("plume-sqlite-writer".to_owned())
            .spawn(move || serve(conn, &receiver, &in_write))
            .map_err(Error::internal)?;
        Ok(Self { jobs })
    }

    /// Runs `work` in a write transaction (possibly shared with other
    /// writes, each under its own savepoint) and answers after the commit;
    /// `invalidate` runs on the writer thread before and after the commit.
    pub(super) async fn write<T, F>(&self, work: F, invalidate: Option<Invalidate>) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Pending {
            work: Some(work),
            result: None,
            reply,
            invalidate,
        };
        self.jobs
            .send(Queued::Write(Box::new(job)))
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
        let (task, reply) = workers::task("the SQLite writer thread", work);
        self.jobs
            .send(Queued::Alone(task))
            .map_err(|_| Error::internal("the SQLite writer thread has stopped"))?;
        workers::answer(reply, "the SQLite writer thread").await
    }
}

/// The writer thread: batches consecutive writes until every handle is
/// gone.
fn serve(mut conn: Connection, jobs: &mpsc::Receiver<Queued>, in_write: &AtomicBool) {
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
            Queued::Alone(work) => work(&mut conn),
            Queued::Write(first) => {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match jobs.try_recv() {
                        Ok(Queued::Write(job)) => batch.push(job),
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                commit(&conn, batch, in_write);
            }
        }
    }
}

/// Runs a batch in one transaction and answers every write in it.
fn commit(conn: &Connection, mut batch: Vec<Box<dyn WriteJob>>, in_write: &AtomicBool) {
    let outcome = (|| -> Result<()> {
        execute(conn, "BEGIN IMMEDIATE")?;
        for job in &mut batch {
            execute(conn, "SAVEPOINT plume_batch_write")?;
            in_write.store(true, Ordering::Relaxed);
            let ok = job.run(conn);
            in_write.store(false, Ordering::Relaxed);
            if !ok {
                execute(conn, "ROLLBACK TO plume_batch_write")?;
            }
            execute(conn, "RELEASE plume_batch_write")?;
        }
        batch.iter().for_each(|job| job.invalidate());
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
    batch.iter().for_each(|job| job.invalidate());
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
