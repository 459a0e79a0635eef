//! The `plume` binary: serves the default app.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use plume::transport::rest::RestOptions;
use tracing_subscriber::EnvFilter;

/// A Feathers-style service runtime.
#[derive(Debug, Parser)]
#[command(name = "plume", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Address to listen on.
    #[arg(long, global = true, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on.
    #[arg(long, global = true, default_value_t = 3030)]
    port: u16,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the default app (the default command).
    Serve,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => match serve(&cli.host, cli.port).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                tracing::error!("{error}");
                ExitCode::FAILURE
            }
        },
    }
}

async fn serve(host: &str, port: u16) -> Result<(), String> {
    let addr: SocketAddr = format!("{host}:{port}")
        .parse()
        .map_err(|e| format!("invalid --host/--port '{host}:{port}': {e}"))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let app = plume::default_app::build().map_err(|e| e.to_string())?;
    tracing::info!("Plume listening on http://{addr}");
    plume::server::serve(
        app,
        listener,
        RestOptions::default(),
        plume::server::shutdown_signal(),
    )
    .await
    .map_err(|e| e.to_string())
}
