//! Port of `packages/feathers/test/hooks/after.test.ts` ("`after` hooks").

use std::sync::Arc;

use plume::{App, Error, Hook, HookContext, HookType, Hooks, Id, Params, Service, hook_fn};
use serde_json::{Value, json};

use super::support::{
    Fail, FnService, Log, Numbered, assert_rejects, is_this, later, log, logged, result_obj,
};

/// `get(id)` answering `{id, description}` and `find` answering `[]`.
fn laundry() -> FnService {
    FnService::new()
        .on("get", |call| async move {
            let id = call.id();
            let description = format!("You have to do {}", id.as_str().unwrap_or_default());
            Ok(json!({"id": id, "description": description}))
        })
        .on("find", |_call| async move { Ok(json!([])) })
}

// ".after hooks can return a promise" —
// `@feathersjs/feathers`, `test/hooks/after.test.ts`
#[tokio::test]
async fn after_hooks_can_return_a_promise() {
    let app = App::new();
    let service = app.use_service("/dummy", laundry()).unwrap();
    service.hooks(
        Hooks::new()
            .after("get", async |ctx: &mut HookContext| {
                // Settles only after another task ran.
                let ran = later(true).await;
                result_obj(ctx).insert("ran".to_owned(), json!(ran));
                Ok(())
            })
            .after("find", async |_ctx: &mut HookContext| {
                Err(later(Error::general("You can not see this")).await)
            }),
    );

    let data = service.get("laundry", Params::new()).await.unwrap();
    assert_eq!(
        data,
        json!({"id": "laundry", "description": "You have to do laundry", "ran": true})
    );
    assert_rejects(service.find(Params::new()).await, "You can not see this");
}

// ".after hooks do not need to return anything" —
// `@feathersjs/feathers`, `test/hooks/after.test.ts`
#[tokio::test]
async fn after_hooks_do_not_need_to_return_anything() {
    let app = App::new();
    let service = app.use_service("/dummy", laundry()).unwrap();
    service.hooks(
        Hooks::new()
            .after("get", async |ctx: &mut HookContext| {
                result_obj(ctx).insert("ran".to_owned(), json!(true));
                Ok(())
            })
            .after("find", Fail("You can not see this")),
    );

    let data = service.get("laundry", Params::new()).await.unwrap();
    assert_eq!(
        data,
        json!({"id": "laundry", "description": "You have to do laundry", "ran": true})
    );
    assert_rejects(service.find(Params::new()).await, "You can not see this");
}

/// `create(data)` returning the data.
fn create_returns_data() -> FnService {
    FnService::new().on("create", |call| async move { Ok(call.data()) })
}

// "gets mixed into a service and modifies data" —
// `@feathersjs/feathers`, `test/hooks/after.test.ts`
#[tokio::test]
async fn gets_mixed_into_a_service_and_modifies_data() {
    let app = App::new();
    let service = app.use_service("/dummy", create_returns_data()).unwrap();
    service.hooks(Hooks::new().after("create", async |ctx: &mut HookContext| {
        assert_eq!(ctx.hook_type, HookType::After);
        result_obj(ctx).insert("some".to_owned(), json!("thing"));
        Ok(())
    }));

    let data = service
        .create(json!({"my": "data"}), Params::new())
        .await
        .unwrap();
    assert_eq!(
        data,
        json!({"my": "data", "some": "thing"}),
        "Got modified data"
    );
}

// "also makes the app available at hook.app" —
// `@feathersjs/feathers`, `test/hooks/after.test.ts`
#[tokio::test]
async fn also_makes_the_app_available_at_hook_app() {
    let app = App::new();
    let service = app.use_service("/dummy", create_returns_data()).unwrap();
    service.hooks(Hooks::new().after("create", async |ctx: &mut HookContext| {
        // `context.app` is the app this service is registered in.
        let app_present = ctx.app.service(&ctx.path).is_ok();
        log(&ctx.app, "after create");
        result_obj(ctx).insert("appPresent".to_owned(), json!(app_present));
        Ok(())
    }));

    let data = service
        .create(json!({"my": "data"}), Params::new())
        .await
        .unwrap();
    assert_eq!(
        data,
        json!({"my": "data", "appPresent": true}),
        "The app was present in the hook."
    );
    assert_eq!(logged(&app), ["after create"]);
}

