//! Integration tests for Plume: one test binary, a module per area.
//!
//! - `hooks`: Feathers' `packages/feathers/test/hooks/*`, case for case.
//! - `query`: the query language against the stores.
//! - `store`: store behaviour that needs a child process (durability).

// Test helpers outside `#[test]` functions: failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod hooks;
mod query;
mod store;
