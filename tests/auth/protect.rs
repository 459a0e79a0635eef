//! Port of `packages/authentication-local/test/hooks/protect.test.ts`: the
//! seven cases run with the value in `context.result` and again with it in
//! `context.dispatch`.

use plume::{App, Hook, HookContext, Method, Provider, protect};
use serde::Serialize;
use serde_json::{Value, json};

fn context(method: Method, value: Option<Value>, in_dispatch: bool) -> HookContext {
    let mut ctx = HookContext::new(App::new(), "users", method);
    if in_dispatch {
        ctx.dispatch = value;
    } else {
        ctx.result = value;
    }
    ctx
}

async fn run(fields: &[&str], ctx: &mut HookContext) {
    Hook::run(&protect(fields.iter().copied()), ctx)
        .await
        .unwrap();
}

fn user() -> Value {
    json!({"email": "test@user.com", "password": "supersecret"})
}

// "does nothing when called with no result" —
// `@feathersjs/authentication-local`, `test/hooks/protect.test.ts`
#[tokio::test]
async fn does_nothing_when_called_with_no_result() {
    let mut ctx = context(Method::Get, None, false);
    run(&["password"], &mut ctx).await;
    assert_eq!(ctx.result, None);
    assert_eq!(ctx.dispatch, None);
}

async fn omits_from_object(in_dispatch: bool) {
    let mut ctx = context(Method::Get, Some(user()), in_dispatch);
    run(&["password"], &mut ctx).await;
    assert_eq!(ctx.dispatch, Some(json!({"email": "test@user.com"})));
    if !in_dispatch {
        // Internal calls keep their result (`@feathersjs/authentication-local`,
        // `src/hooks/protect.ts`).
        assert_eq!(ctx.result, Some(user()));
    }
}

async fn omits_from_nested_object(in_dispatch: bool) {
    let value = json!({"user": user(), "other": 1});
    let mut ctx = context(Method::Get, Some(value), in_dispatch);
    run(&["user.password"], &mut ctx).await;
    assert_eq!(
        ctx.dispatch,
        Some(json!({"user": {"email": "test@user.com"}, "other": 1}))
    );
}

async fn handles_data_property_only_for_find(in_dispatch: bool) {
    let value = json!({"data": user(), "password": "x"});
    let mut ctx = context(Method::Get, Some(value), in_dispatch);
    run(&["password"], &mut ctx).await;
    assert_eq!(ctx.dispatch, Some(json!({"data": user()})));
}

#[derive(Serialize)]
struct Account {
    email: &'static str,
    password: &'static str,
}

async fn uses_serialised_values(in_dispatch: bool) {
    let value = serde_json::to_value(Account {
        email: "test@user.com",
        password: "supersecret",
    })
    .unwrap();
    let mut ctx = context(Method::Get, Some(value), in_dispatch);
    run(&["password"], &mut ctx).await;
    assert_eq!(ctx.dispatch, Some(json!({"email": "test@user.com"})));
}

async fn omits_from_array_but_only_objects(in_dispatch: bool) {
    let value = json!([user(), ["a", "b"], "string", {"password": "x"}]);
    let mut ctx = context(Method::Find, Some(value), in_dispatch);
    run(&["password"], &mut ctx).await;
    assert_eq!(
        ctx.dispatch,
        Some(json!([{"email": "test@user.com"}, ["a", "b"], "string", {}]))
    );
}

async fn omits_from_pagination_object(in_dispatch: bool) {
    let value = json!({"total": 2, "limit": 10, "skip": 0, "data": [user(), user()]});
    let mut ctx = context(Method::Find, Some(value), in_dispatch);
    run(&["password"], &mut ctx).await;
    assert_eq!(
        ctx.dispatch,
        Some(json!({"total": 2, "limit": 10, "skip": 0,
                    "data": [{"email": "test@user.com"}, {"email": "test@user.com"}]}))
    );
}

async fn updates_result_if_provider_is_set(in_dispatch: bool) {
    let mut ctx = context(Method::Get, Some(user()), in_dispatch);
    ctx.params.provider = Some(Provider::Rest);
    run(&["password"], &mut ctx).await;
    assert_eq!(ctx.dispatch, Some(json!({"email": "test@user.com"})));
    assert_eq!(ctx.result, ctx.dispatch);
}

// "with hook.result › omits from object" —
// `@feathersjs/authentication-local`, `test/hooks/protect.test.ts`
#[tokio::test]
async fn result_omits_from_object() {
    omits_from_object(false).await;
}

