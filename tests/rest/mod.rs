//! The REST transport over real HTTP: a server on 127.0.0.1 with an
//! ephemeral port, driven with reqwest (spec §4, S-REST-*).

mod errors;
mod routing;
mod schemas;
