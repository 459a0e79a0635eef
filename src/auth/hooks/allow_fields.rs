//! Keeping clients from writing fields they must not (mass assignment):
//! `allow_fields` is the allow-list for what an external `create`,
//! `update` or `patch` may carry, and `preserve_on_update` keeps the
//! server-owned fields of a record through an `update`, which otherwise
//! replaces the whole record.

use serde_json::{Map, Value, json};

use crate::{BoxFuture, Error, Hook, HookContext, Method, Params, Result};

/// Refuses external data that carries a field outside an allow-list; see
/// [`allow_fields`].
#[derive(Debug, Clone)]
pub struct AllowFields {
    fields: Vec<String>,
}

/// `allow_fields(["email", "password"])`: an external `create`, `update`
/// or `patch` whose data (or any record of an array) has another top-level
/// field is 400 BadRequest naming the field, before anything is written.
/// The service's id field is ignored (the store decides what an id in the
/// data means). Internal calls are not restricted: server code and other
/// hooks may set any field.
///
/// ```
/// use plume::{App, Hooks, auth::hooks::allow_fields, store::MemoryService};
///
/// let app = App::new();
/// app.use_service("users", MemoryService::new())?
///     .hooks(Hooks::new().before(["create", "patch"], allow_fields(["email", "password"])));
/// # Ok::<(), plume::Error>(())
/// ```
pub fn allow_fields<I, S>(fields: I) -> AllowFields
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    AllowFields {
        fields: fields.into_iter().map(Into::into).collect(),
    }
}

impl AllowFields {
    fn check_record(&self, record: &Map<String, Value>, id_field: Option<&str>) -> Result<()> {
        for field in record.keys() {
            if Some(field.as_str()) == id_field || self.fields.iter().any(|f| f == field) {
                continue;
            }
            return Err(
                Error::bad_request(format!("The field '{field}' cannot be written"))
                    .with_data(json!({"field": field})),
            );
        }
        Ok(())
    }

    fn apply(&self, ctx: &HookContext) -> Result<()> {
        if !ctx.params.is_external() {
            return Ok(());
        }
        let id_field = ctx
            .app
            .service(&ctx.path)
            .ok()
            .and_then(|s| s.service().id_field().map(str::to_owned));
        match ctx.data.as_ref() {
            Some(Value::Object(record)) => self.check_record(record, id_field.as_deref()),
            Some(Value::Array(records)) => records
                .iter()
                .filter_map(Value::as_object)
                .try_for_each(|r| self.check_record(r, id_field.as_deref())),
            _ => Ok(()),
        }
    }
}

impl Hook<HookContext> for AllowFields {
    fn run<'a>(&'a self, ctx: &'a mut HookContext) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { self.apply(ctx) })
    }
}

/// Carries server-owned fields through an `update`; see
/// [`preserve_on_update`].
#[derive(Debug, Clone)]
pub struct PreserveOnUpdate {
    fields: Vec<String>,
}

/// `preserve_on_update(["role", "permissions"])`: before an external
/// `update` (which replaces the record), copies these fields from the
/// stored record into the data, so that a client replacing its record
/// cannot drop what only the server sets. The record is read with an
/// internal `get` restricted by the call's own query, so a record the
/// caller may not reach is 404 here as it would be in the update.
pub fn preserve_on_update<I, S>(fields: I) -> PreserveOnUpdate
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    PreserveOnUpdate {
        fields: fields.into_iter().map(Into::into).collect(),
    }
}

impl PreserveOnUpdate {
    async fn apply(&self, ctx: &mut HookContext) -> Result<()> {
        if ctx.method != Method::Update || !ctx.params.is_external() {
            return Ok(());
        }
        let Some(id) = ctx.id.clone() else {
            return Ok(());
        };
        if !matches!(ctx.data, Some(Value::Object(_))) {
            return Ok(());
        }
        let mut params = Params::with_query(Value::Object(without_filters(&ctx.params.query)));
        params.entities = ctx.params.entities.clone();
        let stored = ctx.app.service(&ctx.path)?.get(id, params).await?;
        if let Some(Value::Object(data)) = ctx.data.as_mut() {
            for field in &self.fields {
                data.remove(field);
                if let Some(value) = stored.get(field) {
                    data.insert(field.clone(), value.clone());
                }
            }
        }
        Ok(())
    }
}

/// The conditions of a query without `$select` and the other `$` filters,
/// so the read sees every field.
fn without_filters(query: &Map<String, Value>) -> Map<String, Value> {
    query
        .iter()
        .filter(|(key, _)| !key.starts_with('$') || key.as_str() == "$or" || key.as_str() == "$and")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

impl Hook<HookContext> for PreserveOnUpdate {
    fn run<'a>(&'a self, ctx: &'a mut HookContext) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.apply(ctx))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::MemoryService;
    use crate::{App, Provider};

    #[tokio::test]
    async fn unknown_fields_are_refused_for_external_calls_only() {
        let app = App::new();
        app.use_service("users", MemoryService::new()).unwrap();
        let hook = allow_fields(["email", "password"]);
        let mut ctx = HookContext::new(app, "users", Method::Create);
        ctx.params = Params::external(Provider::Rest);
        ctx.data = Some(json!({"email": "a@x", "password": "p", "id": 3}));
        hook.apply(&ctx).unwrap();
        ctx.data = Some(json!([{"email": "a@x"}, {"email": "b@x", "role": "admin"}]));
        let error = hook.apply(&ctx).unwrap_err();
        assert_eq!(error.code(), 400);
        assert_eq!(error.message(), "The field 'role' cannot be written");
        assert_eq!(error.data(), Some(&json!({"field": "role"})));
        ctx.params.provider = None;
        hook.apply(&ctx).unwrap();
    }

    #[tokio::test]
    async fn update_keeps_the_stored_server_fields() {
        let app = App::new();
        app.use_service("users", MemoryService::new()).unwrap();
        let users = app.service("users").unwrap();
        users
            .create(
                json!({"email": "a@x", "role": "admin", "permissions": ["*"]}),
                Params::new(),
            )
            .await
            .unwrap();
        let mut ctx = HookContext::new(app.clone(), "users", Method::Update);
        ctx.params = Params::external(Provider::Rest);
        ctx.id = Some(crate::Id::Number(0));
        ctx.data = Some(json!({"email": "b@x", "role": "user"}));
        preserve_on_update(["role", "permissions"])
            .apply(&mut ctx)
            .await
            .unwrap();
        assert_eq!(
            ctx.data,
            Some(json!({"email": "b@x", "role": "admin", "permissions": ["*"]}))
        );
        // Restricted by the call's own query: someone else's record is 404.
        ctx.params.query.insert("id".into(), json!(5));
        let error = preserve_on_update(["role"])
            .apply(&mut ctx)
            .await
            .unwrap_err();
        assert_eq!(error.code(), 404);
    }
}
