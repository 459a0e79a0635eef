//! Real-time connections and channels: who receives which service events.
//!
//! A [`Connection`] is one connected real-time client (a socket). Its state
//! (the authentication it logged in with, the authenticated entity) lives
//! on the connection, so later calls over it carry them, as in Feathers.
//! Connections join and leave named channels; when a service emits an
//! event, a publisher picks the channels that receive it. The default
//! publisher sends every event to the `authenticated` channel.

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::{App, HookContext, Provider};

/// Sends an event to one client, without waiting: the transport queues
/// it and says what became of it.
pub type Sender = Arc<dyn Fn(&Outgoing<'_>) -> Delivery + Send + Sync>;

/// An event on its way to clients: its name and data, and what a
/// transport made of them for the first client, which the others share,
/// so that an event published to many connections is encoded once.
pub struct Outgoing<'a> {
    name: &'a str,
    data: &'a Value,
    encoded: OnceLock<Box<dyn Any + Send + Sync>>,
}

impl fmt::Debug for Outgoing<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outgoing")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<'a> Outgoing<'a> {
    /// The event `name` (`"<path> <event>"` for service events) with
    /// `data`.
    pub fn new(name: &'a str, data: &'a Value) -> Self {
        Self {
            name,
            data,
            encoded: OnceLock::new(),
        }
    }

    /// The event's name.
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The event's data.
    pub fn data(&self) -> &'a Value {
        self.data
    }

    /// The event as a transport writes it: `encode` runs for the first
    /// connection that asks, and later ones get a clone of what it made.
    /// A type of the transport's own (a newtype) keeps its encoding apart
    /// from another transport's; when two transports ask for different
    /// types, the second encodes for each of its connections.
    pub fn encoded<T: Any + Clone + Send + Sync>(
        &self,
        encode: impl FnOnce(&str, &Value) -> T,
    ) -> T {
        if let Some(stored) = self.encoded.get() {
            return match stored.downcast_ref::<T>() {
                Some(encoded) => encoded.clone(),
                None => encode(self.name, self.data),
            };
        }
        let encoded = encode(self.name, self.data);
        let _ = self.encoded.set(Box::new(encoded.clone()));
        encoded
    }
}

/// What became of an event handed to a connection's [`Sender`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Queued for the client.
    Queued,
    /// The client is gone; there is nothing to do.
    Gone,
    /// The client's queue of unsent events is full: it reads more slowly
    /// than events arrive. A publish then takes the connection out of every
    /// channel, counts it ([`App::slow_connections_dropped`]) and closes
    /// it, so that it holds no more than its queue and costs the others
    /// nothing.
    Full,
}

/// Closes a connection at the transport (the socket is disconnected).
pub type Closer = Arc<dyn Fn() + Send + Sync>;

/// Picks the channels that receive a service event: called with the event
/// data (as clients see it) and the context of the call that caused it.
pub type Publisher = Arc<dyn Fn(&Value, &HookContext) -> Vec<String> + Send + Sync>;

/// One real-time client. Cloning gives another handle to the same client.
#[derive(Clone)]
pub struct Connection {
    inner: Arc<ConnectionInner>,
}

struct ConnectionInner {
    id: String,
    provider: Provider,
    /// Shared with the transport's record of the handshake, so a socket
    /// holds its headers once.
    headers: Arc<HashMap<String, String>>,
    state: RwLock<ConnectionState>,
    sender: Sender,
    closer: OnceLock<Closer>,
    /// Set once its queue was found full: it is dropped and counted once.
    too_slow: AtomicBool,
}

/// What a connection has authenticated as.
#[derive(Debug, Clone, Default)]
pub struct ConnectionState {
    /// The credentials later calls over the connection carry
    /// (`{strategy, accessToken}`), checked again on every call.
    pub authentication: Option<Value>,
    /// Authenticated entities by name (`user`).
    pub entities: Map<String, Value>,
    /// When the authentication ends because its token expires: the
    /// connection's entry in its app's expiry queue.
    pub expiry: Option<crate::auth::Expiry>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.inner.id)
            .field("provider", &self.inner.provider)
            .finish_non_exhaustive()
    }
}

