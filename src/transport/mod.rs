//! Transports: turn requests into service calls.
//!
//! - [`rest`]: HTTP on axum, Feathers' REST mapping.

pub mod rest;
