//! The built-in authentication hooks. They use only the public API that a
//! user's own hooks use.
//!
//! - [`authenticate`]: requires valid credentials for external calls.
//! - [`hash_password`]: replaces a password in the data by its hash.
//! - [`protect`]: removes fields (password hashes) from what callers see.

mod authenticate;
mod hash_password;
mod protect;

pub use authenticate::{Authenticate, authenticate};
pub use hash_password::{HashPassword, hash_password};
pub use protect::{Protect, protect};
