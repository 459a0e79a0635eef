//! [`ServiceHandle`]: a registered service as its callers hold it, and
//! what it tells of the service: its path, app, implementation, the
//! methods transports may call, and its OpenAPI docs.

use std::fmt;
use std::sync::Arc;

use super::App;
use super::registry::ServiceEntry;
use crate::{Method, Service};

/// A registered service: call its methods through its hooks, add hooks,
/// listen to its events.
#[derive(Clone)]
pub struct ServiceHandle {
    pub(super) app: App,
    pub(super) entry: Arc<ServiceEntry>,
}

impl fmt::Debug for ServiceHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceHandle")
            .field("path", &self.entry.path)
            .field("methods", &self.entry.external)
            .finish()
    }
}

impl ServiceHandle {
    /// The normalised path the service is registered at.
    pub fn path(&self) -> &str {
        &self.entry.path
    }

    /// Counts an answer to a call of `method` (`None`: one the service
    /// does not have) over `transport`, for `/metrics`.
    #[cfg_attr(not(feature = "rest"), allow(dead_code))]
    pub(crate) fn record(
        &self,
        method: Option<&Method>,
        transport: crate::metrics::Transport,
        status: u16,
        latency: std::time::Duration,
    ) {
        self.entry
            .metrics
            .record(method, transport, status, latency);
    }

    /// The app the service belongs to.
    pub fn app(&self) -> &App {
        &self.app
    }

    /// The service implementation.
    pub fn service(&self) -> &Arc<dyn Service> {
        &self.entry.service
    }

    /// The service implementation as its concrete type, if it is a `T`;
    /// how built-in hooks reach, say, the authentication service.
    pub fn downcast<T: Service>(&self) -> Option<Arc<T>> {
        let any: Arc<dyn std::any::Any + Send + Sync> = Arc::clone(&self.entry.service) as _;
        any.downcast::<T>().ok()
    }

    /// Methods that transports may call.
    pub fn external_methods(&self) -> &[Method] {
        &self.entry.external
    }

    /// True when a transport may call `method`.
    pub fn allows_external(&self, method: &Method) -> bool {
        self.entry.external.contains(method)
    }

    /// Describes the service in the app's OpenAPI document
    /// ([`schema::openapi`](crate::schema::openapi), served at
    /// `GET /openapi.json`): its schemas and its public methods.
    pub fn docs(&self, docs: crate::schema::ServiceDocs) -> &Self {
        if let Ok(mut current) = self.entry.docs.write() {
            *current = Some(Arc::new(docs));
        }
        self
    }

    /// The service's docs, when [`docs`](Self::docs) set them.
    pub(crate) fn service_docs(&self) -> Option<Arc<crate::schema::ServiceDocs>> {
        self.entry.docs.read().ok().and_then(|docs| docs.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::testing::Echo;

    #[tokio::test]
    async fn services_downcast_to_their_type() {
        let app = App::new();
        let svc = app.use_service("echo", Echo).unwrap();
        assert!(svc.downcast::<Echo>().is_some());
        assert!(svc.downcast::<crate::store::MemoryService>().is_none());
        assert!(svc.app().ptr_eq(&app));
        assert!(!App::new().ptr_eq(&app));
    }
}