impl PartialEq for Connection {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Connection {
    /// A connection with an id unique among live connections, the transport
    /// it came through, its handshake headers (a map, or one shared with
    /// the transport) and how to send it events.
    pub fn new(
        id: impl Into<String>,
        provider: Provider,
        headers: impl Into<Arc<HashMap<String, String>>>,
        sender: Sender,
    ) -> Self {
        Self {
            inner: Arc::new(ConnectionInner {
                id: id.into(),
                provider,
                headers: headers.into(),
                state: RwLock::new(ConnectionState::default()),
                sender,
                closer: OnceLock::new(),
                too_slow: AtomicBool::new(false),
            }),
        }
    }

    /// Tells the connection how its transport closes it (set once, by the
    /// transport).
    pub fn set_closer(&self, closer: Closer) {
        let _ = self.inner.closer.set(closer);
    }

    /// True when the transport can close the connection
    /// ([`set_closer`](Self::set_closer) was called).
    pub fn can_close(&self) -> bool {
        self.inner.closer.get().is_some()
    }

    /// Closes the connection at the transport, when the transport can;
    /// the transport then reports it disconnected.
    pub fn close(&self) {
        if let Some(closer) = self.inner.closer.get() {
            closer();
        }
    }

    /// A handle that does not keep the connection alive (for an app's own
    /// registry of connections).
    pub fn downgrade(&self) -> WeakConnection {
        WeakConnection(Arc::downgrade(&self.inner))
    }

    /// An identity for this connection, equal for all its handles.
    fn key(&self) -> usize {
        Arc::as_ptr(&self.inner) as usize
    }

    /// The connection's id.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// The transport the connection came through.
    pub fn provider(&self) -> Provider {
        self.inner.provider
    }

    /// The headers of the handshake request (lower-case names).
    pub fn headers(&self) -> &HashMap<String, String> {
        &self.inner.headers
    }

    /// A copy of what the connection is authenticated as.
    pub fn state(&self) -> ConnectionState {
        self.inner
            .state
            .read()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// Changes the connection's state.
    pub fn update(&self, change: impl FnOnce(&mut ConnectionState)) {
        if let Ok(mut state) = self.inner.state.write() {
            change(&mut state);
        }
    }

    /// Sends an event to this client.
    pub fn send(&self, event: &str, data: &Value) -> Delivery {
        self.deliver(&Outgoing::new(event, data))
    }

    /// Sends an event that may go to other clients too, sharing its
    /// encoding with them (see [`Outgoing::encoded`]).
    pub fn deliver(&self, event: &Outgoing<'_>) -> Delivery {
        (self.inner.sender)(event)
    }
}

/// A [`Connection`] that does not keep it alive; see
/// [`Connection::downgrade`].
#[derive(Clone)]
pub struct WeakConnection(std::sync::Weak<ConnectionInner>);

impl fmt::Debug for WeakConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("WeakConnection").finish_non_exhaustive()
    }
}

impl WeakConnection {
    /// The connection, while anything else still holds it.
    pub fn upgrade(&self) -> Option<Connection> {
        self.0.upgrade().map(|inner| Connection { inner })
    }
}

/// Channel membership, indexed both ways: joining, leaving and a
/// disconnect cost O(1) per membership whatever the channel's size (a
/// list made each of them linear, and 10,000 joins quadratic).
#[derive(Default)]
struct Members {
    /// Each channel's connections by identity.
    channels: HashMap<String, IndexMap<usize, Connection>>,
    /// The channels each connection is in.
    joined: HashMap<usize, Vec<String>>,
}

impl Members {
    fn join(&mut self, name: &str, connection: &Connection) {
        let key = connection.key();
        let members = match self.channels.get_mut(name) {
            Some(members) => members,
            None => self.channels.entry(name.to_owned()).or_default(),
        };
        if members.insert(key, connection.clone()).is_none() {
            self.joined.entry(key).or_default().push(name.to_owned());
        }
    }

