//! Integration tests for Plume: one test binary, a module per area.
//!
//! - `auth`: Feathers' authentication tests, the attack battery, Plume's rules.
//! - `cli`: the `plume` binary's commands and start-up checks.
//! - `e2e`: the default app end to end over HTTP, with hostile inputs.
//! - `fuzz`: property tests feeding arbitrary input to every parser.
//! - `hooks`: Feathers' `packages/feathers/test/hooks/*`, case for case.
//! - `query`: the query language against the stores.
//! - `rest`: the REST transport over real HTTP on loopback.
//! - `realtime`: the socket.io transport and channels.
//! - `store`: store behaviour that needs a child process (durability).
//! - `support`: a test server and a minimal socket.io client.

// Test helpers outside `#[test]` functions: failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod auth;
mod cli;
/// The app the `plume` binary serves, compiled from the binary's source:
/// the library does not ship it.
#[allow(dead_code, unused_imports, unreachable_pub)]
#[path = "../src/bin/plume/default_app/mod.rs"]
mod default_app;
mod e2e;
mod fuzz;
mod hooks;
mod query;
mod realtime;
mod rest;
mod store;
mod support;
