//! Issue 10, point 10: fuzzing on stable Rust. Property tests feed
//! arbitrary bytes and JSON to everything that reads client input or
//! configuration: the answer is `Ok` or a Feathers error, never a panic
//! (proptest turns a panic into a failure and shrinks the input).
//!
//! - `query`: REST query strings through the real router, and JSON queries
//!   straight into `find` on both stores;
//! - `socket`: event names and arguments over a real socket.io connection
//!   (the argument splitting itself is fuzzed in `src/transport/socketio.rs`);
//! - `auth`: `Authorization` headers through the jwt strategy's `parse`,
//!   and tokens through `verify_access_token`, `token::verify` and
//!   `token::peek_claims`;
//! - `config`: arbitrary configuration files and environment values
//!   through `Config::load_with` and the secret checks.
//!
//! Case counts keep the whole module within a few seconds in debug builds;
//! `PLUME_FUZZ_SCALE=N` multiplies them for a longer hunt.

mod auth;
mod config;
mod query;
mod socket;

use proptest::prelude::*;
use serde_json::{Map, Value};

/// Keys and strings the parsers treat specially, mixed with anything.
const WORDS: &[&str] = &[
    "$limit",
    "$skip",
    "$sort",
    "$select",
    "$or",
    "$and",
    "$in",
    "$nin",
    "$lt",
    "$lte",
    "$gt",
    "$gte",
    "$ne",
    "$eq",
    "$like",
    "$regex",
    "$populate",
    "id",
    "name",
    "n",
    "password",
    "a.b",
    "__proto__",
    "constructor",
    "",
    "-1",
    "1",
    "0",
    "1e400",
    "NaN",
    "true",
    "null",
    "[]",
    "{}",
    "Bearer",
    "JWT",
    "%",
    "%00",
    "\u{0}",
    "'; DROP TABLE items; --",
    "\"",
    "\\",
];

/// A string that is often one of [`WORDS`], else anything.
fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(WORDS).prop_map(str::to_owned),
        1 => "[0-9.eE+-]{0,12}",
        2 => any::<String>(),
    ]
}

/// Any JSON value, nested up to four levels, with keys from [`word`].
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("JSON has no NaN", |f| {
            serde_json::Number::from_f64(f).map(Value::Number)
        }),
        word().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            json_object(inner),
        ]
    })
}

fn json_object(inner: impl Strategy<Value = Value>) -> impl Strategy<Value = Value> {
    prop::collection::vec((word(), inner), 0..6)
        .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<String, Value>>()))
}

/// A JSON object (a query, a configuration file).
fn json_map() -> impl Strategy<Value = Map<String, Value>> {
    json_object(json_value()).prop_map(|v| match v {
        Value::Object(map) => map,
        _ => Map::new(),
    })
}

/// A current-thread runtime for the async calls inside a property.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// `n` cases, times `PLUME_FUZZ_SCALE` when set.
fn cases(n: u32) -> proptest::test_runner::Config {
    let scale = std::env::var("PLUME_FUZZ_SCALE")
        .ok()
        .and_then(|s| s.parse::<u32>().ok())
        .unwrap_or(1)
        .max(1);
    proptest::test_runner::Config::with_cases(n.saturating_mul(scale))
}
