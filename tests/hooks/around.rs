//! Port of `packages/feathers/test/hooks/around.test.ts` ("`around` hooks").

use std::sync::Arc;

use plume::{
    App, Error, HookContext, HookType, Hooks, Id, Next, Params, Result, Service, around_fn,
};
use serde_json::json;

use super::support::{
    FnService, Numbered, assert_rejects, bag, bag_push, bag_set, data_obj, is_this, log, logged,
};

/// A service whose `get` must not run.
fn never_get() -> FnService {
    FnService::new().on("get", |_call| async move {
        Err(Error::general("This should never run"))
    })
}

// "around hooks can set hook.result which will skip service method" —
// `@feathersjs/feathers`, `test/hooks/around.test.ts`
#[tokio::test]
async fn around_hooks_can_set_hook_result_which_will_skip_service_method() {
    let app = App::new();
    let service = app.use_service("/dummy", never_get()).unwrap();
    service.hooks(Hooks::new().around(
        "get",
        async |ctx: &mut HookContext, next: Next<'_, HookContext>| {
            let id = ctx.id.as_ref().map(Id::to_value);
            ctx.result = Some(json!({"id": id, "message": "Set from hook"}));
            next.run(ctx).await
        },
    ));

    let data = service.get(10_i64, Params::new()).await.unwrap();
    assert_eq!(data, json!({"id": 10, "message": "Set from hook"}));
}

/// Around hook body: `context.result = {...context.result, <key>: <value>}`.
fn merge_result(ctx: &mut HookContext, key: &str, value: &str) {
    let result = ctx
        .result
        .as_mut()
        .and_then(serde_json::Value::as_object_mut)
        .expect("an earlier around hook set an object result");
    result.insert(key.to_owned(), json!(value));
}

async fn set_from_app_around_all(ctx: &mut HookContext, next: Next<'_, HookContext>) -> Result<()> {
    let id = ctx.id.as_ref().map(Id::to_value);
    ctx.result = Some(json!({"id": id, "app": "Set from app around all"}));
    next.run(ctx).await
}

async fn set_from_around_all(ctx: &mut HookContext, next: Next<'_, HookContext>) -> Result<()> {
    merge_result(ctx, "all", "Set from around all");
    next.run(ctx).await
}

async fn set_from_around_get(ctx: &mut HookContext, next: Next<'_, HookContext>) -> Result<()> {
    merge_result(ctx, "get", "Set from around get");
    next.run(ctx).await
}

// "works with traditional registration format, all syntax and app hooks" —
// `@feathersjs/feathers`, `test/hooks/around.test.ts`
#[tokio::test]
async fn works_with_traditional_registration_format_all_syntax_and_app_hooks() {
    let app = App::new();
    let service = app.use_service("/dummy", never_get()).unwrap();
    app.hooks(Hooks::new().around("all", set_from_app_around_all));
    service.hooks(
        Hooks::new()
            .around("all", set_from_around_all)
            .around("get", set_from_around_get),
    );

    let data = service.get(10_i64, Params::new()).await.unwrap();
    assert_eq!(
        data,
        json!({
            "id": 10,
            "app": "Set from app around all",
            "all": "Set from around all",
            "get": "Set from around get"
        })
    );
}

/// `create(data, params)` that checks it got the modified data and params,
/// then returns the data.
fn create_expecting(
    expected_data: serde_json::Value,
    expected_params: serde_json::Value,
) -> FnService {
    FnService::new().on("create", move |call| {
        let (expected_data, expected_params) = (expected_data.clone(), expected_params.clone());
        async move {
            assert_eq!(call.data(), expected_data, "Data modified");
            assert_eq!(call.params(), expected_params, "Params modified");
            Ok(call.data())
        }
    })
}

