//! One timer for the token expiry of every connection of an app.
//!
//! A connection logged in with a token stops being authenticated when the
//! token expires (see [`super::connection`]). A task per connection,
//! sleeping until then, held a task, a timer entry and a copy of the token
//! for each of 10,000 idle sockets; here every due time sits in one ordered
//! queue, and one task per app sleeps until the earliest. The task exists
//! only while something is queued, so an app with no logged-in connection
//! runs none (and nothing keeps the app alive).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::App;
use crate::channels::{Connection, WeakConnection};

/// A connection's place in its app's expiry queue (in
/// [`ConnectionState::expiry`](crate::channels::ConnectionState::expiry)): the
/// connection's login ends at that time unless this is cancelled first.
/// Clones are handles to the same place.
#[derive(Clone)]
pub struct Expiry {
    key: Key,
    queue: Weak<Queue>,
}

impl Expiry {
    /// Takes the entry out of the queue: the login it was made for no
    /// longer ends by itself (a logout, another login, a disconnect).
    pub fn cancel(&self) {
        if let Some(queue) = self.queue.upgrade() {
            queue.entries().due.remove(&self.key);
        }
    }

    /// When the login ends.
    pub fn at(&self) -> Instant {
        self.key.0
    }

    fn is(&self, key: Key) -> bool {
        self.key == key
    }
}

impl fmt::Debug for Expiry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Expiry").field("at", &self.key.0).finish()
    }
}

/// A due time, and a number that tells two logins due at once apart.
type Key = (Instant, u64);

/// What ends at a due time.
struct Due {
    connection: WeakConnection,
    keep_open: bool,
}

#[derive(Default)]
struct Entries {
    due: BTreeMap<Key, Due>,
    next: u64,
    /// A task is sleeping until the first entry (or deciding to stop).
    driving: bool,
}

#[derive(Default)]
struct Queue {
    entries: Mutex<Entries>,
    /// An entry now comes first: the task sleeps until a new time.
    earlier: Notify,
}

impl Queue {
    fn entries(&self) -> MutexGuard<'_, Entries> {
        // Nothing here panics while holding the lock; a poisoned lock
        // still holds consistent entries.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The expiry queue of one app.
#[derive(Default)]
pub(crate) struct Expiries {
    queue: Arc<Queue>,
}

impl fmt::Debug for Expiries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Expiries")
            .field("queued", &self.queue.entries().due.len())
            .finish()
    }
}

impl Expiries {
    /// Queues the end of `connection`'s login at `at`; the app's timer
    /// task then calls [`super::connection::expire`]. Outside a tokio
    /// runtime nothing is queued (every call is still checked by the
    /// `authenticate` hook).
    pub(crate) fn add(
        &self,
        app: &App,
        connection: &Connection,
        at: Instant,
        keep_open: bool,
    ) -> Option<Expiry> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let mut entries = self.queue.entries();
        let key = (at, entries.next);
        entries.next = entries.next.wrapping_add(1);
        let first = entries.due.keys().next().is_none_or(|first| key < *first);
        entries.due.insert(
            key,
            Due {
                connection: connection.downgrade(),
                keep_open,
            },
        );
        if !entries.driving {
            entries.driving = true;
            runtime.spawn(drive(app.clone(), Arc::clone(&self.queue)));
        } else if first {
            self.queue.earlier.notify_one();
        }
        Some(Expiry {
            key,
            queue: Arc::downgrade(&self.queue),
        })
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.queue.entries().due.len()
    }
}

/// Logins ended between two yields of the timer task: 10,000 due in the
/// same second do not hold the worker for all of them at once.
const ENDED_PER_TURN: usize = 256;

/// The app's timer: sleeps until the first due time, ends the logins due
/// by then, and stops when the queue is empty.
async fn drive(app: App, queue: Arc<Queue>) {
    // However the task ends (its runtime shutting down, say), the next
    // `add` starts another.
    let _stopped = Stopped(Arc::clone(&queue));
    loop {
        let next = {
            let mut entries = queue.entries();
            match entries.due.keys().next() {
                Some(&(at, _)) => at,
                None => {
                    entries.driving = false;
                    return;
                }
            }
        };
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            // A permit left by an insert made before this wait counts too.
            () = queue.earlier.notified() => continue,
        }
        let now = Instant::now();
        let due: Vec<(Key, Due)> = {
            let mut entries = queue.entries();
            let later = entries.due.split_off(&(now, u64::MAX));
            std::mem::replace(&mut entries.due, later)
                .into_iter()
                .collect()
        };
        for (ended, (key, due)) in due.into_iter().enumerate() {
            if let Some(connection) = due.connection.upgrade() {
                // The app's disconnect listeners run in here; one that
                // panics must not stop every other login's end.
                let end = std::panic::AssertUnwindSafe(|| {
                    super::connection::expire(
                        &app,
                        &connection,
                        |expiry| expiry.is(key),
                        due.keep_open,
                    );
                });
                if std::panic::catch_unwind(end).is_err() {
                    tracing::error!(
                        connection = connection.id(),
                        "ending an expired login panicked"
                    );
                }
            }
            if (ended + 1) % ENDED_PER_TURN == 0 {
                tokio::task::yield_now().await;
            }
        }
    }
}

/// Marks the queue as without a task when the task ends.
struct Stopped(Arc<Queue>);

