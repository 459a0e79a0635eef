//! Authentication tests: ports of Feathers' `packages/authentication/test/**`
//! and `packages/authentication-local/test/**`, one Rust test per
//! `it(...)` case, plus the attack battery and Plume's own rules.

mod support;

mod attacks;
mod connection;
mod core;
mod hash_password;
mod hooks;
mod jwt;
mod local;
mod plume;
mod protect;
mod resolvers;
mod service;
mod typed;
