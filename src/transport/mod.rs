//! Transports: turn requests into service calls.
//!
//! - [`rest`]: HTTP on axum, Feathers' REST mapping.
//! - [`socketio`]: real-time calls and events over socket.io.
//! - `ops`: Plume's own `/health`, `/ready` and `/metrics`, served by REST.
//!
//! Both read a call off the wire and hand it to `dispatch`, which finds
//! the service, checks the method and builds the call's context; both
//! bound what one input may cost through `input`.

#[cfg(feature = "rest")]
pub(crate) mod cors;
// The route table is built with the app; without a transport nothing
// reads it.
#[cfg_attr(not(feature = "rest"), allow(dead_code))]
pub(crate) mod dispatch;
#[cfg(feature = "rest")]
pub(crate) mod input;
#[cfg(feature = "rest")]
pub(crate) mod ops;
#[cfg(feature = "rest")]
pub mod rest;
#[cfg(feature = "socketio")]
pub mod socketio;

#[cfg(feature = "rest")]
use axum::http::{HeaderMap, header};

#[cfg(feature = "rest")]
use crate::{Error, Result};

/// 401 when a request carries more than one `Authorization` header, or
/// one that is not text: which of two credentials a server reads differs
/// between proxies and servers, so neither is trusted (a garbage first
/// header must not let a later valid one through, nor the reverse).
#[cfg(feature = "rest")]
pub(crate) fn single_authorization(headers: &HeaderMap) -> Result<()> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(Error::not_authenticated(
            "Only one Authorization header may be sent",
        ));
    }
    if first.is_some_and(|value| value.to_str().is_err()) {
        return Err(Error::not_authenticated(
            "The Authorization header is not valid text",
        ));
    }
    Ok(())
}
