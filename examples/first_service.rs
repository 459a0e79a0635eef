//! A service with a before hook: the README's first example.
//!
//! Run: `cargo run --example first_service`

#![allow(clippy::print_stdout)]

use plume::store::MemoryService;
use plume::{App, Error, HookContext, Hooks, Params, Result};
use serde::Deserialize;
use serde_json::json;

/// What a client sends to create a message (other fields are ignored
/// here and kept in the data).
#[derive(Deserialize)]
struct NewMessage {
    text: String,
}

/// A before hook is a plain async function over the context.
async fn require_text(ctx: &mut HookContext) -> Result<()> {
    // Typed access: 400 BadRequest naming the field when the data does
    // not fit (`{"text": 5}`, or no `text` at all).
    let message: NewMessage = ctx.data_as()?;
    if message.text.trim().is_empty() {
        return Err(Error::bad_request("A message needs a text"));
    }
    Ok(())
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