// "with hook.result › omits from nested object" —
// `@feathersjs/authentication-local`, `test/hooks/protect.test.ts` (dotted
// path)
#[tokio::test]
async fn result_omits_from_nested_object() {
    omits_from_nested_object(false).await;
}

// "with hook.result › handles `data` property only for find" —
// `@feathersjs/authentication-local`, `test/hooks/protect.test.ts`
#[tokio::test]
async fn result_handles_data_property_only_for_find() {
    handles_data_property_only_for_find(false).await;
}

// "with hook.result › uses .toJSON (#48)" —
// `@feathersjs/authentication-local`, `test/hooks/protect.test.ts`. Rust values
// reach hooks already serialised (serde), which is what `toJSON` is for.
#[tokio::test]
async fn result_uses_serialised_values() {
    uses_serialised_values(false).await;
}

// "with hook.result › omits from array but only objects (#2053)" —
// `@feathersjs/authentication-local`, `test/hooks/protect.test.ts`
#[tokio::test]
async fn result_omits_from_array_but_only_objects() {
    omits_from_array_but_only_objects(false).await;
}

// "with hook.result › omits from pagination object" —
// `@feathersjs/authentication-local`, `test/hooks/protect.test.ts`
#[tokio::test]
async fn result_omits_from_pagination_object() {
    omits_from_pagination_object(false).await;
}

// "with hook.result › updates result if params.provider is set" —
// `@feathersjs/authentication-local`, `test/hooks/protect.test.ts`
#[tokio::test]
async fn result_updates_result_if_provider_is_set() {
    updates_result_if_provider_is_set(false).await;
}

// "with hook.dispatch already set › omits from object" —
// `@feathersjs/authentication-local`, `test/hooks/protect.test.ts`
#[tokio::test]
async fn dispatch_omits_from_object() {
    omits_from_object(true).await;
}

// "with hook.dispatch already set › omits from nested object" —
// `@feathersjs/authentication-local`, `test/hooks/protect.test.ts`
#[tokio::test]
async fn dispatch_omits_from_nested_object() {
    omits_from_nested_object(true).await;
}

// "with hook.dispatch already set › handles `data` property only for find" —
// `@feathersjs/authentication-local`, `test/hooks/protect.test.ts`
#[tokio::test]
async fn dispatch_handles_data_property_only_for_find() {
    handles_data_property_only_for_find(true).await;
}

// "with hook.dispatch already set › uses .toJSON (#48)" —
// `@feathersjs/authentication-local`, `test/hooks/protect.test.ts` (see above)
#[tokio::test]
async fn dispatch_uses_serialised_values() {
    uses_serialised_values(true).await;
}

// "with hook.dispatch already set › omits from array but only objects (#2053)" —
// `@feathersjs/authentication-local`, `test/hooks/protect.test.ts`
#[tokio::test]
async fn dispatch_omits_from_array_but_only_objects() {
    omits_from_array_but_only_objects(true).await;
}

// "with hook.dispatch already set › omits from pagination object" —
// `@feathersjs/authentication-local`, `test/hooks/protect.test.ts`
#[tokio::test]
async fn dispatch_omits_from_pagination_object() {
    omits_from_pagination_object(true).await;
}

// "with hook.dispatch already set › updates result if params.provider is set" —
// `@feathersjs/authentication-local`, `test/hooks/protect.test.ts`
#[tokio::test]
async fn dispatch_updates_result_if_provider_is_set() {
    updates_result_if_provider_is_set(true).await;
}

// Plume (DESIGN.md: hashes never leave, whatever the shape): through a
// real service, external find (page and plain) and get never show it.
#[tokio::test]
async fn protect_on_a_service_for_every_shape() {
    let app = super::support::local_app().await;
    super::support::create_user(&app, "a@x", "pw").await;
    let users = app.service("users").unwrap();
    let page = users
        .find(plume::Params::external(Provider::Rest))
        .await
        .unwrap();
    assert!(page["data"][0].get("password").is_none(), "{page}");
    let mut params = plume::Params::external(Provider::Rest);
    params.paginate = plume::PaginateParam::Disabled;
    let list = users.find(params).await.unwrap();
    assert!(list[0].get("password").is_none(), "{list}");
    let one = users
        .get(0, plume::Params::external(Provider::Rest))
        .await
        .unwrap();
    assert!(one.get("password").is_none());
    let created = users
        .create(
            json!({"email": "b@x", "password": "pw"}),
            plume::Params::external(Provider::Rest),
        )
        .await
        .unwrap();
    assert!(created.get("password").is_none());
}
