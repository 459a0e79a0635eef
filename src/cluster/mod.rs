//! Several instances of one app as one: [`RedisBus`] carries what the
//! instances must share beyond the database, over Redis (the `redis`
//! crate on tokio), as feathers-sync does for Feathers.
//!
//! - **Service events.** Every event an instance emits (`messages
//!   created`, ...) is published, as a client would see it (`dispatch`),
//!   on one Redis channel; every other instance receives it and hands it
//!   to its channels, so its real-time clients get it as if the call had
//!   been made there. The instance that made the call delivers it itself
//!   and skips its own message: each connection gets an event once. One
//!   task publishes an instance's events in the order they happened, and
//!   Redis keeps the order of one publisher, so events from one instance
//!   arrive in order everywhere.
//! - **Login throttle counters** ([`throttle`](RedisBus::throttle)): the
//!   limits of `authentication.throttle` hold across all instances
//!   together.
//! - **Revocations** ([`revocations`](RedisBus::revocations)): the list
//!   itself lives in the database every instance reads on every request
//!   (`store::PostgresRevocations`), so a revoked token is refused
//!   everywhere at once; the bus tells the other instances too, so that
//!   their open sockets logged in with it leave their channels at once
//!   (a REST logout on one instance is seen by a socket on another).
//!
//! No cache needs the bus: the PostgreSQL store keeps no record cache, and the verified-token cache holds only
//! signature checks (revocation is checked on every request).
//!
//! # What a remote event carries
//!
//! The path, the event, the method and the data. Not the call's params: a
//! publisher (`app.publish`) on a receiving instance sees a context with
//! the method, the path and the result only, never the caller's user,
//! headers or connection, which stay on the instance that served the call.
//!
//! # Faults
//!
//! Redis' publish/subscribe delivers to whoever listens at that moment.
//! Every instance publishes a heartbeat every 5 s and hears its own: a
//! subscription that hears nothing for 15 s (a connection dropped without
//! a word) is made again.
//! While Redis is unreachable an instance's events reach only its own
//! clients (the others' are counted as dropped); the subscriber connects
//! again with a growing pause (100 ms to 2 s), and events flow again once
//! Redis is back. A login while the shared counters cannot be reached is
//! 503 Unavailable: an attempt that cannot be counted is not evaluated.
//! [`ping`](RedisBus::ping) is the readiness check.

mod throttle;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use throttle::RedisThrottle;

pub use crate::metrics::BusStats;
use crate::{App, Error, HookContext, Method, ReadinessCheck, Result, WeakApp};

/// Messages waiting to be published, at most: past it an instance's events
/// still reach its own clients, and the others' copies are dropped and
/// counted (a Redis that cannot keep up must not grow the server).
const OUTBOX: usize = 16 * 1024;

/// The bytes of messages waiting to be published, at most: the count
/// above alone would let 16k events of a megabyte each wait.
const OUTBOX_BYTES: usize = 8 * 1024 * 1024;

/// The prefix of the bus's Redis names when none is given (feathers-sync
/// calls it the `key`): events go on `<key>:events`, throttle counters
/// under `<key>:throttle:`. Apps sharing one Redis use a key each, since a
/// Redis channel is seen from every database number.
pub const DEFAULT_KEY: &str = "plume";

/// How long a command may take before Redis counts as unreachable.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// One message on the bus, from the instance `origin`.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    origin: String,
    #[serde(flatten)]
    message: Message,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
enum Message {
    /// A service event, as a client would see it.
    Event {
        path: String,
        method: String,
        event: String,
        data: Value,
    },
    /// The token `jti` was revoked (a logout).
    Revoked { jti: String },
    /// The tokens of `sub` issued until `at` were revoked (a password
    /// change, a removed user).
    SubjectRevoked { sub: String, at: u64 },
    /// Sent every [`HEARTBEAT`]: an instance hears its own, so a
    /// subscription that hears nothing for [`SILENCE`] is dead (a
    /// connection dropped without a word) and is made again.
    Heartbeat {},
}

/// How often each instance says it is there.
const HEARTBEAT: Duration = Duration::from_secs(5);

/// How long a subscription may hear nothing, not even its own instance's
/// heartbeat, before it is made again.
const SILENCE: Duration = Duration::from_secs(15);