// "gets mixed into a service and modifies data" —
// `@feathersjs/feathers`, `test/hooks/around.test.ts`
#[tokio::test]
async fn gets_mixed_into_a_service_and_modifies_data() {
    let app = App::new();
    let service = app
        .use_service(
            "/dummy",
            create_expecting(
                json!({"some": "thing", "modified": "data"}),
                json!({"modified": "params"}),
            ),
        )
        .unwrap();
    service.hooks(Hooks::new().around(
        "create",
        async |ctx: &mut HookContext, next: Next<'_, HookContext>| {
            assert_eq!(ctx.hook_type, HookType::Around);
            data_obj(ctx).insert("modified".to_owned(), json!("data"));
            bag_set(&mut ctx.params, "modified", json!("params"));
            next.run(ctx).await
        },
    ));

    let data = service
        .create(json!({"some": "thing"}), Params::new())
        .await
        .unwrap();
    assert_eq!(
        data,
        json!({"some": "thing", "modified": "data"}),
        "Data got modified"
    );
}

// "contains the app object at hook.app" —
// `@feathersjs/feathers`, `test/hooks/around.test.ts`
#[tokio::test]
async fn contains_the_app_object_at_hook_app() {
    let app = App::new();
    let service = app
        .use_service(
            "/some-service",
            FnService::new().on("create", |call| async move { Ok(call.data()) }),
        )
        .unwrap();
    service.hooks(Hooks::new().around(
        "create",
        async |ctx: &mut HookContext, next: Next<'_, HookContext>| {
            // `context.app` is the app this service is registered in.
            let app_present = ctx.app.service(&ctx.path).is_ok();
            log(&ctx.app, "around create");
            data_obj(ctx).insert("appPresent".to_owned(), json!(app_present));
            next.run(ctx).await
        },
    ));

    let data = service
        .create(json!({"some": "thing"}), Params::new())
        .await
        .unwrap();
    assert_eq!(
        data,
        json!({"some": "thing", "appPresent": true}),
        "App object was present"
    );
    assert_eq!(logged(&app), ["around create"]);
}

// "passes errors" — `@feathersjs/feathers`, `test/hooks/around.test.ts`
#[tokio::test]
async fn passes_errors() {
    let app = App::new();
    let service = app
        .use_service(
            "/dummy",
            FnService::new().on("update", |_call| async move {
                Err(Error::general("Never should be called"))
            }),
        )
        .unwrap();
    service.hooks(Hooks::new().around(
        "update",
        async |_ctx: &mut HookContext, _next: Next<'_, HookContext>| {
            Err(Error::general("You are not allowed to update"))
        },
    ));

    let outcome = service
        .update(Some(Id::from(1_i64)), json!({}), Params::new())
        .await;
    assert_rejects(outcome, "You are not allowed to update");
}

// "does not run after hook when there is an error" —
// `@feathersjs/feathers`, `test/hooks/around.test.ts`
#[tokio::test]
async fn does_not_run_after_hook_when_there_is_an_error() {
    let app = App::new();
    let service = app
        .use_service(
            "/dummy",
            FnService::new().on("remove", |_call| async move {
                Err(Error::general("Error removing item"))
            }),
        )
        .unwrap();
    service.hooks(Hooks::new().around(
        "remove",
        async |ctx: &mut HookContext, next: Next<'_, HookContext>| {
            log(&ctx.app, "before next");
            next.run(ctx).await?;
            log(&ctx.app, "This should never get called");
            Ok(())
        },
    ));

    let outcome = service.remove(Some(Id::from(1_i64)), Params::new()).await;
    assert_rejects(outcome, "Error removing item");
    assert_eq!(logged(&app), ["before next"]);
}

// "adds .hooks() and chains multiple hooks for the same method" —
// `@feathersjs/feathers`, `test/hooks/around.test.ts`
#[tokio::test]
async fn adds_hooks_and_chains_multiple_hooks_for_the_same_method() {
    let app = App::new();
    let service = app
        .use_service(
            "dummy",
            create_expecting(
                json!({"some": "thing", "modified": "second data"}),
                json!({"modified": "params"}),
            ),
        )
        .unwrap();
    service.hooks(Hooks::new().around(
        "create",
        (
            async |ctx: &mut HookContext, next: Next<'_, HookContext>| {
                bag_set(&mut ctx.params, "modified", json!("params"));
                next.run(ctx).await
            },
            async |ctx: &mut HookContext, next: Next<'_, HookContext>| {
                data_obj(ctx).insert("modified".to_owned(), json!("second data"));
                next.run(ctx).await
            },
        ),
    ));

    let data = service
        .create(json!({"some": "thing"}), Params::new())
        .await
        .unwrap();
    assert_eq!(data, json!({"some": "thing", "modified": "second data"}));
}

