//! Port of `packages/feathers/test/hooks/app.test.ts` ("app.hooks").

use plume::{
    App, Error, HookContext, Hooks, Id, Method, Next, Params, Result, ServiceHandle,
    ServiceOptions, hook_fn,
};
use serde_json::{Value, json};

use super::support::{FnService, Log, bag, bag_push, bag_set, log, logged, result_obj, run_ctx};

/// Feathers' `todos` service: `get` echoes `{id, params}` (and fails for
/// the id `error`), `create` and the custom method `custom` echo
/// `{data, params}`.
fn todos() -> (App, ServiceHandle) {
    let app = App::new();
    let service = FnService::new()
        .on("get", |call| async move {
            if call.id == Some(Id::from("error")) {
                return Err(Error::general("Something went wrong"));
            }
            Ok(json!({"id": call.id(), "params": call.params()}))
        })
        .on("create", |call| async move {
            Ok(json!({"data": call.data(), "params": call.params()}))
        })
        .on("custom", |call| async move {
            Ok(json!({"data": call.data(), "params": call.params()}))
        });
    let todos = app
        .use_service_with(
            "todos",
            service,
            ServiceOptions::new().methods(["get", "create", "custom"]),
        )
        .unwrap();
    (app, todos)
}

// "app has the .hooks method" —
// `@feathersjs/feathers`, `test/hooks/app.test.ts`
#[tokio::test]
async fn app_has_the_hooks_method() {
    let (app, todos) = todos();
    let returned = app.hooks(Hooks::new().before("all", Log("app.before")));
    assert!(std::ptr::eq(returned, &app), "app.hooks returns the app");
    todos.get("test", Params::new()).await.unwrap();
    assert_eq!(logged(&app), ["app.before"]);
}

async fn setup_1(ctx: &mut HookContext, next: Next<'_, HookContext>) -> Result<()> {
    log(&ctx.app, "setup 1");
    next.run(ctx).await
}

async fn setup_2(ctx: &mut HookContext, next: Next<'_, HookContext>) -> Result<()> {
    log(&ctx.app, "setup 2");
    assert!(!ctx.app.is_set_up());
    next.run(ctx).await?;
    assert!(ctx.app.is_set_up(), "next() ran the setup itself");
    log(&ctx.app, "setup after");
    Ok(())
}

async fn teardown_1(ctx: &mut HookContext, next: Next<'_, HookContext>) -> Result<()> {
    log(&ctx.app, "teardown 1");
    next.run(ctx).await
}

async fn teardown_2(ctx: &mut HookContext, next: Next<'_, HookContext>) -> Result<()> {
    log(&ctx.app, "teardown 2");
    next.run(ctx).await
}

// ".setup and .teardown special hooks" —
// `@feathersjs/feathers`, `test/hooks/app.test.ts`
#[tokio::test]
async fn setup_and_teardown_special_hooks() {
    let app = App::new();
    app.lifecycle_hooks(
        Hooks::new()
            .around("setup", (setup_1, setup_2))
            .around("teardown", (teardown_1, teardown_2)),
    );
    app.setup().await.unwrap();
    assert!(app.is_set_up());
    app.teardown().await.unwrap();
    assert!(!app.is_set_up());
    // Logged through `context.app`, read back through `app`: the same app.
    assert_eq!(
        logged(&app),
        [
            "setup 1",
            "setup 2",
            "setup after",
            "teardown 1",
            "teardown 2"
        ]
    );
}

/// `async (context, next) => { await next(); context.params.ran = true }`
async fn ran_after_next(ctx: &mut HookContext, next: Next<'_, HookContext>) -> Result<()> {
    log(&ctx.app, format!("around {}", ctx.method));
    next.run(ctx).await?;
    bag_set(&mut ctx.params, "ran", json!(true));
    Ok(())
}

