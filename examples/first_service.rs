//! A service with a before hook: the README's first example.
//!
//! Run: `cargo run --example first_service`

#![allow(clippy::print_stdout)]

use plume::store::MemoryService;
use plume::{App, Error, HookContext, Hooks, Params, Result};
use serde_json::json;

/// A before hook is a plain async function over the context.
async fn require_text(ctx: &mut HookContext) -> Result<()> {
    let text = ctx
        .data
        .as_ref()
        .and_then(|d| d.get("text"))
        .and_then(|t| t.as_str());
    match text {
        Some(text) if !text.trim().is_empty() => Ok(()),
        _ => Err(Error::bad_request("A message needs a text")),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let app = App::new();
    app.use_service("messages", MemoryService::new())?
        .hooks(Hooks::new().before("create", require_text));

    let messages = app.service("messages")?;
    let created = messages
        .create(json!({"text": "hello"}), Params::new())
        .await?;
    println!("{created}");

    let err = match messages.create(json!({"text": "  "}), Params::new()).await {
        Ok(unexpected) => return Err(Error::general(format!("accepted {unexpected}"))),
        Err(err) => err,
    };
    println!("{}", serde_json::to_string(&err)?);
    Ok(())
}
