//! The one worker-pool type: a fixed set of named threads that take tasks
//! from a shared queue, for the blocking work Plume keeps off the async
//! workers (the SQLite reader connections, password hashing).
//!
//! Dedicated threads rather than tokio's blocking pool, for two reasons
//! written beside their users: a reader that finds more reads waiting runs
//! them one after the other without being woken for each
//! (`store::sqlite::pool`), and a fixed number of hashing threads keeps
//! argon2's 19 MiB per run from piling up in one malloc arena per blocking
//! thread (`auth::password`).
//!
//! Each thread owns a state (a database connection, or nothing) that its
//! tasks borrow. Tasks wait in two lanes: [`Lane::First`] is taken before
//! [`Lane::Second`], but after [`FIRSTS_BEFORE_A_SECOND`] tasks went ahead
//! of a waiting second-lane task, that one goes, so a steady stream of
//! urgent work cannot hold the rest back for ever. A task whose caller has
//! gone away before a thread takes it is skipped; a panicking task answers
//! its caller with an internal error and the thread goes on.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use tokio::sync::oneshot;

use crate::{Error, Result};

/// Work for one of the threads, borrowing that thread's state.
pub(crate) type Task<S> = Box<dyn FnOnce(&mut S) + Send>;

/// Which queue a task waits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lane {
    /// Taken first.
    First,
    /// Taken when no first-lane task waits, or when its turn has come.
    Second,
}

/// After this many first-lane tasks taken ahead of a waiting second-lane
/// task, the second-lane task goes.
pub(crate) const FIRSTS_BEFORE_A_SECOND: usize = 8;

/// Wraps `work` for the threads `on` names ("the SQLite reader threads")
/// so that it answers through a channel: the receiver gets its result, or
/// an internal error when it panicked. The
/// task does nothing when the receiver has been dropped.
pub(crate) fn task<S, T, F>(on: &'static str, work: F) -> (Task<S>, oneshot::Receiver<Result<T>>)
where
    T: Send + 'static,
    F: FnOnce(&mut S) -> Result<T> + Send + 'static,
{
    let (reply, answer) = oneshot::channel();
    let task: Task<S> = Box::new(move |state| {
        if reply.is_closed() {
            return;
        }
        let result = catch_unwind(AssertUnwindSafe(|| work(state)))
            .unwrap_or_else(|_| Err(Error::internal(format!("a task on {on} panicked"))));
        let _ = reply.send(result);
    });
    (task, answer)
}

/// The result a [`task`] sends; `gone` names the threads for the error
/// when they stopped before answering.
pub(crate) async fn answer<T>(answer: oneshot::Receiver<Result<T>>, gone: &str) -> Result<T> {
    answer
        .await
        .map_err(|_| Error::internal(format!("{gone} stopped")))?
}

struct Queues<S> {
    first: VecDeque<Task<S>>,
    second: VecDeque<Task<S>>,
    /// First-lane tasks taken in a row while second-lane ones waited.
    firsts_in_a_row: usize,
    /// Set when the pool is dropped: the threads end once the queues are
    /// empty.
    closed: bool,
}

impl<S> Queues<S> {
    fn new() -> Self {
        Self {
            first: VecDeque::new(),
            second: VecDeque::new(),
            firsts_in_a_row: 0,
            closed: false,
        }
    }

    fn next(&mut self) -> Option<Task<S>> {
        let second_due = self.firsts_in_a_row >= FIRSTS_BEFORE_A_SECOND;
        if !second_due && let Some(task) = self.first.pop_front() {
            if !self.second.is_empty() {
                self.firsts_in_a_row += 1;
            }
            return Some(task);
        }
        self.firsts_in_a_row = 0;
        self.second.pop_front().or_else(|| self.first.pop_front())
    }
}

struct Shared<S> {
    queues: Mutex<Queues<S>>,
    ready: Condvar,
}

/// The threads and their queue. Dropping it lets the threads finish the
/// tasks already queued and end, dropping their states.
pub(crate) struct Workers<S> {
    shared: Arc<Shared<S>>,
    threads: usize,
    /// Names the threads in errors ("the SQLite reader threads").
    name: &'static str,
}

impl<S> std::fmt::Debug for Workers<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workers")
            .field("name", &self.name)
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

impl<S: Send + 'static> Workers<S> {
    /// Starts one thread per state, named `<prefix>-<n>`; each runs `init`
    /// first (its scheduling priority, say). A thread that cannot start is
    /// logged; an error only when none could.
    pub(crate) fn start(
        name: &'static str,
        prefix: &str,
        states: Vec<S>,
        init: fn(),
    ) -> Result<Self> {
        let shared = Arc::new(Shared {
            queues: Mutex::new(Queues::new()),
            ready: Condvar::new(),
        });
        let mut threads = 0;
        let mut failure = None;
        for (n, mut state) in states.into_iter().enumerate() {
            let worker = Arc::clone(&shared);
            let spawned = std::thread::Builder::new()
                .name(format!("{prefix}-{n}"))
                .spawn(move || {
                    init();
                    work(&worker, &mut state);
                });
            match spawned {
                Ok(_) => threads += 1,
                Err(error) => {
                    tracing::error!(%error, "cannot start one of {name}");
                    failure = Some(error);
                }
            }
        }
        if threads == 0 {
            return Err(Error::internal(format!(
                "cannot start {name}: {}",
                failure.map_or_else(|| "no thread asked for".to_owned(), |e| e.to_string())
            )));
        }
        Ok(Self {
            shared,
            threads,
            name,
        })
    }

    /// How many threads run.
    #[cfg(test)]
    pub(crate) fn threads(&self) -> usize {
        self.threads
    }

    /// Queues `task` in `lane`.
    pub(crate) fn submit(&self, lane: Lane, task: Task<S>) -> Result<()> {
        let mut queues = self.shared.queues.lock().map_err(crate::error::poisoned)?;
        match lane {
            Lane::First => queues.first.push_back(task),
            Lane::Second => queues.second.push_back(task),
        }
        drop(queues);
        self.shared.ready.notify_one();
        Ok(())
    }

    /// Runs `work` on the next free thread and waits for its result.
    pub(crate) async fn run<T, F>(&self, lane: Lane, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut S) -> Result<T> + Send + 'static,
    {
        let (task, reply) = task(self.name, work);
        self.submit(lane, task)?;
        answer(reply, self.name).await
    }
}

