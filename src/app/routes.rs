//! The route table: every service's path, and the same path followed by
//! an id segment, in matchit routers rebuilt whenever a service is
//! registered, so that a call's lookup walks its path once instead of
//! trying every service.
//!
//! Feathers routes the same way with its own radix router
//! (`@feathersjs/transport-commons`, `src/routing/router.ts`): at each
//! segment a literal beats a placeholder, left to right, falling back to
//! the placeholder when the literal leads nowhere; every service is there
//! at `path` and at `path/:__id`. matchit follows the same priority.

use std::sync::Arc;

use super::registry::ServiceEntry;

/// What a path leads to: the service, the raw text of each `:placeholder`
/// of its path, and the raw id segment when the path has one.
pub(crate) struct Routed<S> {
    pub(crate) service: S,
    pub(crate) params: Vec<(Arc<str>, String)>,
    pub(crate) id: Option<String>,
}

/// A route's value: the service, and for each `:placeholder` of its path
/// the matchit parameter that holds it and its name. matchit's parameters
/// are named by position (`p0`, `p1`, ...), so that two services whose
/// placeholders differ only in name share one route, which matchit
/// requires.
#[derive(Clone)]
struct Slot {
    entry: Arc<ServiceEntry>,
    names: Vec<(String, Arc<str>)>,
    /// The parameter holding the id segment, for a route that has one.
    id: Option<String>,
}

/// The routers of every registered service.
#[derive(Default)]
pub(super) struct RouteTable {
    /// Service paths only: socket.io passes the id as an argument.
    paths: matchit::Router<Slot>,
    /// Service paths, then the same paths with an id segment (REST).
    with_ids: matchit::Router<Slot>,
}

impl RouteTable {
    /// The table of `entries`, in registration order. A route an earlier
    /// service already holds (the same segments, placeholders named alike
    /// or not) stays with that service, as Feathers' router tries
    /// placeholders in the order they were added; and a path without an
    /// id beats the same shape with one (`a/:b` over `a` with an id).
    pub(super) fn build<'a>(entries: impl Iterator<Item = &'a Arc<ServiceEntry>>) -> Self {
        let mut table = Self::default();
        let routes: Vec<(String, usize, Slot)> = entries.map(route).collect();
        for (pattern, _, slot) in &routes {
            let _ = table.paths.insert(pattern.clone(), slot.clone());
            let _ = table.with_ids.insert(pattern.clone(), slot.clone());
        }
        for (pattern, segments, slot) in routes {
            let id = format!("p{segments}");
            let pattern = format!("{}/{{{id}}}", pattern.trim_end_matches('/'));
            let slot = Slot {
                id: Some(id),
                ..slot
            };
            let _ = table.with_ids.insert(pattern, slot);
        }
        table
    }

    /// The service `path` leads to. Empty segments are skipped (`//a/`
    /// is `a`); with `id_segment`, one segment past a service's path is
    /// its id.
    pub(super) fn at(&self, path: &str, id_segment: bool) -> Option<Routed<Arc<ServiceEntry>>> {
        let mut normalized = String::with_capacity(path.len() + 1);
        for segment in path.split('/').filter(|s| !s.is_empty()) {
            normalized.push('/');
            normalized.push_str(segment);
        }
        if normalized.is_empty() {
            normalized.push('/');
        }
        let router = if id_segment {
            &self.with_ids
        } else {
            &self.paths
        };
        let found = router.at(&normalized).ok()?;
        let slot = found.value;
        let param = |key: &str| found.params.get(key).map(str::to_owned);
        Some(Routed {
            service: Arc::clone(&slot.entry),
            params: slot
                .names
                .iter()
                .filter_map(|(key, name)| Some((Arc::clone(name), param(key)?)))
                .collect(),
            id: slot.id.as_deref().and_then(param),
        })
    }
}