// "returns errors" — `@feathersjs/feathers`, `test/hooks/after.test.ts`
#[tokio::test]
async fn returns_errors() {
    let app = App::new();
    let service = app
        .use_service(
            "/dummy",
            FnService::new().on("update", |call| async move { Ok(call.data()) }),
        )
        .unwrap();
    service.hooks(Hooks::new().after("update", Fail("This did not work")));

    let outcome = service
        .update(Some(Id::from(1_i64)), json!({"my": "data"}), Params::new())
        .await;
    assert_rejects(outcome, "This did not work");
}

// "does not run after hook when there is an error" —
// `@feathersjs/feathers`, `test/hooks/after.test.ts`
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
    service.hooks(Hooks::new().after("remove", Log("This should never get called")));

    let outcome = service.remove(Some(Id::from(1_i64)), Params::new()).await;
    assert_rejects(outcome, "Error removing item");
    assert!(logged(&app).is_empty(), "{:?}", logged(&app));
}

// "adds .after() and chains multiple hooks for the same method" —
// `@feathersjs/feathers`, `test/hooks/after.test.ts`
#[tokio::test]
async fn adds_after_and_chains_multiple_hooks_for_the_same_method() {
    let app = App::new();
    let service = app.use_service("/dummy", create_returns_data()).unwrap();
    service.hooks(Hooks::new().after("create", async |ctx: &mut HookContext| {
        result_obj(ctx).insert("some".to_owned(), json!("thing"));
        Ok(())
    }));
    service.hooks(Hooks::new().after("create", async |ctx: &mut HookContext| {
        result_obj(ctx).insert("other".to_owned(), json!("stuff"));
        Ok(())
    }));

    let data = service
        .create(json!({"my": "data"}), Params::new())
        .await
        .unwrap();
    assert_eq!(
        data,
        json!({"my": "data", "some": "thing", "other": "stuff"}),
        "Got modified data"
    );
}

// "chains multiple after hooks using array syntax" —
// `@feathersjs/feathers`, `test/hooks/after.test.ts`
#[tokio::test]
async fn chains_multiple_after_hooks_using_array_syntax() {
    let app = App::new();
    let service = app.use_service("/dummy", create_returns_data()).unwrap();
    let array: Vec<Arc<dyn Hook<HookContext>>> = vec![
        Arc::new(async |ctx: &mut HookContext| {
            result_obj(ctx).insert("some".to_owned(), json!("thing"));
            Ok(())
        }),
        Arc::new(async |ctx: &mut HookContext| {
            result_obj(ctx).insert("other".to_owned(), json!("stuff"));
            Ok(())
        }),
    ];
    service.hooks(Hooks::new().after("create", array));

    let data = service
        .create(json!({"my": "data"}), Params::new())
        .await
        .unwrap();
    assert_eq!(
        data,
        json!({"my": "data", "some": "thing", "other": "stuff"}),
        "Got modified data"
    );
}

/// An after hook: `context.result.items.push(item)`.
fn push_item(item: &'static str) -> impl Hook<HookContext> {
    hook_fn(move |ctx: &mut HookContext| {
        Box::pin(async move {
            result_obj(ctx)
                .get_mut("items")
                .and_then(Value::as_array_mut)
                .expect("result.items is an array")
                .push(json!(item));
            Ok(())
        })
    })
}

