//! Authentication: the [`AuthenticationService`] at `/authentication`, the
//! `jwt` and `local` strategies, and the hooks `authenticate`,
//! `hash_password` and `protect`, as Feathers' `@feathersjs/authentication`
//! and `@feathersjs/authentication-local`, stricter by default.
//!
//! # Layout
//!
//! - [`config`]: the configuration in Feathers' JSON layout, defaults,
//!   misplaced keys, timespans (`expiresIn`).
//! - [`token`]: signing and verifying JSON Web Tokens.
//! - [`service`]: [`AuthenticationService`] and [`AuthenticationOverrides`]
//!   (the custom-service route to payload customisation).
//! - [`strategy`]: the [`AuthenticationStrategy`] trait.
//! - [`jwt`], [`local`]: the two built-in strategies.
//! - [`password`]: argon2id hashing off the async workers.
//! - [`hooks`]: `authenticate`, `hash_password`, `protect`.
//! - [`revocation`]: revoked tokens (logout).
//! - [`secret`]: the generated secret, and the published ones refused.
//! - [`throttle`]: failed-login throttling.
//! - `crate::fields`: dotted paths into JSON.
//! - `connection`: logging real-time connections in and out, their
//!   expiry and revocation.
//! - `lifecycle`: what the service installs on its entity service: a
//!   password change or removal revokes the entity's tokens; password
//!   fields cannot be queried.
//!
//! # Flow of a login
//!
//! `create({strategy: "local", email, password})` runs the service's
//! before hooks (which may write `params.payload`), picks the strategy,
//! builds the payload ([`AuthenticationService::get_payload`]) and the
//! token options ([`AuthenticationService::get_token_options`]: subject =
//! the entity id) and signs; the result is
//! `{accessToken, authentication: {strategy, payload}, user}`.

pub mod config;
pub(crate) mod connection;
pub(crate) mod expiry;
pub mod hooks;
pub mod jwt;
mod lifecycle;
pub mod local;
pub mod password;
pub mod revocation;
pub mod secret;
pub mod service;
pub mod strategy;
pub mod throttle;
pub mod token;
mod verified;

pub use expiry::Expiry;
pub use hooks::{Authenticate, HashPassword, Protect, authenticate, hash_password, protect};
pub use jwt::{JwtOverrides, JwtStrategy};
pub use local::{LocalStrategy, PrehashedPassword};
pub use revocation::{MemoryRevocationList, RevocationList};
pub use service::{
    AuthCallOptions, AuthenticationOverrides, AuthenticationService, DEFAULT_AUTHENTICATION,
};
pub use strategy::{AuthResult, AuthenticationStrategy, StrategyContext};
pub use throttle::Throttle;