// "basic app async hook, works with custom method" —
// `@feathersjs/feathers`, `test/hooks/app.test.ts`
#[tokio::test]
async fn basic_app_async_hook_works_with_custom_method() {
    let (app, todos) = todos();
    app.hooks(Hooks::new().around("all", ran_after_next));

    // In JavaScript the result holds the very params object, so the
    // `ran` set after `next()` shows up in it; in Rust the result is a
    // copy taken by the method, so the method saw no `ran` (it ran inside
    // the hook) and the caller's context has it afterwards.
    let id = Some(Id::from("test"));
    let (ctx, outcome) = run_ctx(&todos, Method::Get, id, None, Params::new()).await;
    outcome.unwrap();
    assert_eq!(ctx.result, Some(json!({"id": "test", "params": {}})));
    assert_eq!(bag(&ctx.params)["ran"], json!(true));

    let data = json!({"test": "hi"});
    for method in [Method::Create, Method::parse("custom")] {
        let (ctx, outcome) = run_ctx(&todos, method, None, Some(data.clone()), Params::new()).await;
        outcome.unwrap();
        assert_eq!(ctx.result, Some(json!({"data": data, "params": {}})));
        assert_eq!(bag(&ctx.params)["ran"], json!(true));
    }
    assert_eq!(
        logged(&app),
        ["around get", "around create", "around custom"]
    );
}

// "basic app async method hook" —
// `@feathersjs/feathers`, `test/hooks/app.test.ts`
#[tokio::test]
async fn basic_app_async_method_hook() {
    let (app, todos) = todos();
    app.hooks(Hooks::new().around("get", ran_after_next));

    let id = Some(Id::from("test"));
    let (ctx, outcome) = run_ctx(&todos, Method::Get, id, None, Params::new()).await;
    outcome.unwrap();
    assert_eq!(ctx.result, Some(json!({"id": "test", "params": {}})));
    assert_eq!(bag(&ctx.params)["ran"], json!(true));

    // Only `get` has the hook.
    let data = Some(json!({"test": "hi"}));
    let (ctx, outcome) = run_ctx(&todos, Method::Create, None, data, Params::new()).await;
    outcome.unwrap();
    assert!(bag(&ctx.params).is_empty());
    assert_eq!(logged(&app), ["around get"]);
}

// "basic app before hook, works with custom method" —
// `@feathersjs/feathers`, `test/hooks/app.test.ts`
#[tokio::test]
async fn basic_app_before_hook_works_with_custom_method() {
    let (app, todos) = todos();
    app.hooks(Hooks::new().before("all", async |ctx: &mut HookContext| {
        log(&ctx.app, format!("before {}", ctx.method));
        bag_set(&mut ctx.params, "ran", json!(true));
        Ok(())
    }));

    let result = todos.get("test", Params::new()).await.unwrap();
    assert_eq!(result, json!({"id": "test", "params": {"ran": true}}));

    let data = json!({"test": "hi"});
    let result = todos.create(data.clone(), Params::new()).await.unwrap();
    assert_eq!(result, json!({"data": data, "params": {"ran": true}}));

    let result = todos
        .custom("custom", data.clone(), Params::new())
        .await
        .unwrap();
    assert_eq!(result, json!({"data": data, "params": {"ran": true}}));
    assert_eq!(
        logged(&app),
        ["before get", "before create", "before custom"]
    );
}

/// A service before hook: `context.params.order.push(label)`.
fn push_order(label: &'static str) -> impl plume::Hook<HookContext> {
    hook_fn(move |ctx: &mut HookContext| {
        Box::pin(async move {
            log(&ctx.app, label);
            bag_push(&mut ctx.params, "order", json!(label));
            Ok(())
        })
    })
}

// "app before hooks always run first" —
// `@feathersjs/feathers`, `test/hooks/app.test.ts`
#[tokio::test]
async fn app_before_hooks_always_run_first() {
    let (app, todos) = todos();
    todos.hooks(Hooks::new().before("all", push_order("service.before")));
    todos.hooks(Hooks::new().before("all", push_order("service.before 1")));
    // Registered last, runs first; it creates `order`, so a service hook
    // running before it would fail on the missing array.
    app.hooks(Hooks::new().before("all", async |ctx: &mut HookContext| {
        log(&ctx.app, "app.before");
        bag_set(&mut ctx.params, "order", json!(["app.before"]));
        Ok(())
    }));

    let result = todos.get("test", Params::new()).await.unwrap();
    assert_eq!(
        result,
        json!({
            "id": "test",
            "params": {"order": ["app.before", "service.before", "service.before 1"]}
        })
    );
    assert_eq!(
        logged(&app),
        ["app.before", "service.before", "service.before 1"]
    );
}

