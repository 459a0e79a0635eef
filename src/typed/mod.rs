//! Typed access to a call's JSON: read `data`, `result` and the query as
//! Rust types, write them back from Rust types, visit each record whatever
//! the shape, and read the verified token claims and the authenticated
//! user. Hooks and transports still see JSON; these convert at the edge.
//!
//! ```
//! use plume::{HookContext, Result};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Deserialize, Serialize)]
//! struct Message {
//!     text: String,
//! }
//!
//! async fn shout(ctx: &mut HookContext) -> Result<()> {
//!     // 400 BadRequest "Invalid data: text: invalid type: ..." when the
//!     // client sent something else.
//!     let mut message: Message = ctx.data_as()?;
//!     message.text = message.text.to_uppercase();
//!     ctx.set_data(&message)
//! }
//! ```
//!
//! Errors name where the JSON does not fit (`text`, `tags/1`, or
//! the missing field) and carry Feathers-style `data`: one entry per error
//! with its `instancePath` (a JSON pointer) and `message`, the shape a
//! Feathers schema validator (ajv) gives.
//!
//! A service can also be written with Rust types throughout: see
//! [`TypedService`].

mod access;
mod service;

pub use service::{Found, Typed, TypedService};
