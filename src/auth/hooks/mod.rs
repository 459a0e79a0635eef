//! The built-in authentication and authorization hooks. They use only the
//! public API that a user's own hooks use.
//!
//! - [`authenticate`]: requires valid credentials for external calls.
//! - [`hash_password`]: replaces a password in the data by its hash.
//! - [`protect`]: removes fields (password hashes) from what callers see.
//! - [`protect_query`]: refuses external queries on fields (password
//!   hashes); installed on the entity service automatically.
//! - [`set_field`]: stamps the caller's id into the data (`create`) or
//!   restricts a call to the caller's records (`query.userId`), as
//!   feathers-authentication-hooks' `setField`.
//! - [`allow_fields`]: the fields an external `create`, `update` or
//!   `patch` may write (mass assignment); [`preserve_on_update`] keeps
//!   server-owned fields through an `update`.

mod allow_fields;
mod authenticate;
mod hash_password;
mod protect;
mod protect_query;
mod set_field;

pub use allow_fields::{AllowFields, PreserveOnUpdate, allow_fields, preserve_on_update};
pub use authenticate::{Authenticate, authenticate};
pub use hash_password::{HashPassword, hash_password};
pub use protect::{Protect, protect};
pub use protect_query::{ProtectQuery, protect_query};
pub use set_field::{SetField, set_field};