    fn leave(&mut self, name: &str, connection: &Connection) {
        let key = connection.key();
        let Some(members) = self.channels.get_mut(name) else {
            return;
        };
        if members.swap_remove(&key).is_none() {
            return;
        }
        if members.is_empty() {
            self.channels.remove(name);
        }
        if let Some(names) = self.joined.get_mut(&key) {
            names.retain(|joined| joined != name);
            if names.is_empty() {
                self.joined.remove(&key);
            }
        }
    }

    fn forget(&mut self, connection: &Connection) {
        let key = connection.key();
        for name in self.joined.remove(&key).unwrap_or_default() {
            if let Some(members) = self.channels.get_mut(&name) {
                members.swap_remove(&key);
                if members.is_empty() {
                    self.channels.remove(&name);
                }
            }
        }
    }

    fn contains(&self, name: &str, connection: &Connection) -> bool {
        self.channels
            .get(name)
            .is_some_and(|members| members.contains_key(&connection.key()))
    }
}

/// The channels of an app and its publishers.
#[derive(Default)]
pub(crate) struct Channels {
    members: RwLock<Members>,
    /// Every open connection, by identity, until its transport reports it
    /// closed: what a revocation looks through.
    live: RwLock<HashMap<usize, Connection>>,
    app_publisher: RwLock<Option<Publisher>>,
    service_publishers: RwLock<HashMap<String, Publisher>>,
    /// Connections dropped because their queue of unsent events was full.
    too_slow: AtomicU64,
}

impl fmt::Debug for Channels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self
            .members
            .read()
            .map(|m| m.channels.keys().cloned().collect())
            .unwrap_or_default();
        f.debug_struct("Channels")
            .field("channels", &names)
            .finish()
    }
}

/// A named group of connections; see [`App::channel`].
#[derive(Debug, Clone)]
pub struct Channel {
    app: App,
    name: String,
}

impl Channel {
    pub(crate) fn new(app: App, name: &str) -> Self {
        Self {
            app,
            name: name.to_owned(),
        }
    }

    /// The channel's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds a connection (once).
    pub fn join(&self, connection: &Connection) {
        if let Ok(mut members) = self.app.channels().members.write() {
            members.join(&self.name, connection);
        }
    }

    /// Removes a connection.
    pub fn leave(&self, connection: &Connection) {
        if let Ok(mut members) = self.app.channels().members.write() {
            members.leave(&self.name, connection);
        }
    }

    /// The connections in the channel now.
    pub fn connections(&self) -> Vec<Connection> {
        self.app
            .channels()
            .members
            .read()
            .ok()
            .and_then(|m| {
                m.channels
                    .get(&self.name)
                    .map(|members| members.values().cloned().collect())
            })
            .unwrap_or_default()
    }

    /// True when the connection is in the channel.
    pub fn contains(&self, connection: &Connection) -> bool {
        self.app
            .channels()
            .members
            .read()
            .is_ok_and(|m| m.contains(&self.name, connection))
    }
}

impl Channels {
    /// A transport opened a connection.
    pub(crate) fn open(&self, connection: &Connection) {
        if let Ok(mut live) = self.live.write() {
            live.insert(connection.key(), connection.clone());
        }
    }

    /// A transport closed a connection.
    pub(crate) fn close(&self, connection: &Connection) {
        if let Ok(mut live) = self.live.write() {
            live.remove(&connection.key());
        }
    }

    /// How many connections are open.
    pub(crate) fn open_count(&self) -> usize {
        self.live.read().map(|live| live.len()).unwrap_or_default()
    }

