//! Store tests that need a process of their own.

mod durability;
