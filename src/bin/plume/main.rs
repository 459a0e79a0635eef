//! The `plume` binary: serves the default app, and small helpers.

use std::path::PathBuf;
use std::process::ExitCode;

mod default_app;

use clap::{Parser, Subcommand};
use plume::config::{self, Config};
use plume::logging::{self, LogOptions};
use plume::transport::rest::{self, RestOptions};
use plume::{Id, Method, Params, ServiceHandle};
use serde_json::{Map, Value, json};

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
    /// Create or change a user of the default app in the configured
    /// database, also while the server runs.
    #[command(subcommand)]
    User(UserCommand),
}

/// `plume user ...`: internal calls of the `users` service, so its hooks
/// run (the password is hashed) and the access hooks, which only restrict
/// clients, do not stop them.
#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user and print it as a client would see it.
    Add {
        /// The login name.
        #[arg(long)]
        email: String,
        /// The password; `-` reads it from the first line of stdin (which,
        /// unlike arguments, other users cannot see in the process list).
        #[arg(long)]
        password: String,
        /// The user's `role`, signed into their tokens.
        #[arg(long)]
        role: Option<String>,
        /// An entry of the user's `permissions` (repeat for more), signed
        /// into their tokens.
        #[arg(long = "permission")]
        permissions: Vec<String>,
    },
    /// Set the role and/or the permissions of the user with this email
    /// (given permissions replace the old list) and print the user.
    Grant {
        /// The user's login name, exactly as stored.
        #[arg(long)]
        email: String,
        /// The new `role`.
        #[arg(long)]
        role: Option<String>,
        /// The new `permissions` (repeat for more).
        #[arg(long = "permission")]
        permissions: Vec<String>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // The configuration says how to log, so it is read first; `plume
    // secret` needs none (it runs anywhere). Errors found before logging
    // starts are logged once it has, in the default format if need be.
    let config = match cli.command {
        Some(Command::Secret) => None,
        _ => Some(Config::load(&cli.config)),
    };
    let log_options = match &config {
        Some(Ok(config)) => LogOptions::from_config(config),
        _ => Ok(LogOptions::default()),
    };
    let (log_options, log_error) = match log_options {
        Ok(options) => (options, None),
        Err(error) => (LogOptions::default(), Some(error)),
    };
    // Kept to the end of `main`: dropping it writes the queued lines.
    let _log_guard = match logging::init(&log_options) {
        Ok(guard) => guard,
        Err(error) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("{}", error.message());
            }
            return ExitCode::FAILURE;
        }
    };
    let outcome = match log_error {
        Some(error) => Err(error),
        None => run(&cli, config).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{}", error.message());
            ExitCode::FAILURE
        }
    }
}

/// Runs the command, with the configuration `main` loaded (`None` for
/// `plume secret`).
async fn run(cli: &Cli, config: Option<plume::Result<Config>>) -> plume::Result<()> {
    if let Some(Command::Secret) = cli.command {
        let secret = config::generate_secret()?;
        #[allow(clippy::print_stdout)]
        {
            println!("{secret}");
        }
        return Ok(());
    }
    let config = config.unwrap_or_else(|| Config::load(&cli.config))?;
    match cli.command {
        Some(Command::User(ref command)) => user(&config, command).await,
        _ => serve(cli, &config).await,
    }
}

async fn serve(cli: &Cli, config: &Config) -> plume::Result<()> {
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
    options.cors = rest::cors_of(config.get("cors"), config.get("origins"))?;
    options.public = public_folder(config)?;
    options.metrics = metrics_enabled(config)?;
    for warning in default_app::unused(config).warnings() {
        tracing::warn!("{warning}");
    }
    let listeners = plume::server::bind(&host, port).await?;
    let app = default_app::build(config).await?;
    // Before the start-up line, so a signal right after it is handled.
    let shutdown = plume::server::shutdown_signal();
    let addresses = listeners.local_addrs()?;
    for (index, address) in addresses.iter().enumerate() {
        if index == 0 {
            tracing::info!(env = config.env(), "Plume listening on http://{address}");
        } else {
            tracing::info!("Plume also listening on http://{address}");
        }
    }
    plume::server::serve_on(app, listeners, options, shutdown).await
}

