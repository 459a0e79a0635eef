//! Transports: turn requests into service calls.
//!
//! - [`rest`]: HTTP on axum, Feathers' REST mapping.
//! - [`socketio`]: real-time calls and events over socket.io.

pub mod rest;
pub mod socketio;