impl<S> Drop for Workers<S> {
    fn drop(&mut self) {
        self.shared
            .queues
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .closed = true;
        self.shared.ready.notify_all();
    }
}

/// A thread's loop: the next task by [`Queues::next`]'s rule, until the
/// pool is dropped and nothing is left.
fn work<S>(shared: &Shared<S>, state: &mut S) {
    loop {
        let task = {
            // A task runs outside the lock and cannot poison it; a poisoned
            // lock still holds valid queues.
            let mut queues = shared.queues.lock().unwrap_or_else(PoisonError::into_inner);
            loop {
                if let Some(task) = queues.next() {
                    break task;
                }
                if queues.closed {
                    return;
                }
                queues = shared
                    .ready
                    .wait(queues)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        };
        // A task made by `task` catches its own panic; a raw one must not
        // take the thread with it either.
        let _ = catch_unwind(AssertUnwindSafe(|| task(state)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_lane_goes_first_but_cannot_hold_the_second_back_for_ever() {
        let mut queues = Queues::<Vec<&'static str>>::new();
        let task = |name: &'static str| -> Task<Vec<&'static str>> {
            Box::new(move |taken| taken.push(name))
        };
        queues.second.push_back(task("second"));
        for _ in 0..20 {
            queues.first.push_back(task("first"));
        }
        let mut taken = Vec::new();
        while let Some(next) = queues.next() {
            next(&mut taken);
        }
        let position = taken.iter().position(|t| *t == "second").unwrap();
        assert_eq!(position, FIRSTS_BEFORE_A_SECOND, "{taken:?}");
        assert_eq!(taken.len(), 21);
    }

    #[tokio::test]
    async fn each_thread_keeps_its_state_and_a_panic_is_an_error() {
        let workers = Workers::start("test workers", "plume-test", vec![0u32, 100], || {}).unwrap();
        assert_eq!(workers.threads(), 2);
        let mut seen = Vec::new();
        for _ in 0..20 {
            seen.push(
                workers
                    .run(Lane::First, |n: &mut u32| {
                        *n += 1;
                        Ok(*n)
                    })
                    .await
                    .unwrap(),
            );
        }
        // Every answer comes from one of the two counters, each counting up.
        assert!(
            seen.iter()
                .all(|n| (1..=20).contains(n) || (101..=120).contains(n))
        );
        let err = workers
            .run(Lane::Second, |_: &mut u32| -> Result<()> { panic!("boom") })
            .await
            .unwrap_err();
        assert_eq!(err.code(), 500);
        assert!(workers.run(Lane::First, |n: &mut u32| Ok(*n)).await.is_ok());
    }

    #[tokio::test]
    async fn dropping_the_pool_ends_the_threads_and_drops_their_states() {
        struct Flag(Arc<std::sync::atomic::AtomicBool>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let workers = Workers::start(
            "test workers",
            "plume-test",
            vec![Flag(Arc::clone(&dropped))],
            || {},
        )
        .unwrap();
        workers
            .run(Lane::First, |_: &mut Flag| Ok(()))
            .await
            .unwrap();
        drop(workers);
        for _ in 0..200 {
            if dropped.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        panic!("the thread did not end");
    }
}
