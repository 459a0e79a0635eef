//! The token lifecycle on the entity service: what the authentication
//! service installs on its entity service (`users`) when it is set up.
//!
//! - A password change (an `update` or `patch` whose data carries the
//!   local strategy's password field) revokes every token of that entity
//!   issued until then; so does removing the entity. Their real-time
//!   connections leave every channel at once.
//! - External queries on the password field are refused
//!   ([`protect_query`](super::hooks::protect_query)), whether or not the
//!   store was told to protect it.

use serde_json::Value;

use super::hooks::protect_query;
use super::local::PrehashedPassword;
use super::service::AuthenticationService;
use super::token::subject_of;
use crate::fields::get_path;
use crate::{BoxFuture, Hook, HookContext, Hooks, Method, Result};

/// Installs the lifecycle hooks on the entity service at `entity_path`.
pub(crate) fn install(
    service: &AuthenticationService,
    entity_path: &str,
    password_fields: Vec<String>,
    id_field: Option<String>,
) -> Result<()> {
    let Some(auth_path) = service.path() else {
        return Ok(());
    };
    let entity = service.app()?.service(entity_path)?;
    let revoke = RevokeTokens {
        auth_path,
        password_fields: password_fields.clone(),
        id_field,
    };
    let mut hooks = Hooks::new();
    hooks.after(["update", "patch", "remove"], revoke);
    if !password_fields.is_empty() {
        hooks.before("all", protect_query(password_fields));
    }
    entity.hooks(&hooks);
    Ok(())
}

/// After a password change or a removal, revokes the entity's tokens.
#[derive(Debug, Clone)]
struct RevokeTokens {
    auth_path: String,
    password_fields: Vec<String>,
    id_field: Option<String>,
}

impl RevokeTokens {
    fn changes_password(&self, ctx: &HookContext) -> bool {
        // The rehash after a login replaces the hash of the same password.
        if ctx.params.extensions.get::<PrehashedPassword>().is_some() {
            return false;
        }
        let Some(data) = ctx.data.as_ref() else {
            return false;
        };
        self.password_fields
            .iter()
            .any(|field| get_path(data, field).is_some())
    }

    /// The subjects (ids as token subjects) of the records in the result.
    fn subjects(&self, ctx: &HookContext) -> Vec<String> {
        let id_field = self.id_field.as_deref().unwrap_or("id");
        let records: Vec<&Value> = match ctx.result.as_ref() {
            Some(Value::Array(items)) => items.iter().collect(),
            Some(record @ Value::Object(_)) => vec![record],
            _ => Vec::new(),
        };
        records
            .into_iter()
            .filter_map(|record| record.get(id_field))
            .filter_map(subject_of)
            .collect()
    }

    async fn apply(&self, ctx: &mut HookContext) -> Result<()> {
        let relevant = match ctx.method {
            Method::Remove => true,
            Method::Update | Method::Patch => self.changes_password(ctx),
            _ => false,
        };
        if !relevant {
            return Ok(());
        }
        let Some(service) = AuthenticationService::from_app(&ctx.app, Some(&self.auth_path)) else {
            return Ok(());
        };
        for subject in self.subjects(ctx) {
            service.revoke_subject(&subject).await?;
        }
        Ok(())
    }
}

impl Hook<HookContext> for RevokeTokens {
    fn run<'a>(&'a self, ctx: &'a mut HookContext) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.apply(ctx))
    }
}
