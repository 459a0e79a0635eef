//! Store tests over database files: a crash, and a migration.

mod durability;
mod migration;
