//! What both transports do with a call once they have read it off the
//! wire: find the service and its route parameters, refuse a method the
//! service does not expose, and build the hook context the call runs with.
//! REST and socket.io differ only in how they read a call (an HTTP request,
//! a socket.io event) and how they answer it.
//!
//! Feathers does the same in `@feathersjs/transport-commons`
//! (`src/socket/utils.ts`, `runMethod`) and `@feathersjs/koa`
//! (`src/rest.ts`): one `app.lookup(path)` gives the service and
//! `params.route`, then the method is checked against the service's
//! external methods.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};

use crate::auth::AuthenticationService;
use crate::channels::Connection;
use crate::{App, ClientAddr, Error, HookContext, Method, Params, Provider, Result, ServiceHandle};

/// Where a call goes: the service, the values of its path's
/// `:placeholders` (`params.route`) and, for REST, the id segment.
pub(crate) struct Target {
    pub(crate) service: ServiceHandle,
    pub(crate) route: Map<String, Value>,
    pub(crate) id: Option<String>,
}

/// Whether a path may end with one segment past the service's path: REST
/// puts the id there (`/messages/1`); socket.io passes it as an argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdSegment {
    Allowed,
    #[cfg_attr(not(feature = "socketio"), allow(dead_code))]
    Never,
}

/// Finds the service for `path` through the app's route table: literal
/// segments before `:placeholder`s, left to right, optionally followed by
/// one id segment. Segments are percent-decoded (Feathers passes them
/// raw; Plume decodes so that `/todos/a%20b` gets `a b`).
pub(crate) fn resolve(app: &App, path: &str, id: IdSegment) -> Option<Target> {
    let routed = app.route(path, id == IdSegment::Allowed)?;
    Some(Target {
        service: routed.service,
        route: routed
            .params
            .into_iter()
            .map(|(name, raw)| (name.to_string(), Value::String(decode(&raw))))
            .collect(),
        id: routed.id.map(|raw| decode(&raw)),
    })
}

/// A path segment, percent-decoded; invalid UTF-8 is kept lossily and a
/// `%` without two hex digits stays as it is.
pub(crate) fn decode(segment: &str) -> String {
    percent_decode_str(segment).decode_utf8_lossy().into_owned()
}

/// 405 unless `method` is one the service exposes to clients, with the
/// message each Feathers transport gives.
pub(crate) fn external_method(
    service: &ServiceHandle,
    method: &Method,
    provider: Provider,
    path: &str,
) -> Result<()> {
    if service.allows_external(method) {
        return Ok(());
    }
    Err(match provider {
        Provider::SocketIo => {
            Error::method_not_allowed(format!("Method '{method}' not allowed on service '{path}'"))
        }
        Provider::Rest => crate::method_not_allowed(method.as_str()),
    })
}

/// The app's authentication service (the one its `defaultAuthentication`
/// setting names), looked up by the first call that finds one rather than
/// by every call. Clones share the lookup.
#[derive(Clone, Default)]
pub(crate) struct AuthLookup(Arc<OnceLock<Arc<AuthenticationService>>>);

impl AuthLookup {
    pub(crate) fn get(&self, app: &App) -> Option<Arc<AuthenticationService>> {
        if let Some(service) = self.0.get() {
            return Some(Arc::clone(service));
        }
        let found = AuthenticationService::from_app(app, None)?;
        Some(Arc::clone(self.0.get_or_init(|| found)))
    }
}

/// Who makes a call, as the transport knows it.
pub(crate) struct Caller {
    pub(crate) provider: Provider,
    /// The request's headers, or the socket's handshake headers.
    pub(crate) headers: HashMap<String, String>,
    /// The credentials the call carries (`params.authentication`).
    pub(crate) authentication: Option<Value>,
    /// What the connection is logged in as (`params.user`, ...).
    pub(crate) entities: Map<String, Value>,
    pub(crate) connection: Option<Connection>,
    pub(crate) address: Option<IpAddr>,
}

impl Caller {
    /// A call over `connection`, carrying what it logged in with.
    #[cfg_attr(not(feature = "socketio"), allow(dead_code))]
    pub(crate) fn over(connection: &Connection, address: Option<IpAddr>) -> Self {
        let state = connection.state();
        Self {
            provider: connection.provider(),
            headers: connection.headers().clone(),
            authentication: state.authentication,
            entities: state.entities,
            connection: Some(connection.clone()),
            address,
        }
    }
}

/// The hook context of a call of `method` on `target`'s service by
/// `caller`, with its query; the transport sets `id` and `data`.
pub(crate) fn context(
    target: &Target,
    method: Method,
    caller: Caller,
    query: Map<String, Value>,
) -> HookContext {
    let mut ctx = target.service.context(method);
    ctx.params = Params {
        provider: Some(caller.provider),
        query,
        headers: caller.headers,
        route: target.route.clone(),
        authentication: caller.authentication,
        entities: caller.entities,
        connection: caller.connection,
        ..Params::default()
    };
    if let Some(address) = caller.address {
        ctx.params.extensions.insert(ClientAddr(address));
    }
    ctx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_percent_decoded_and_bad_escapes_kept() {
        assert_eq!(decode("a%20b"), "a b");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz%41"), "%zzA");
        assert_eq!(decode("%ff"), "\u{fffd}");
    }
}
