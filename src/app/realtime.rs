//! Real-time glue: transports report connections arriving and leaving,
//! the app's listeners put them into channels, and publishers pick the
//! channels that receive a service event.

use std::sync::Arc;

use serde_json::Value;

use super::{App, ServiceHandle};
use crate::HookContext;
use crate::channels::{Channel, Channels, Connection, Publisher};

/// Called when a real-time client connects or disconnects.
pub(crate) type ConnectionListener = Arc<dyn Fn(&Connection) + Send + Sync>;

impl App {
    /// The channel called `name` (created when first joined).
    pub fn channel(&self, name: &str) -> Channel {
        Channel::new(self.clone(), name)
    }

    pub(crate) fn channels(&self) -> &Channels {
        &self.inner.channels
    }

    /// When each logged-in connection's token expires.
    pub(crate) fn expiries(&self) -> &crate::auth::expiry::Expiries {
        &self.inner.expiries
    }

    /// Sets the app-wide publisher: which channels receive a service event.
    /// Without one, events go to the `authenticated` channel. A service's
    /// own publisher ([`ServiceHandle::publish`]) takes precedence.
    pub fn publish(
        &self,
        publisher: impl Fn(&Value, &HookContext) -> Vec<String> + Send + Sync + 'static,
    ) {
        self.inner
            .channels
            .set_app_publisher(Arc::new(publisher) as Publisher);
    }

    /// Listens for new real-time connections (Feathers' `connection`
    /// event): where an app puts them into channels.
    pub fn on_connection(&self, listener: impl Fn(&Connection) + Send + Sync + 'static) {
        if let Ok(mut listeners) = self.inner.connection_listeners.write() {
            listeners.push(Arc::new(listener));
        }
    }

    /// Listens for real-time connections going away (Feathers'
    /// `disconnect` event). The connection has already left every channel.
    pub fn on_disconnect(&self, listener: impl Fn(&Connection) + Send + Sync + 'static) {
        if let Ok(mut listeners) = self.inner.disconnect_listeners.write() {
            listeners.push(Arc::new(listener));
        }
    }

    /// A transport reports a new connection.
    pub fn connected(&self, connection: &Connection) {
        self.inner.channels.open(connection);
        let listeners = self
            .inner
            .connection_listeners
            .read()
            .map(|l| l.clone())
            .unwrap_or_default();
        for listener in listeners {
            listener(connection);
        }
    }

    /// A transport reports a closed connection: it leaves every channel,
    /// then the disconnect listeners run.
    pub fn disconnected(&self, connection: &Connection) {
        self.inner.channels.close(connection);
        self.detach(connection);
    }

    /// Every open real-time connection.
    pub(crate) fn live_connections(&self) -> Vec<Connection> {
        self.inner.channels.live()
    }

    /// How many real-time connections are open.
    pub fn open_connections(&self) -> usize {
        self.inner.channels.open_count()
    }

    /// How many real-time connections were dropped for reading too slowly:
    /// their queue of unsent events was full when an event came (see
    /// [`Delivery::Full`](crate::channels::Delivery::Full)).
    pub fn slow_connections_dropped(&self) -> u64 {
        self.inner.channels.slow_connections_dropped()
    }

    /// Takes a connection out of every channel, and nothing else.
    pub(crate) fn forget_channels(&self, connection: &Connection) {
        self.inner.channels.forget(connection);
    }

    /// A connection stops receiving events while it stays open (its login
    /// expired and `keepSocketOnExpiry` is set): it leaves every channel
    /// and the disconnect listeners run, as Feathers does on expiry.
    pub(crate) fn detach(&self, connection: &Connection) {
        self.inner.channels.forget(connection);
        let listeners = self
            .inner
            .disconnect_listeners
            .read()
            .map(|l| l.clone())
            .unwrap_or_default();
        for listener in listeners {
            listener(connection);
        }
    }
}

impl ServiceHandle {
    /// Sets this service's publisher: which channels receive its events
    /// (for example only the owner's). Overrides the app-wide publisher.
    pub fn publish(
        &self,
        publisher: impl Fn(&Value, &HookContext) -> Vec<String> + Send + Sync + 'static,
    ) -> &Self {
        self.app
            .inner
            .channels
            .set_service_publisher(&self.entry.path, Arc::new(publisher));
        self
    }
}