// "basic app after hook" — `@feathersjs/feathers`, `test/hooks/app.test.ts`
#[tokio::test]
async fn basic_app_after_hook() {
    let (app, todos) = todos();
    app.hooks(Hooks::new().after("all", async |ctx: &mut HookContext| {
        log(&ctx.app, "app.after");
        result_obj(ctx).insert("ran".to_owned(), json!(true));
        Ok(())
    }));

    let result = todos.get("test", Params::new()).await.unwrap();
    assert_eq!(result, json!({"id": "test", "params": {}, "ran": true}));
    assert_eq!(logged(&app), ["app.after"]);
}

/// An after hook: `context.result.order.push(label)`.
fn push_result_order(label: &'static str) -> impl plume::Hook<HookContext> {
    hook_fn(move |ctx: &mut HookContext| {
        Box::pin(async move {
            log(&ctx.app, label);
            result_obj(ctx)
                .get_mut("order")
                .and_then(Value::as_array_mut)
                .expect("result.order is an array")
                .push(json!(label));
            Ok(())
        })
    })
}

// "app after hooks always run last" —
// `@feathersjs/feathers`, `test/hooks/app.test.ts`
#[tokio::test]
async fn app_after_hooks_always_run_last() {
    let (app, todos) = todos();
    // Registered first, runs last.
    app.hooks(Hooks::new().after("all", push_result_order("app.after")));
    todos.hooks(Hooks::new().after("all", async |ctx: &mut HookContext| {
        log(&ctx.app, "service.after");
        result_obj(ctx).insert("order".to_owned(), json!(["service.after"]));
        Ok(())
    }));
    todos.hooks(Hooks::new().after("all", push_result_order("service.after 1")));

    let result = todos.get("test", Params::new()).await.unwrap();
    assert_eq!(
        result,
        json!({
            "id": "test",
            "params": {},
            "order": ["service.after", "service.after 1", "app.after"]
        })
    );
    assert_eq!(
        logged(&app),
        ["service.after", "service.after 1", "app.after"]
    );
}

// "basic app error hook" — `@feathersjs/feathers`, `test/hooks/app.test.ts`
#[tokio::test]
async fn basic_app_error_hook() {
    let (app, todos) = todos();
    app.hooks(Hooks::new().error("all", async |ctx: &mut HookContext| {
        log(&ctx.app, "app.error");
        ctx.error = Some(Error::general("App hook ran"));
        Ok(())
    }));

    let error = todos.get("error", Params::new()).await.unwrap_err();
    assert_eq!(error.message(), "App hook ran");
    assert_eq!(logged(&app), ["app.error"]);
}

/// An error hook: `context.error = new Error(`${context.error.message} <suffix>`)`.
fn append_to_error(suffix: &'static str) -> impl plume::Hook<HookContext> {
    hook_fn(move |ctx: &mut HookContext| {
        Box::pin(async move {
            log(&ctx.app, suffix);
            let message = ctx.error.as_ref().expect("context.error").message();
            ctx.error = Some(Error::general(format!("{message} {suffix}")));
            Ok(())
        })
    })
}

// "app error hooks always run last" —
// `@feathersjs/feathers`, `test/hooks/app.test.ts`
#[tokio::test]
async fn app_error_hooks_always_run_last() {
    let (app, todos) = todos();
    // Registered first, runs last.
    app.hooks(Hooks::new().error("all", append_to_error("app.after")));
    todos.hooks(Hooks::new().error("all", append_to_error("service.after")));
    todos.hooks(Hooks::new().error("all", append_to_error("service.after 1")));

    let error = todos.get("error", Params::new()).await.unwrap_err();
    assert_eq!(
        error.message(),
        "Something went wrong service.after service.after 1 app.after"
    );
    assert_eq!(
        logged(&app),
        ["service.after", "service.after 1", "app.after"]
    );
}
