//! Events: the app's own (`login`, ...), and the event a successful
//! service call emits, to the service's listeners, the app-wide listeners
//! and the channels.

use std::sync::Arc;

use serde_json::Value;

use super::registry::ServiceEntry;
use super::{App, ServiceHandle};
use crate::HookContext;
use crate::events::Listener;

impl App {
    /// Listens to an app event such as `login`.
    pub fn on(&self, event: &str, listener: impl Fn(&Value, &HookContext) + Send + Sync + 'static) {
        self.inner.emitter.on(event, Arc::new(listener) as Listener);
    }

    /// Emits an app event.
    pub fn emit(&self, event: &str, data: &Value, ctx: &HookContext) {
        self.inner.emitter.emit(event, data, ctx);
    }

    /// Listens to every event of every service, with the service's path.
    /// The data is what a client would see (`ctx.dispatch` when set).
    pub fn on_service_event(
        &self,
        listener: impl Fn(&str, &str, &Value, &HookContext) + Send + Sync + 'static,
    ) {
        if let Ok(mut listeners) = self.inner.any_listeners.write() {
            listeners.push(Arc::new(listener));
        }
    }

    /// Emits one service event: service listeners get the raw `data`;
    /// app-wide listeners and channels get `safe`, the data as a client
    /// would see it (from `ctx.dispatch` when a hook set one).
    fn emit_service_event(
        &self,
        entry: &ServiceEntry,
        event: &str,
        data: &Value,
        safe: &Value,
        ctx: &HookContext,
    ) {
        entry.emitter.emit(event, data, ctx);
        let listeners = match self.inner.any_listeners.read() {
            Ok(listeners) => listeners.clone(),
            Err(_) => return,
        };
        for listener in listeners {
            listener(&entry.path, event, safe, ctx);
        }
        entry.metrics.event_published();
        self.inner.channels.publish(&entry.path, event, safe, ctx);
    }
}

impl ServiceHandle {
    /// Listens to an event of this service (`created`, ...).
    pub fn on(
        &self,
        event: &str,
        listener: impl Fn(&Value, &HookContext) + Send + Sync + 'static,
    ) -> &Self {
        self.entry.emitter.on(event, Arc::new(listener));
        self
    }