/// The bus between an app's instances; see the [module docs](self).
/// Cheap to clone; the tasks end when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct RedisBus {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: redis::Client,
    key: String,
    instance: String,
    commands: ConnectionManager,
    stats: Arc<BusStats>,
    outbox: mpsc::Sender<String>,
    /// The bytes waiting in the outbox (see [`OUTBOX_BYTES`]).
    queued: Arc<std::sync::atomic::AtomicUsize>,
    publisher: JoinHandle<()>,
    subscriber: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.publisher.abort();
        if let Ok(mut subscriber) = self.subscriber.lock()
            && let Some(task) = subscriber.take()
        {
            task.abort();
        }
    }
}

/// A Redis failure as a Feathers error: 503, the cause logged.
fn unavailable(error: &redis::RedisError) -> Error {
    tracing::warn!(%error, "Redis unavailable");
    Error::unavailable("The shared state (Redis) is unavailable")
}

impl RedisBus {
    /// Connects to Redis at `url` (`redis://host:6379/`) with the names of
    /// [`DEFAULT_KEY`]; 503 when it cannot be reached.
    /// [`join`](Self::join) then joins an app to the bus.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with_key(url, DEFAULT_KEY).await
    }

    /// [`connect`](Self::connect) with `key` as the prefix of the bus's
    /// Redis names (letters, digits, `_`, `-` and `.`), for apps sharing
    /// one Redis.
    pub async fn connect_with_key(url: &str, key: &str) -> Result<Self> {
        let sane = !key.is_empty()
            && key.len() <= 64
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !sane {
            return Err(Error::general(format!(
                "Invalid Redis key '{key}': use 1 to 64 letters, digits, _, - or ."
            )));
        }
        let client = redis::Client::open(url)
            .map_err(|error| Error::general(format!("Invalid Redis URL: {error}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2));
        let commands = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(|e| unavailable(&e))?;
        let stats = Arc::new(BusStats::default());
        let (outbox, pending) = mpsc::channel::<String>(OUTBOX);
        let queued = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let instance = uuid::Uuid::new_v4().simple().to_string();
        let publisher = tokio::spawn(publish_all(
            pending,
            commands.clone(),
            format!("{key}:events"),
            instance.clone(),
            Arc::clone(&stats),
            Arc::clone(&queued),
        ));
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                key: key.to_owned(),
                instance,
                commands,
                stats,
                outbox,
                queued: Arc::clone(&queued),
                publisher,
                subscriber: std::sync::Mutex::new(None),
            }),
        })
    }

    /// Joins `app` to the bus: its service events are published from now
    /// on, and the other instances' events reach its channels. The bus
    /// lives as long as the app. Joining a second app replaces the first
    /// as the receiver.
    pub fn join(&self, app: &App) {
        let subscriber = tokio::spawn(receive_all(
            self.inner.client.clone(),
            format!("{}:events", self.inner.key),
            self.inner.instance.clone(),
            app.downgrade(),
            Arc::clone(&self.inner.stats),
        ));
        if let Ok(mut slot) = self.inner.subscriber.lock()
            && let Some(old) = slot.replace(subscriber)
        {
            old.abort();
        }
        // `/metrics` shows the bus's counts from now on.
        let _ = app.metrics().bus.set(Arc::clone(&self.inner.stats));
        // The listener keeps the bus (its publisher) alive as long as the
        // app.
        let bus = self.clone();
        app.on_service_event(move |path, event, data, ctx| {
            bus.send(Message::Event {
                path: path.to_owned(),
                method: ctx.method.as_str().to_owned(),
                event: event.to_owned(),
                data: data.clone(),
            });
        });
    }

    /// Queues `message` for the other instances (dropped and counted
    /// when the outbox is full).
    fn send(&self, message: Message) {
        let inner = &self.inner;
        let envelope = Envelope {
            origin: inner.instance.clone(),
            message,
        };
        let Ok(text) = serde_json::to_string(&envelope) else {
            return;
        };
        let size = text.len();
        let waiting = inner.queued.fetch_add(size, Ordering::Relaxed);
        if waiting + size > OUTBOX_BYTES || inner.outbox.try_send(text).is_err() {
            inner.queued.fetch_sub(size, Ordering::Relaxed);
            inner.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `revocations` that also tell the other instances of every
    /// revocation, so that their open sockets logged in with a revoked
    /// token leave their channels at once, as this instance's do (a REST
    /// logout on one instance is seen by a socket on another). Calls are
    /// refused everywhere anyway: the list itself is shared (PostgreSQL).
    pub fn revocations(
        &self,
        revocations: Arc<dyn crate::auth::RevocationList>,
    ) -> Arc<dyn crate::auth::RevocationList> {
        Arc::new(SharedRevocations {
            inner: revocations,
            bus: self.clone(),
        })
    }

    /// Succeeds when Redis answers `PING` within two seconds: the
    /// readiness check. 503 Unavailable otherwise.
    pub async fn ping(&self) -> Result<()> {
        let mut commands = self.inner.commands.clone();
        match tokio::time::timeout(COMMAND_TIMEOUT, commands.ping::<String>()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(unavailable(&error)),
            Err(_) => Err(Error::unavailable(
                "The shared state (Redis) is unavailable",
            )),
        }
    }

    /// This instance's name on the bus (random, new on every start).
    pub fn instance(&self) -> &str {
        &self.inner.instance
    }

    /// Counts of the bus's traffic.
    pub fn stats(&self) -> &BusStats {
        &self.inner.stats
    }

    /// The login throttle counters every instance shares, for
    /// [`AuthenticationService::with_shared_throttle`](crate::auth::AuthenticationService::with_shared_throttle).
    /// Login names are kept as hashes keyed by `secret` (the
    /// authentication secret every instance has), never as they were
    /// typed.
    pub fn throttle(&self, secret: &str) -> Arc<dyn crate::auth::throttle::SharedThrottle> {
        Arc::new(RedisThrottle::new(
            self.inner.commands.clone(),
            secret,
            &self.inner.key,
            // Each throttle numbers its own attempts.
            format!("{}.{}", self.inner.instance, uuid::Uuid::new_v4().simple()),
        ))
    }
}

/// `/ready` asks Redis for a `PING`.
#[async_trait::async_trait]
impl ReadinessCheck for RedisBus {
    fn name(&self) -> &str {
        "redis"
    }

    async fn check(&self) -> Result<()> {
        self.ping().await
    }
}

/// Publishes the outbox in order; an event Redis refuses is dropped and
/// counted, and so is everything queued behind it at that moment (events
/// delivered minutes late, after an outage, would be worse than lost;
/// Redis' publish/subscribe keeps nothing for later either).
/// counted (Redis' publish/subscribe keeps nothing for later anyway).
async fn publish_all(
    mut pending: mpsc::Receiver<String>,
    mut commands: ConnectionManager,
    channel: String,
    instance: String,
    stats: Arc<BusStats>,
    queued: Arc<std::sync::atomic::AtomicUsize>,
) {
    let mut failing = false;
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let (text, counted) = tokio::select! {
            next = pending.recv() => match next {
                Some(text) => {
                    queued.fetch_sub(text.len(), Ordering::Relaxed);
                    (text, true)
                }
                None => return,
            },
            _ = heartbeat.tick() => {
                let beat = Envelope { origin: instance.clone(), message: Message::Heartbeat {} };
                match serde_json::to_string(&beat) {
                    Ok(text) => (text, false),
                    Err(_) => continue,
                }
            }
        };
        match commands.publish::<_, _, i64>(&channel, text).await {
            Ok(_) => {
                if counted {
                    stats.published.fetch_add(1, Ordering::Relaxed);
                }
                if failing {
                    tracing::info!("Redis is back: events reach the other instances again");
                    failing = false;
                }
            }
            Err(error) => {
                if counted {
                    stats.dropped.fetch_add(1, Ordering::Relaxed);
                }
                while let Ok(stale) = pending.try_recv() {
                    queued.fetch_sub(stale.len(), Ordering::Relaxed);
                    stats.dropped.fetch_add(1, Ordering::Relaxed);
                }
                if !failing {
                    tracing::warn!(%error, "Redis unavailable: events reach this instance's clients only");
                    failing = true;
                }
            }
        }
    }
}