/// The matchit pattern of `entry`'s path, how many segments it has, and
/// its slot (without an id). Service paths hold only URL-safe characters
/// (see `normalize_path`), never matchit's `{` or `}`.
fn route(entry: &Arc<ServiceEntry>) -> (String, usize, Slot) {
    let mut pattern = String::new();
    let mut names = Vec::new();
    let mut segments = 0;
    for (at, segment) in entry.path.split('/').filter(|s| !s.is_empty()).enumerate() {
        match segment.strip_prefix(':') {
            Some(name) => {
                let key = format!("p{at}");
                pattern.push_str(&format!("/{{{key}}}"));
                names.push((key, Arc::from(name)));
            }
            None => {
                pattern.push('/');
                pattern.push_str(segment);
            }
        }
        segments = at + 1;
    }
    if pattern.is_empty() {
        pattern.push('/');
    }
    let slot = Slot {
        entry: Arc::clone(entry),
        names,
        id: None,
    };
    (pattern, segments, slot)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::App;
    use crate::app::testing::Echo;

    fn app(paths: &[&str]) -> App {
        let app = App::new();
        for path in paths {
            app.use_service(path, Echo).unwrap();
        }
        app
    }

    /// The service, placeholders and id `path` leads to, as text.
    fn at(app: &App, path: &str, id_segment: bool) -> Option<serde_json::Value> {
        let routed = app.route(path, id_segment)?;
        let (service, id) = (routed.service, routed.id);
        let params: serde_json::Map<_, _> = routed
            .params
            .into_iter()
            .map(|(name, raw)| (name.to_string(), json!(raw)))
            .collect();
        Some(json!({"service": service.path(), "params": params, "id": id}))
    }

    #[test]
    fn literals_win_placeholders_capture_and_ids_follow() {
        let app = app(&["messages", ":org/items", "orgs/items", "/"]);
        assert_eq!(
            at(&app, "/messages/7", true),
            Some(json!({"service": "messages", "params": {}, "id": "7"}))
        );
        assert_eq!(
            at(&app, "//acme//items/3/", true),
            Some(json!({"service": ":org/items", "params": {"org": "acme"}, "id": "3"}))
        );
        assert_eq!(
            at(&app, "/orgs/items", true),
            Some(json!({"service": "orgs/items", "params": {}, "id": null}))
        );
        assert_eq!(
            at(&app, "/", true),
            Some(json!({"service": "/", "params": {}, "id": null}))
        );
        // The root service's id.
        assert_eq!(
            at(&app, "/x", true),
            Some(json!({"service": "/", "params": {}, "id": "x"}))
        );
        assert_eq!(at(&app, "/messages/7/8", true), None);
    }

    #[test]
    fn a_literal_that_leads_nowhere_falls_back_to_the_placeholder() {
        // Feathers' router backtracks the same way.
        let app = app(&["users", ":org/items"]);
        assert_eq!(
            at(&app, "/users/items/3", true),
            Some(json!({"service": ":org/items", "params": {"org": "users"}, "id": "3"}))
        );
        // Left to right: `users` with the id `items` before the placeholder.
        assert_eq!(
            at(&app, "/users/items", true),
            Some(json!({"service": "users", "params": {}, "id": "items"}))
        );
    }

    #[test]
    fn without_id_segments_only_service_paths_match() {
        let app = app(&["messages", ":org/items"]);
        assert_eq!(at(&app, "messages/7", false), None);
        assert_eq!(
            at(&app, "acme/items", false),
            Some(json!({"service": ":org/items", "params": {"org": "acme"}, "id": null}))
        );
    }

    #[test]
    fn the_first_service_keeps_a_shared_route_and_a_path_beats_an_id() {
        let app = app(&[":a/items", ":b/items", "a", "a/:c"]);
        assert_eq!(
            at(&app, "/x/items", true),
            Some(json!({"service": ":a/items", "params": {"a": "x"}, "id": null}))
        );
        // `a/:c` over `a` with an id, though `a` came first.
        assert_eq!(
            at(&app, "/a/1", true),
            Some(json!({"service": "a/:c", "params": {"c": "1"}, "id": null}))
        );
    }
}
