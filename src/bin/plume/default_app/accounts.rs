//! What the default app's tokens carry and how accounts keep them honest:
//! the `role` and `permissions` claims signed from the user, the default
//! `role` claim, tokens revoked when those change, and ids only the server
//! assigns.

use async_trait::async_trait;
use serde_json::{Map, Value};

use plume::auth::token::subject_of;
use plume::auth::{AuthResult, AuthenticationOverrides, AuthenticationService};
use plume::{HookContext, Params, Result};

/// The Dove recipe: sign the user's `role` and `permissions` into the
/// token, over what the login hooks put into `params.payload`.
pub(super) struct ClaimsFromUser;

#[async_trait]
impl AuthenticationOverrides for ClaimsFromUser {
    async fn get_payload(
        &self,
        service: &AuthenticationService,
        auth_result: &AuthResult,
        params: &Params,
    ) -> Result<Map<String, Value>> {
        let mut payload = service.base_get_payload(auth_result, params).await?;
        if let Some(user) = auth_result.get("user") {
            for claim in ["permissions", "role"] {
                if let Some(value) = user.get(claim) {
                    payload.insert(claim.to_owned(), value.clone());
                }
            }
        }
        Ok(payload)
    }

    /// With stateless tokens (`entity: null`) Feathers sets no subject; the
    /// app still needs to know who a token belongs to, so the subject is
    /// the id of the user the local strategy found.
    async fn get_token_options(
        &self,
        service: &AuthenticationService,
        auth_result: &AuthResult,
        params: &Params,
    ) -> Result<Map<String, Value>> {
        let mut options = service.base_get_token_options(auth_result, params).await?;
        if !options.contains_key("subject")
            && let Some(subject) = auth_result
                .get("user")
                .and_then(|user| user.get("id"))
                .and_then(subject_of)
        {
            options.insert("subject".to_owned(), Value::String(subject));
        }
        Ok(options)
    }
}

/// `role` and `permissions` are signed into the user's tokens, so a change
/// of either (by an operator: clients cannot write them) revokes the tokens
/// that carry the old ones; the user logs in again and gets the new ones.
/// An external `update` carries the stored values through unchanged, so it
/// revokes nothing.
pub(super) async fn revoke_on_claim_change(ctx: &mut HookContext) -> Result<()> {
    if ctx.params.is_external() {
        return Ok(());
    }
    let changes_claims = ctx
        .data
        .as_ref()
        .is_some_and(|data| data.get("role").is_some() || data.get("permissions").is_some());
    if !changes_claims {
        return Ok(());
    }
    let Some(auth) = AuthenticationService::from_app(&ctx.app, None) else {
        return Ok(());
    };
    let records: Vec<&Value> = match ctx.result.as_ref() {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(record) => vec![record],
        None => Vec::new(),
    };
    for subject in records
        .into_iter()
        .filter_map(|r| r.get("id"))
        .filter_map(subject_of)
    {
        auth.revoke_subject(&subject).await?;
    }
    Ok(())
}

/// The Auk recipe: a before hook on `authentication.create` adds a claim.
pub(super) async fn default_role(ctx: &mut HookContext) -> Result<()> {
    ctx.params
        .payload
        .entry("role")
        .or_insert_with(|| Value::from("user"));
    Ok(())
}

/// Users never choose their id: an id that a client could pick could be
/// the id of a deleted account, whose unexpired tokens would then log in
/// as the newcomer. The store hands out ids that are never reused.
pub(super) async fn server_assigned_ids(ctx: &mut HookContext) -> Result<()> {
    if !ctx.params.is_external() {
        return Ok(());
    }
    match ctx.data.as_mut() {
        Some(Value::Object(record)) => {
            record.remove("id");
        }
        Some(Value::Array(records)) => {
            for record in records.iter_mut().filter_map(Value::as_object_mut) {
                record.remove("id");
            }
        }
        _ => {}
    }
    Ok(())
}