impl Drop for Stopped {
    fn drop(&mut self) {
        self.0.entries().driving = false;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use super::*;
    use crate::Provider;
    use crate::channels::Delivery;

    fn connection() -> Connection {
        named("c")
    }

    fn named(id: &str) -> Connection {
        Connection::new(
            id,
            Provider::SocketIo,
            HashMap::new(),
            Arc::new(|_: &crate::channels::Outgoing<'_>| Delivery::Queued),
        )
    }

    /// Logs `connection` in until `at`, as a login does: its entry in the
    /// queue becomes its state's.
    fn log_in(expiries: &Expiries, app: &App, connection: &Connection, at: Instant) {
        let expiry = expiries.add(app, connection, at, true).unwrap();
        connection.update(|state| {
            state.authentication = Some(serde_json::json!({"accessToken": "t"}));
            state.expiry = Some(expiry);
        });
    }

    /// Real time, in steps far apart enough for a loaded machine: a
    /// dev-dependency on tokio's paused clock would be unified into the
    /// release builds the benchmarks make beside the examples.
    const STEP: Duration = Duration::from_millis(200);

    #[tokio::test]
    async fn one_task_ends_each_login_at_its_time_and_stops_when_empty() {
        let app = App::new();
        let expiries = Expiries::default();
        let connections: Vec<Connection> = (0..3).map(|_| connection()).collect();
        let start = Instant::now();
        // Queued out of order; the earliest is added last.
        for (connection, steps) in connections.iter().zip([6, 4, 2]) {
            log_in(&expiries, &app, connection, start + STEP * steps);
        }
        assert_eq!(expiries.len(), 3);
        let authenticated = |c: &Connection| c.state().authentication.is_some();

        tokio::time::sleep_until(start + STEP * 3).await;
        assert!(!authenticated(&connections[2]), "due at 2 steps");
        assert!(authenticated(&connections[1]) && authenticated(&connections[0]));
        assert_eq!(expiries.len(), 2);

        // A cancelled entry ends nothing.
        connections[1].state().expiry.unwrap().cancel();
        tokio::time::sleep_until(start + STEP * 5).await;
        assert!(authenticated(&connections[1]));
        assert!(authenticated(&connections[0]));

        tokio::time::sleep_until(start + STEP * 7).await;
        assert!(!authenticated(&connections[0]), "due at 6 steps");
        assert_eq!(expiries.len(), 0);
        tokio::task::yield_now().await;
        assert!(!expiries.queue.entries().driving, "the task stopped");

        // And a later login starts it again.
        let expiry = expiries
            .add(&app, &connections[1], Instant::now() + STEP, true)
            .unwrap();
        connections[1].update(|state| state.expiry = Some(expiry));
        tokio::time::sleep(STEP * 2).await;
        assert!(!authenticated(&connections[1]));
    }

    #[tokio::test]
    async fn an_entry_whose_login_was_replaced_ends_nothing() {
        let app = App::new();
        let expiries = Expiries::default();
        let connection = connection();
        let soon = Instant::now() + STEP;
        // A second login replaced the state without cancelling the first
        // entry (a race between the two): the first must not end it.
        expiries.add(&app, &connection, soon, true).unwrap();
        let second = expiries
            .add(&app, &connection, soon + Duration::from_secs(60), true)
            .unwrap();
        connection.update(|state| {
            state.authentication = Some(serde_json::json!({"accessToken": "t2"}));
            state.expiry = Some(second);
        });
        tokio::time::sleep(STEP * 2).await;
        assert!(connection.state().authentication.is_some());
        assert_eq!(
            expiries.len(),
            1,
            "the replaced entry left when it came due"
        );
    }

    #[tokio::test]
    async fn an_earlier_entry_wakes_a_timer_already_waiting() {
        let app = App::new();
        let expiries = Expiries::default();
        let (late, early) = (connection(), connection());
        let start = Instant::now();
        for (connection, steps) in [(&late, 60), (&early, 1)] {
            log_in(&expiries, &app, connection, start + STEP * steps);
            // The task is now asleep until the first entry it saw.
            tokio::time::sleep(STEP / 4).await;
        }
        tokio::time::sleep_until(start + STEP * 2).await;
        assert!(early.state().authentication.is_none(), "woken for it");
        assert!(late.state().authentication.is_some());
    }

    #[tokio::test]
    #[allow(clippy::panic, reason = "the listener's bug under test")]
    async fn a_panicking_disconnect_listener_stops_no_other_expiry() {
        let app = App::new();
        app.on_disconnect(|connection| {
            if connection.id() == "panics" {
                panic!("a listener's bug");
            }
        });
        let expiries = Expiries::default();
        let panics = named("panics");
        let other = connection();
        let start = Instant::now();
        for (connection, steps) in [(&panics, 1), (&other, 2)] {
            log_in(&expiries, &app, connection, start + STEP * steps);
        }
        tokio::time::sleep_until(start + STEP * 3).await;
        assert!(other.state().authentication.is_none());
    }

    #[test]
    fn outside_a_runtime_nothing_is_queued() {
        let expiries = Expiries::default();
        let queued = expiries.add(&App::new(), &connection(), Instant::now(), false);
        assert!(queued.is_none());
        assert_eq!(expiries.len(), 0);
    }
}