// ".after hooks run in the correct order (#13)" —
// `@feathersjs/feathers`, `test/hooks/after.test.ts`
#[tokio::test]
async fn after_hooks_run_in_the_correct_order_13() {
    let app = App::new();
    let service = app
        .use_service(
            "/dummy",
            FnService::new().on("get", |call| async move { Ok(json!({"id": call.id()})) }),
        )
        .unwrap();
    service.hooks(Hooks::new().after("get", async |ctx: &mut HookContext| {
        result_obj(ctx).insert("items".to_owned(), json!(["first"]));
        Ok(())
    }));
    service.hooks(Hooks::new().after("get", (push_item("second"), push_item("third"))));

    let data = service.get(10_i64, Params::new()).await.unwrap();
    assert_eq!(data["items"], json!(["first", "second", "third"]));
}

// "after all hooks (#11)" — `@feathersjs/feathers`, `test/hooks/after.test.ts`
#[tokio::test]
async fn after_all_hooks_11() {
    let app = App::new();
    let service = app
        .use_service(
            "/dummy",
            FnService::new()
                .on("get", |call| async move {
                    Ok(json!({"id": call.id(), "items": []}))
                })
                // Feathers puts the flags on an array; a JSON array has no
                // keys, so this `find` answers a (Feathers-style) page.
                .on("find", |_call| async move {
                    Ok(json!({"total": 0, "data": []}))
                }),
        )
        .unwrap();
    // `after: { all: hook }`
    service.hooks(Hooks::new().after("all", async |ctx: &mut HookContext| {
        result_obj(ctx).insert("afterAllObject".to_owned(), json!(true));
        Ok(())
    }));
    // `after: [hook]`: an array under a type is `all`.
    let array: Vec<Arc<dyn Hook<HookContext>>> = vec![Arc::new(async |ctx: &mut HookContext| {
        result_obj(ctx).insert("afterAllMethodArray".to_owned(), json!(true));
        Ok(())
    })];
    service.hooks(Hooks::new().after(plume::Methods::All, array));

    let data = service.find(Params::new()).await.unwrap();
    assert_eq!(data["afterAllObject"], json!(true));
    assert_eq!(data["afterAllMethodArray"], json!(true));

    let data = service.get(1_i64, Params::new()).await.unwrap();
    assert_eq!(data["afterAllObject"], json!(true));
    assert_eq!(data["afterAllMethodArray"], json!(true));
}

// "after hooks have service as context and keep it in service method (#17)" —
// `@feathersjs/feathers`, `test/hooks/after.test.ts`
#[tokio::test]
async fn after_hooks_have_service_as_context_and_keep_it_in_service_method_17() {
    let app = App::new();
    let dummy = Arc::new(Numbered { number: 42 });
    let registered: Arc<dyn Service> = dummy.clone();
    let service = app
        .use_arc_service("/dummy", Arc::clone(&registered), Default::default())
        .unwrap();
    service.hooks(Hooks::new().after(
        "get",
        hook_fn(move |ctx: &mut HookContext| {
            let (dummy, registered) = (Arc::clone(&dummy), Arc::clone(&registered));
            Box::pin(async move {
                // `this` is the service the call is on.
                assert!(is_this(ctx, &registered));
                result_obj(ctx).insert("test".to_owned(), json!(dummy.number + 1));
                Ok(())
            })
        }),
    ));

    let data = service.get(10_i64, Params::new()).await.unwrap();
    assert_eq!(data, json!({"id": 10, "number": 42, "test": 43}));
}

// ".after all and method specific hooks run in the correct order (#3002)" —
// `@feathersjs/feathers`, `test/hooks/after.test.ts`
#[tokio::test]
async fn after_all_and_method_specific_hooks_run_in_the_correct_order_3002() {
    let app = App::new();
    let service = app
        .use_service(
            "/dummy",
            FnService::new().on("get", |call| async move {
                Ok(json!({"id": call.id(), "items": []}))
            }),
        )
        .unwrap();
    // One registration, the method's hooks given before `all` on purpose:
    // `all` still runs first.
    service.hooks(
        Hooks::new()
            .after("get", (push_item("second"), push_item("third")))
            .after("all", push_item("first")),
    );

    let data = service.get(10_i64, Params::new()).await.unwrap();
    assert_eq!(data["items"], json!(["first", "second", "third"]));
}
