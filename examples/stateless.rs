//! The default app with stateless tokens: `authentication.entity` is
//! `null`, so the jwt strategy trusts the verified payload and looks no
//! user up, while the local strategy keeps its own entity
//! (`authentication.local.entity`) to check passwords (the Feathers
//! cookbook setup). The token carries the user's `role` and `permissions`
//! (the default app's `get_payload`), and `sub` is the user's id.
//!
//! The drawback, as Feathers' docs say: a token stays valid until it
//! expires, whatever happens to the user meanwhile (logout still revokes
//! it).
//!
//! Serves the same routes as `cargo run --release`, with the same
//! configuration (`config/`, `PLUME_ENV`, `PORT`, `AUTH_SECRET`, ...):
//!
//! ```sh
//! cargo run --release --example stateless
//! ```

/// The app the `plume` binary serves, from the binary's own source (the
/// library does not ship it).
#[allow(dead_code, unused_imports, unreachable_pub)]
#[path = "../src/bin/plume/default_app/mod.rs"]
mod default_app;

use std::net::SocketAddr;
use std::path::Path;

use plume::config::{Config, merge};
use plume::transport::rest::RestOptions;
use plume::{Error, Result};
use serde_json::{Value, json};

/// The configuration in `config/` with stateless tokens switched on.
fn stateless_config() -> Result<Config> {
    let loaded = Config::load(Path::new("config"))?;
    let mut values = loaded.values().clone();
    let overrides = json!({"authentication": {
        "entity": null,
        "local": {"entity": "user", "service": "users"}
    }});
    if let Value::Object(overrides) = overrides {
        merge(&mut values, overrides);
    }
    Ok(Config::from_value(loaded.env(), values))
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let config = stateless_config()?;
    config.check_secret("authentication")?;
    let host = config
        .get("host")
        .and_then(Value::as_str)
        .unwrap_or("127.0.0.1");
    let port = config.get("port").and_then(Value::as_u64).unwrap_or(3030);
    let addr: SocketAddr = format!("{host}:{port}")
        .parse()
        .map_err(|e| Error::general(format!("cannot listen on '{host}:{port}': {e}")))?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let app = default_app::build(&config).await?;
    // Before the start-up line, so a signal right after it is handled.
    let shutdown = plume::server::shutdown_signal();
    tracing::info!(
        "Plume (stateless tokens) listening on http://{}",
        listener.local_addr()?
    );
    plume::server::serve(app, listener, RestOptions::default(), shutdown).await
}