    /// Every open connection.
    pub(crate) fn live(&self) -> Vec<Connection> {
        self.live
            .read()
            .map(|live| live.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Removes a connection from every channel (it disconnected).
    pub(crate) fn forget(&self, connection: &Connection) {
        if let Ok(mut members) = self.members.write() {
            members.forget(connection);
        }
    }

    pub(crate) fn set_app_publisher(&self, publisher: Publisher) {
        if let Ok(mut slot) = self.app_publisher.write() {
            *slot = Some(publisher);
        }
    }

    pub(crate) fn set_service_publisher(&self, path: &str, publisher: Publisher) {
        if let Ok(mut publishers) = self.service_publishers.write() {
            publishers.insert(path.to_owned(), publisher);
        }
    }

    /// Sends `"<path> <event>"` with `data` to every connection of the
    /// channels the publisher picks, once per connection.
    pub(crate) fn publish(&self, path: &str, event: &str, data: &Value, ctx: &HookContext) {
        let publisher = self
            .service_publishers
            .read()
            .ok()
            .and_then(|p| p.get(path).cloned())
            .or_else(|| self.app_publisher.read().ok().and_then(|p| p.clone()));
        let names = match publisher {
            Some(publisher) => publisher(data, ctx),
            None => vec![AUTHENTICATED.to_owned()],
        };
        if names.is_empty() {
            return;
        }
        // Collected first, so that a sender may join or leave channels
        // without deadlocking on the members' lock. One channel needs no
        // check for duplicates; several share a set of identities, which
        // keeps publishing linear in the number of connections.
        let mut targets: Vec<Connection> = Vec::new();
        if let Ok(members) = self.members.read() {
            let picked: Vec<&IndexMap<usize, Connection>> = names
                .iter()
                .filter_map(|name| members.channels.get(name))
                .collect();
            targets.reserve_exact(picked.iter().map(|members| members.len()).sum());
            if let [only] = picked.as_slice() {
                targets.extend(only.values().cloned());
            } else {
                let mut seen: HashSet<usize> = HashSet::with_capacity(targets.capacity());
                for members in picked {
                    for (key, connection) in members {
                        if seen.insert(*key) {
                            targets.push(connection.clone());
                        }
                    }
                }
            }
        }
        let name = format!("{path} {event}");
        let outgoing = Outgoing::new(&name, data);
        for connection in targets {
            if connection.deliver(&outgoing) == Delivery::Full {
                self.drop_slow(&connection);
            }
        }
    }

    /// A connection that cannot take another event: out of every channel
    /// (so no publish spends anything on it), counted once, and closed.
    fn drop_slow(&self, connection: &Connection) {
        if connection.inner.too_slow.swap(true, Ordering::Relaxed) {
            return;
        }
        self.forget(connection);
        self.too_slow.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            connection = connection.id(),
            "a real-time client reads too slowly (its queue of unsent events is full): disconnected"
        );
        connection.close();
    }

    /// How many connections [`drop_slow`](Self::drop_slow) dropped.
    pub(crate) fn slow_connections_dropped(&self) -> u64 {
        self.too_slow.load(Ordering::Relaxed)
    }
}

/// The channel new real-time connections join in the default app.
pub const ANONYMOUS: &str = "anonymous";

/// The channel connections move to when they log in; the default publisher
/// sends every service event here.
pub const AUTHENTICATED: &str = "authenticated";

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde_json::json;

    use super::*;
    use crate::Method;
    use crate::store::MemoryService;