    /// Emits `ctx.event` once per element of an array result, or once
    /// (Feathers' `eventHook`, `@feathersjs/feathers`, `src/events.ts`);
    /// events the service emits itself are skipped.
    pub(super) fn emit_event(&self, ctx: &HookContext) {
        let (Some(event), Some(result)) = (ctx.event.as_deref(), ctx.result.as_ref()) else {
            return;
        };
        if self.entry.own_events.iter().any(|e| e == event) {
            return;
        }
        // What clients may see: `dispatch` mirrors the result's shape when
        // a hook such as `protect` set it.
        match (result, ctx.dispatch.as_ref()) {
            (Value::Array(items), dispatch) => {
                let safe_items = match dispatch {
                    Some(Value::Array(safe)) if safe.len() == items.len() => Some(safe),
                    _ => None,
                };
                for (i, item) in items.iter().enumerate() {
                    let safe = safe_items.map_or(item, |safe| &safe[i]);
                    self.app
                        .emit_service_event(&self.entry, event, item, safe, ctx);
                }
            }
            (single, dispatch) => {
                let safe = dispatch.unwrap_or(single);
                self.app
                    .emit_service_event(&self.entry, event, single, safe, ctx);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde_json::json;

    use super::*;
    use crate::app::testing::Echo;
    use crate::app::{Hooks, ServiceOptions};
    use crate::{Id, Method, Params};

    type Seen = Arc<Mutex<Vec<(String, String, Value)>>>;

    fn record(app: &App) -> Seen {
        let seen: Seen = Arc::default();
        let sink = Arc::clone(&seen);
        app.on_service_event(move |path, event, data, _ctx| {
            if let Ok(mut seen) = sink.lock() {
                seen.push((path.to_owned(), event.to_owned(), data.clone()));
            }
        });
        seen
    }

    fn taken(seen: &Seen) -> Vec<(String, String, Value)> {
        seen.lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn events_follow_success_once_per_element() {
        // Feathers' `eventHook`, `@feathersjs/feathers`, `src/events.ts`.
        let app = App::new();
        let svc = app.use_service("echo", Echo).unwrap();
        let seen = record(&app);
        let own: Seen = Arc::default();
        let sink = Arc::clone(&own);
        svc.on("created", move |data, ctx| {
            sink.lock()
                .unwrap()
                .push((ctx.path.to_string(), "created".to_owned(), data.clone()));
        });

        svc.create(json!({"n": 1}), Params::new()).await.unwrap();
        svc.create(json!([{"n": 2}, {"n": 3}]), Params::new())
            .await
            .unwrap();
        svc.update(Some(Id::from(1)), json!({}), Params::new())
            .await
            .unwrap();
        svc.patch(None, json!({}), Params::new()).await.unwrap();
        svc.remove(Some(Id::from(4)), Params::new()).await.unwrap();
        svc.find(Params::new()).await.unwrap();
        svc.get(1, Params::new()).await.unwrap();
        assert!(
            svc.create(json!({"fail": true}), Params::new())
                .await
                .is_err()
        );

        let names: Vec<(String, Value)> =
            taken(&seen).into_iter().map(|(_, e, d)| (e, d)).collect();
        assert_eq!(
            names,
            vec![
                ("created".to_owned(), json!({"n": 1})),
                ("created".to_owned(), json!({"n": 2})),
                ("created".to_owned(), json!({"n": 3})),
                ("updated".to_owned(), json!({"id": 1, "data": {}})),
                ("patched".to_owned(), json!({"id": null, "data": {}})),
                ("removed".to_owned(), json!({"id": 4})),
            ]
        );
        assert_eq!(own.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn hooks_can_rename_or_suppress_events() {
        // Feathers' `eventHook` (`@feathersjs/feathers`, `src/events.ts`): its
        // test "allows to skip event emitting", custom method events.
        let app = App::new();
        let svc = app
            .use_service_with(
                "echo",
                Echo,
                ServiceOptions::new().methods(["create", "archive"]),
            )
            .unwrap();
        svc.hooks(
            Hooks::new()
                .before("create", async |ctx: &mut HookContext| {
                    if ctx.data.as_ref().is_some_and(|d| d.get("quiet").is_some()) {
                        ctx.event = None;
                    }
                    Ok(())
                })
                .before("archive", async |ctx: &mut HookContext| {
                    ctx.event = Some("archived".to_owned());
                    Ok(())
                }),
        );
        let seen = record(&app);
        svc.create(json!({"quiet": true}), Params::new())
            .await
            .unwrap();
        svc.custom("archive", json!({"a": 1}), Params::new())
            .await
            .unwrap();
        let events: Vec<String> = taken(&seen).into_iter().map(|(_, e, _)| e).collect();
        assert_eq!(events, ["archived"]);
    }

    #[tokio::test]
    async fn events_the_service_emits_itself_are_not_sent_twice() {
        let app = App::new();
        let svc = app
            .use_service_with("echo", Echo, ServiceOptions::new().events(["created"]))
            .unwrap();
        let seen = record(&app);
        svc.create(json!({}), Params::new()).await.unwrap();
        assert!(taken(&seen).is_empty());
    }

    #[tokio::test]
    async fn app_events() {
        let app = App::new();
        let logins = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&logins);
        app.on("login", move |data, _ctx| {
            sink.lock().unwrap().push(data.clone());
        });
        let ctx = HookContext::new(app.clone(), "authentication", Method::Create);
        app.emit("login", &json!({"user": 1}), &ctx);
        app.emit("logout", &json!({"user": 1}), &ctx);
        assert_eq!(*logins.lock().unwrap(), vec![json!({"user": 1})]);
    }
}