/// `metrics.enabled` (`PLUME_METRICS`): whether `GET /metrics` is served
/// (default true).
fn metrics_enabled(config: &Config) -> plume::Result<bool> {
    match config.get("metrics") {
        None | Some(Value::Null) => Ok(true),
        Some(Value::Object(metrics)) => match metrics.get("enabled") {
            None | Some(Value::Null) => Ok(true),
            Some(Value::Bool(enabled)) => Ok(*enabled),
            Some(other) => Err(plume::Error::general(format!(
                "metrics.enabled (PLUME_METRICS) must be true or false, not {other}"
            ))),
        },
        Some(other) => Err(plume::Error::general(format!(
            "metrics must be an object such as {{\"enabled\": false}}, not {other}"
        ))),
    }
}

/// `public`: the folder served as static files after the services, when
/// it exists (a generated Feathers app has one; Plume's own configuration
/// names none). A folder that is named but missing is said once.
fn public_folder(config: &Config) -> plume::Result<Option<PathBuf>> {
    match config.get("public") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(folder)) => {
            let folder = PathBuf::from(folder);
            if folder.is_dir() {
                Ok(Some(folder))
            } else {
                tracing::warn!(
                    "public: the folder '{}' does not exist, so no static files are served",
                    folder.display()
                );
                Ok(None)
            }
        }
        Some(other) => Err(plume::Error::general(format!(
            "public must be the path of a folder, not {other}"
        ))),
    }
}

/// `plume user add` and `plume user grant` against the configured database
/// (SQLite in WAL mode lets them run beside the server; a running server
/// sees the change within `sqlite.recordCacheMs`).
async fn user(config: &Config, command: &UserCommand) -> plume::Result<()> {
    // `build` checks the secret (or makes one), as for `serve`.
    let app = default_app::build(config).await?;
    let users = app.service("users")?;
    let shown = match command {
        UserCommand::Add {
            email,
            password,
            role,
            permissions,
        } => {
            let password = if password == "-" {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                line.trim_end_matches(['\r', '\n']).to_owned()
            } else {
                password.clone()
            };
            let mut data = Map::new();
            data.insert("email".to_owned(), json!(email));
            data.insert("password".to_owned(), json!(password));
            set_access(&mut data, role.as_ref(), permissions);
            call(&users, Method::Create, None, Value::Object(data)).await?
        }
        UserCommand::Grant {
            email,
            role,
            permissions,
        } => {
            if role.is_none() && permissions.is_empty() {
                return Err(plume::Error::bad_request(
                    "Nothing to change: pass --role and/or --permission",
                ));
            }
            let id = user_id_by_email(&users, email).await?;
            let mut data = Map::new();
            set_access(&mut data, role.as_ref(), permissions);
            call(&users, Method::Patch, Some(id), Value::Object(data)).await?
        }
    };
    let text = serde_json::to_string_pretty(&shown).map_err(plume::Error::internal)?;
    #[allow(clippy::print_stdout)]
    {
        println!("{text}");
    }
    Ok(())
}

fn set_access(data: &mut Map<String, Value>, role: Option<&String>, permissions: &[String]) {
    if let Some(role) = role {
        data.insert("role".to_owned(), json!(role));
    }
    if !permissions.is_empty() {
        data.insert("permissions".to_owned(), json!(permissions));
    }
}

/// Runs an internal call and returns what a client would receive
/// (`dispatch`, from which `protect` removed the hash), without the
/// password field even if the app forgot to protect it.
async fn call(
    users: &ServiceHandle,
    method: Method,
    id: Option<Id>,
    data: Value,
) -> plume::Result<Value> {
    let mut ctx = users.context(method);
    ctx.id = id;
    ctx.data = Some(data);
    ctx.params = Params::new();
    users.run(&mut ctx).await?;
    let mut shown = ctx.response().cloned().unwrap_or(Value::Null);
    if let Some(user) = shown.as_object_mut() {
        user.remove("password");
    }
    Ok(shown)
}

/// The id of the one user whose `email` is `email` (an internal `find`,
/// paginated or not).
async fn user_id_by_email(users: &ServiceHandle, email: &str) -> plume::Result<Id> {
    let found = users
        .find(Params::with_query(json!({"email": email, "$limit": 2})))
        .await?;
    let records = match &found {
        Value::Array(records) => records.as_slice(),
        Value::Object(page) => page
            .get("data")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice),
        _ => &[],
    };
    let id_field = users.service().id_field().unwrap_or("id");
    match records {
        [user] => user
            .get(id_field)
            .map(Id::from_value)
            .transpose()?
            .flatten()
            .ok_or_else(|| plume::Error::general(format!("The user {email} has no id"))),
        [] => Err(plume::Error::not_found(format!(
            "No user has the email {email}"
        ))),
        _ => Err(plume::Error::conflict(format!(
            "Several users have the email {email}"
        ))),
    }
}
