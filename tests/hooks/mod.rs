//! Ports of Feathers' `packages/feathers/test/hooks/*.test.ts`, one module per
//! file and one Rust test per `it(...)` case.

mod support;

mod after;
mod app;
mod around;
mod basics;
mod before;
mod error;
