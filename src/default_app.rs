//! The app `cargo run --release` serves.
//!
//! Today it is a preview: a `messages` service on the memory store with the
//! validation hooks of the planned default app. Users, authentication and
//! SQLite come with their issues (see the README's status list).

use serde_json::Value;

use crate::config::Config;
use crate::store::MemoryService;
use crate::{App, Error, HookContext, Hooks, Paginate, Result};

/// Builds the default app from the configuration.
pub fn build(config: &Config) -> Result<App> {
    let app = App::new();
    config.apply_to(&app);
    app.use_service(
        "messages",
        MemoryService::new().paginate(Paginate {
            default: 10,
            max: 50,
        }),
    )?
    .hooks(
        Hooks::new()
            .before("create", (require_text, stamp_created_at))
            .error("create", tag_bad_request),
    );
    Ok(app)
}

/// `text` must be a non-blank string.
async fn require_text(ctx: &mut HookContext) -> Result<()> {
    let text = ctx
        .data
        .as_ref()
        .and_then(|d| d.get("text"))
        .and_then(Value::as_str);
    match text {
        Some(text) if !text.trim().is_empty() => Ok(()),
        _ => Err(Error::bad_request("Message text is required")),
    }
}

/// Sets `createdAt` to now, in milliseconds since the Unix epoch.
async fn stamp_created_at(ctx: &mut HookContext) -> Result<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    if let Some(data) = ctx.data.as_mut().and_then(Value::as_object_mut) {
        data.insert(
            "createdAt".to_owned(),
            Value::from(u64::try_from(now).unwrap_or(u64::MAX)),
        );
    }
    Ok(())
}

/// Marks BadRequest errors of `create` with where they came from.
async fn tag_bad_request(ctx: &mut HookContext) -> Result<()> {
    if let Some(error) = ctx.error.take() {
        let error = if error.kind() == crate::ErrorKind::BadRequest {
            error.with_data(serde_json::json!({"hook": "messages.error.create"}))
        } else {
            error
        };
        ctx.error = Some(error);
    }
    Ok(())
}
