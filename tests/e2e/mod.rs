//! End-to-end tests of the default app (issue 4, point 8): the app that
//! `cargo run --release` serves, on `:memory:` with `config/test.json`,
//! driven over real HTTP on loopback.
//!
//! - `routes`: every route's status and body shape.
//! - `bad_bodies`: malformed JSON, bodies over the limit, nesting bombs.
//! - `queries`: unknown operators, SQL in `$select` and `$sort`, protected
//!   fields, SQL in values.
//! - `identity`: ids given as objects or taken from others, and keys named
//!   like params (`provider`, `user`, `payload`, `authenticated`).
//! - `throttle`: login throttling with `Retry-After`.
//! - `ops`: `/health`, `/ready`, `/metrics` and request ids.
//! - `hostile`: the attacks of the "secure by default" issue: other
//!   people's accounts and messages, self-granted roles, junk at sign-up,
//!   tokens past a logout, a password change or a deletion, forged
//!   credentials, socket expiry.
//!
//! Every refused request is checked for its Feathers error JSON and for
//! both tables being exactly as they were.

mod support;

mod bad_bodies;
mod hostile;
mod identity;
mod memory;
mod openapi;
mod ops;
mod queries;
mod routes;
mod throttle;
mod todos;