/// `get` that checks the hooks built `params.items` in order.
fn get_expecting_items() -> FnService {
    FnService::new().on("get", |call| async move {
        assert_eq!(
            bag(&call.params).get("items"),
            Some(&json!(["first", "second", "third"]))
        );
        Ok(json!({"id": call.id(), "items": []}))
    })
}

// "around hooks run in the correct order" —
// `@feathersjs/feathers`, `test/hooks/around.test.ts`
#[tokio::test]
async fn around_hooks_run_in_the_correct_order() {
    let app = App::new();
    let service = app.use_service("dummy", get_expecting_items()).unwrap();
    service.hooks(Hooks::new().around(
        "get",
        async |ctx: &mut HookContext, next: Next<'_, HookContext>| {
            bag_set(&mut ctx.params, "items", json!(["first"]));
            next.run(ctx).await
        },
    ));
    service.hooks(Hooks::new().around(
        "get",
        (
            async |ctx: &mut HookContext, next: Next<'_, HookContext>| {
                bag_push(&mut ctx.params, "items", json!("second"));
                next.run(ctx).await
            },
            async |ctx: &mut HookContext, next: Next<'_, HookContext>| {
                bag_push(&mut ctx.params, "items", json!("third"));
                next.run(ctx).await
            },
        ),
    ));

    let data = service.get(10_i64, Params::new()).await.unwrap();
    assert_eq!(data, json!({"id": 10, "items": []}));
}

// "around all hooks (#11)" —
// `@feathersjs/feathers`, `test/hooks/around.test.ts`
#[tokio::test]
async fn around_all_hooks_11() {
    let check = |params: &Params| {
        let bag = bag(params);
        assert_eq!(bag.get("asyncAllObject"), Some(&json!(true)));
        assert_eq!(bag.get("asyncAllMethodArray"), Some(&json!(true)));
    };
    let app = App::new();
    let service = app
        .use_service(
            "dummy",
            FnService::new()
                .on("get", move |call| async move {
                    check(&call.params);
                    Ok(json!({"id": call.id(), "items": []}))
                })
                .on("find", move |call| async move {
                    check(&call.params);
                    Ok(json!([]))
                }),
        )
        .unwrap();
    // `service.hooks([ ... ])`: an array of around hooks is `around.all`.
    service.hooks(Hooks::new().around(
        "all",
        async |ctx: &mut HookContext, next: Next<'_, HookContext>| {
            bag_set(&mut ctx.params, "asyncAllObject", json!(true));
            next.run(ctx).await
        },
    ));
    service.hooks(Hooks::new().around(
        "all",
        around_fn(|ctx: &mut HookContext, next| {
            Box::pin(async move {
                bag_set(&mut ctx.params, "asyncAllMethodArray", json!(true));
                next.run(ctx).await
            })
        }),
    ));

    assert_eq!(service.find(Params::new()).await.unwrap(), json!([]));
    assert_eq!(
        service.get(1_i64, Params::new()).await.unwrap(),
        json!({"id": 1, "items": []})
    );
}

// "around hooks have service as context and keep it in service method (#17)" —
// `@feathersjs/feathers`, `test/hooks/around.test.ts`
#[tokio::test]
async fn around_hooks_have_service_as_context_and_keep_it_in_service_method_17() {
    let app = App::new();
    let dummy = Arc::new(Numbered { number: 42 });
    let registered: Arc<dyn Service> = dummy.clone();
    let service = app
        .use_arc_service("dummy", Arc::clone(&registered), Default::default())
        .unwrap();
    service.hooks(Hooks::new().around(
        "get",
        around_fn(move |ctx: &mut HookContext, next| {
            let (dummy, registered) = (Arc::clone(&dummy), Arc::clone(&registered));
            Box::pin(async move {
                // `this` is the service the call is on.
                assert!(is_this(ctx, &registered));
                bag_set(&mut ctx.params, "test", json!(dummy.number + 2));
                next.run(ctx).await
            })
        }),
    ));

    let data = service.get(10_i64, Params::new()).await.unwrap();
    assert_eq!(data, json!({"id": 10, "number": 42, "test": 44}));
}
