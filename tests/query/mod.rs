//! Query language tests across stores: a table of cases and a property,
//! each run against the memory store and the SQLite store.

mod props;
mod stores;
mod suite;