    /// A connection whose sender keeps the names of the events it gets.
    fn recording(id: &str) -> (Connection, Arc<Mutex<Vec<String>>>) {
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&received);
        let sender: Sender = Arc::new(move |event: &Outgoing<'_>| {
            sink.lock().unwrap().push(event.name().to_owned());
            Delivery::Queued
        });
        let connection = Connection::new(id, Provider::SocketIo, HashMap::new(), sender);
        (connection, received)
    }

    #[test]
    fn an_event_is_encoded_once_for_all_its_connections() {
        #[derive(Clone, Debug, PartialEq)]
        struct Frame(String);
        #[derive(Clone)]
        struct Other;
        let data = json!({"text": "hi"});
        let event = Outgoing::new("notes created", &data);
        let encodings = std::sync::atomic::AtomicUsize::new(0);
        let encode = |name: &str, data: &Value| {
            encodings.fetch_add(1, Ordering::Relaxed);
            Frame(format!("{name}:{data}"))
        };
        for _ in 0..3 {
            assert_eq!(
                event.encoded(encode),
                Frame("notes created:{\"text\":\"hi\"}".into())
            );
        }
        assert_eq!(encodings.load(Ordering::Relaxed), 1);
        // Another transport's type is made for each of its connections.
        let others = std::sync::atomic::AtomicUsize::new(0);
        for _ in 0..2 {
            event.encoded(|_, _| {
                others.fetch_add(1, Ordering::Relaxed);
                Other
            });
        }
        assert_eq!(others.load(Ordering::Relaxed), 2);
        assert_eq!(
            event.encoded(encode),
            Frame("notes created:{\"text\":\"hi\"}".into())
        );
        assert_eq!(encodings.load(Ordering::Relaxed), 1);
    }

    fn app_publishing_to(names: &'static [&'static str]) -> App {
        let app = App::new();
        app.use_service("notes", MemoryService::new()).unwrap();
        app.publish(move |_data, _ctx| names.iter().map(|&n| n.to_owned()).collect());
        app
    }

    fn publish(app: &App) {
        let ctx = app.service("notes").unwrap().context(Method::Create);
        app.channels()
            .publish("notes", "created", &json!({"id": 1}), &ctx);
    }

    #[test]
    fn joining_twice_counts_once_and_the_last_leave_drops_the_channel() {
        let app = app_publishing_to(&["a"]);
        let (one, _) = recording("1");
        let channel = app.channel("a");
        let same = one.clone();
        channel.join(&one);
        // Another handle to the same connection is the same member.
        channel.join(&same);
        assert_eq!(channel.connections().len(), 1);
        assert!(channel.contains(&one));
        channel.leave(&one);
        assert!(!channel.contains(&one));
        let members = app.channels().members.read().unwrap();
        assert!(members.channels.is_empty() && members.joined.is_empty());
    }

    #[test]
    fn a_connection_in_several_channels_gets_an_event_once() {
        let app = app_publishing_to(&["a", "b", "nobody-here"]);
        let (both, got_both) = recording("both");
        let (only_b, got_b) = recording("b");
        let (neither, got_neither) = recording("neither");
        app.channel("a").join(&both);
        app.channel("b").join(&both);
        app.channel("b").join(&only_b);
        app.channel("c").join(&neither);
        publish(&app);
        assert_eq!(*got_both.lock().unwrap(), ["notes created"]);
        assert_eq!(*got_b.lock().unwrap(), ["notes created"]);
        assert!(got_neither.lock().unwrap().is_empty());
    }

    #[test]
    fn a_disconnect_leaves_every_channel_and_spares_the_others() {
        let app = app_publishing_to(&["a", "b"]);
        let (gone, got_gone) = recording("gone");
        let (stays, got_stays) = recording("stays");
        for name in ["a", "b", "c"] {
            app.channel(name).join(&gone);
        }
        app.channel("b").join(&stays);
        app.channels().forget(&gone);
        publish(&app);
        assert!(got_gone.lock().unwrap().is_empty());
        assert_eq!(*got_stays.lock().unwrap(), ["notes created"]);
        let members = app.channels().members.read().unwrap();
        assert_eq!(members.channels.keys().collect::<Vec<_>>(), ["b"]);
        assert_eq!(members.joined.len(), 1);
    }

    #[test]
    fn ten_thousand_members_join_receive_and_leave() {
        let app = app_publishing_to(&["everyone", "half"]);
        let connections: Vec<(Connection, Arc<Mutex<Vec<String>>>)> =
            (0..10_000).map(|i| recording(&i.to_string())).collect();
        for (index, (connection, _)) in connections.iter().enumerate() {
            app.channel("everyone").join(connection);
            if index % 2 == 0 {
                app.channel("half").join(connection);
            }
        }
        publish(&app);
        assert!(
            connections
                .iter()
                .all(|(_, got)| got.lock().unwrap().len() == 1)
        );
        for (index, (connection, _)) in connections.iter().enumerate() {
            if index % 3 == 0 {
                app.channels().forget(connection);
            } else {
                app.channel("everyone").leave(connection);
            }
        }
        assert_eq!(app.channel("everyone").connections().len(), 0);
        // Every even index not forgotten is still in `half`.
        let left = (0..10_000).filter(|i| i % 2 == 0 && i % 3 != 0).count();
        assert_eq!(app.channel("half").connections().len(), left);
    }
}
