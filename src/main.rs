//! The `plume` binary: serves the default app, and small helpers.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use plume::config::{self, Config};
use plume::transport::rest::RestOptions;
use serde_json::Value;
use tracing_subscriber::EnvFilter;

// A server's allocation pattern (many small JSON values freed across
// threads, argon2's 19 MiB blocks) spends far less time in mimalloc than
// in glibc's malloc; the library leaves the choice to the binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A Feathers-style service runtime.
#[derive(Debug, Parser)]
#[command(name = "plume", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Folder with default.json, <PLUME_ENV>.json and
    /// custom-environment-variables.json.
    #[arg(long, global = true, default_value = "config")]
    config: PathBuf,
    /// Address to listen on (overrides the configuration's `host`).
    #[arg(long, global = true)]
    host: Option<String>,
    /// Port to listen on (overrides the configuration's `port`).
    #[arg(long, global = true)]
    port: Option<u16>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the default app (the default command).
    Serve,
    /// Print a new random secret for `authentication.secret` (64 bytes,
    /// base64).
    Secret,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let outcome = match cli.command {
        None | Some(Command::Serve) => serve(&cli).await,
        Some(Command::Secret) => config::generate_secret().map(|secret| {
            #[allow(clippy::print_stdout)]
            {
                println!("{secret}");
            }
        }),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{}", error.message());
            ExitCode::FAILURE
        }
    }
}

async fn serve(cli: &Cli) -> plume::Result<()> {
    let config = Config::load(&cli.config)?;
    config.check_secret("authentication")?;
    let host = match &cli.host {
        Some(host) => host.clone(),
        None => match config.get("host") {
            Some(Value::String(host)) => host.clone(),
            _ => "127.0.0.1".to_owned(),
        },
    };
    let port = match cli.port {
        Some(port) => port,
        None => match config.get("port") {
            None => 3030,
            Some(value) => value
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .ok_or_else(|| {
                    plume::Error::general(format!(
                        "port must be a number from 0 to 65535, not {value}"
                    ))
                })?,
        },
    };
    let mut options = RestOptions::default();
    if let Some(limit) = config.get("bodyLimit") {
        options.body_limit = limit
            .as_u64()
            .and_then(|l| usize::try_from(l).ok())
            .ok_or_else(|| {
                plume::Error::general(format!("bodyLimit must be a number of bytes, not {limit}"))
            })?;
    }
    if let Some(cors) = config.get("cors") {
        options.cors = Some(plume::transport::rest::cors_from_config(cors)?);
    }
    let addr: SocketAddr = format!("{host}:{port}")
        .parse()
        .map_err(|e| plume::Error::general(format!("cannot listen on '{host}:{port}': {e}")))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| plume::Error::general(format!("cannot listen on {addr}: {e}")))?;
    let app = plume::default_app::build(&config).await?;
    // Before the start-up line, so a signal right after it is handled.
    let shutdown = plume::server::shutdown_signal();
    tracing::info!(
        env = config.env(),
        "Plume listening on http://{}",
        listener.local_addr()?
    );
    plume::server::serve(app, listener, options, shutdown).await
}
