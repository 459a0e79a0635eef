//! Integration tests for Plume: one test binary, a module per area.
//!
//! - `auth`: Feathers' authentication tests, the attack battery, Plume's rules.
//! - `hooks`: Feathers' `packages/feathers/test/hooks/*`, case for case.
//! - `query`: the query language against the stores.

// Test helpers outside `#[test]` functions: failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod auth;
mod hooks;
mod query;