/// Subscribes to the other instances' events and delivers them to this
/// instance's channels, connecting again whenever the subscription ends.
async fn receive_all(
    client: redis::Client,
    channel: String,
    instance: String,
    app: WeakApp,
    stats: Arc<BusStats>,
) {
    use futures_util::StreamExt as _;
    let mut pause = Duration::from_millis(100);
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                Ok(()) => {
                    pause = Duration::from_millis(100);
                    let mut messages = pubsub.on_message();
                    loop {
                        let message = match tokio::time::timeout(SILENCE, messages.next()).await {
                            Ok(Some(message)) => message,
                            Ok(None) => {
                                tracing::warn!("the Redis subscription ended; subscribing again");
                                break;
                            }
                            Err(_) => {
                                tracing::warn!(
                                    "nothing heard on the Redis subscription for {SILENCE:?}, not \
                                     even this instance's heartbeat; subscribing again"
                                );
                                break;
                            }
                        };
                        let Some(app) = app.upgrade() else {
                            return;
                        };
                        let Ok(text) = message.get_payload::<String>() else {
                            continue;
                        };
                        deliver(&app, &instance, &text, &stats);
                    }
                }
                Err(error) => tracing::warn!(%error, "cannot subscribe to Redis"),
            },
            Err(error) => tracing::debug!(%error, "cannot connect to Redis"),
        }
        if app.upgrade().is_none() {
            return;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

/// Hands another instance's message to this instance: an event to its
/// channels, a revocation to its connections.
fn deliver(app: &App, instance: &str, text: &str, stats: &BusStats) {
    let envelope: Envelope = match serde_json::from_str(text) {
        Ok(envelope) => envelope,
        Err(error) => {
            tracing::warn!(%error, "a message on the bus is not Plume's; ignored");
            return;
        }
    };
    if envelope.origin == instance {
        return;
    }
    match envelope.message {
        Message::Event {
            path,
            method,
            event,
            data,
        } => {
            let mut ctx = HookContext::new(app.clone(), path.as_str(), Method::parse(&method));
            ctx.event = Some(event.clone());
            ctx.result = Some(data.clone());
            app.channels().publish(&path, &event, &data, &ctx);
            stats.received.fetch_add(1, Ordering::Relaxed);
        }
        Message::Revoked { jti } => crate::auth::connection::revoke(app, None, |claims| {
            claims.get("jti").and_then(Value::as_str) == Some(jti.as_str())
        }),
        Message::Heartbeat {} => {}
        Message::SubjectRevoked { sub, at } => {
            crate::auth::connection::revoke(app, None, |claims| {
                claims.get("sub").and_then(Value::as_str) == Some(sub.as_str())
                    && claims
                        .get("iat")
                        .and_then(Value::as_u64)
                        .is_none_or(|iat| iat <= at)
            });
        }
    }
}

/// A revocation list that tells the bus (see [`RedisBus::revocations`]).
struct SharedRevocations {
    inner: Arc<dyn crate::auth::RevocationList>,
    bus: RedisBus,
}

impl std::fmt::Debug for SharedRevocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedRevocations").finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl crate::auth::RevocationList for SharedRevocations {
    async fn revoke(&self, jti: &str, expires_at: u64) -> Result<()> {
        self.inner.revoke(jti, expires_at).await?;
        self.bus.send(Message::Revoked {
            jti: jti.to_owned(),
        });
        Ok(())
    }

    async fn is_revoked(&self, jti: &str) -> Result<bool> {
        self.inner.is_revoked(jti).await
    }

    async fn revoke_subject(&self, sub: &str, at: u64) -> Result<()> {
        self.inner.revoke_subject(sub, at).await?;
        self.bus.send(Message::SubjectRevoked {
            sub: sub.to_owned(),
            at,
        });
        Ok(())
    }

    async fn subject_revoked_at(&self, sub: &str) -> Result<Option<u64>> {
        self.inner.subject_revoked_at(sub).await
    }

    async fn check(&self, jti: Option<&str>, sub: Option<&str>) -> Result<(bool, Option<u64>)> {
        self.inner.check(jti, sub).await
    }
}

#[cfg(test)]
mod tests;
