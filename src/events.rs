//! Event listeners for services and the app.
//!
//! Services emit `created`, `updated`, `patched` and `removed` after a call
//! succeeds (Feathers' `eventHook`, `@feathersjs/feathers`, `src/events.ts`);
//! the app emits its own events such as `login` and
//! `logout`. Listeners are synchronous and must not block: a listener that
//! needs to do I/O spawns a task.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use serde_json::Value;

use crate::HookContext;

/// A listener: called with the event's data and the context of the call
/// that caused it.
pub type Listener = Arc<dyn Fn(&Value, &HookContext) + Send + Sync>;

/// A listener for every event of every service: called with the service
/// path, the event name, the data and the context.
pub type AnyListener = Arc<dyn Fn(&str, &str, &Value, &HookContext) + Send + Sync>;

/// Listeners by event name.
#[derive(Default)]
pub(crate) struct Emitter {
    listeners: RwLock<HashMap<String, Vec<Listener>>>,
}

impl fmt::Debug for Emitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self
            .listeners
            .read()
            .map(|l| l.keys().cloned().collect())
            .unwrap_or_default();
        f.debug_struct("Emitter").field("events", &names).finish()
    }
}

impl Emitter {
    pub(crate) fn on(&self, event: &str, listener: Listener) {
        if let Ok(mut listeners) = self.listeners.write() {
            listeners
                .entry(event.to_owned())
                .or_default()
                .push(listener);
        }
    }

    /// Calls the listeners of `event`. They are copied out first so that a
    /// listener may register another one without deadlocking.
    pub(crate) fn emit(&self, event: &str, data: &Value, ctx: &HookContext) {
        let listeners = match self.listeners.read() {
            Ok(listeners) => listeners.get(event).cloned(),
            Err(_) => None,
        };
        for listener in listeners.into_iter().flatten() {
            listener(data, ctx);
        }
    }
}
