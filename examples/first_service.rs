//! A service whose data a schema checks, with a before hook: the README's
//! first example.
//!
//! Run: `cargo run --example first_service`

#![allow(clippy::print_stdout)]

use plume::schema::{Schema, validate_data};
use plume::schemars::JsonSchema;
use plume::serde::{Deserialize, Serialize};
use plume::serde_json::{self, json};
use plume::store::MemoryService;
use plume::{App, Error, HookContext, Hooks, Params, Result};

/// What a client sends to create a message. Its schema is derived from
/// the type: a text of 1 to 400 characters that is not blank, and no other
/// field. (Through plume's re-exports, the derives name their crate.)
#[derive(JsonSchema, Deserialize, Serialize)]
#[serde(crate = "plume::serde", deny_unknown_fields)]
#[schemars(crate = "plume::schemars")]
struct NewMessage {
    #[schemars(length(min = 1, max = 400), regex(pattern = r"\S"))]
    text: String,
}

/// A before hook is a plain async function over the context; this one
/// reads the data as its Rust type and writes it back.
async fn tidy(ctx: &mut HookContext) -> Result<()> {
    let mut message: NewMessage = ctx.data_as()?;
    message.text = message.text.trim().to_owned();
    ctx.set_data(&message)
}

#[tokio::main]
async fn main() -> Result<()> {
    let app = App::new();
    app.use_service("messages", MemoryService::new())?
        .hooks(Hooks::new().before("create", (validate_data(Schema::of::<NewMessage>()?), tidy)));

    let messages = app.service("messages")?;
    let created = messages
        .create(json!({"text": "  hello "}), Params::new())
        .await?;
    println!("{created}");

    let err = match messages.create(json!({"text": "  "}), Params::new()).await {
        Ok(unexpected) => return Err(Error::general(format!("accepted {unexpected}"))),
        Err(err) => err,
    };
    println!("{}", serde_json::to_string(&err)?);
    Ok(())
}
