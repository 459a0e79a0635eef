//! Feathers' socket protocol: `emit(method, path, ...args, ack)` answered
//! with `ack(error)` or `ack(null, result)`, and bad input that gets an
//! error ack while the connection keeps working.

use plume::store::MemoryService;
use plume::{App, HookContext, Hooks, ServiceOptions};
use serde_json::{Value, json};

use crate::support::{SocketClient, TestServer};

fn app() -> App {
    let app = App::new();
    app.use_service_with(
        "notes",
        MemoryService::new(),
        ServiceOptions::new().methods([
            "find", "get", "create", "update", "patch", "remove", "archive",
        ]),
    )
    .unwrap();
    app.use_service_with(
        "readonly",
        MemoryService::new(),
        ServiceOptions::new().methods(["find"]),
    )
    .unwrap();
    // Shows what the transport put into params.
    app.service("notes").unwrap().hooks(
        Hooks::new()
            .before("create", async |ctx: &mut HookContext| {
                if let Some(data) = ctx.data.as_mut().and_then(Value::as_object_mut) {
                    let provider = ctx.params.provider.map(|p| p.as_str());
                    data.insert("provider".into(), json!(provider));
                    data.insert(
                        "viaConnection".into(),
                        json!(ctx.params.connection.is_some()),
                    );
                }
                Ok(())
            })
            .before("archive", async |ctx: &mut HookContext| {
                ctx.result = Some(json!({"archived": ctx.data.clone()}));
                Ok(())
            }),
    );
    app
}

fn assert_error(error: &Value, name: &str) {
    assert_eq!(error["name"], json!(name), "{error}");
    assert!(error["code"].is_number(), "{error}");
    assert!(error["className"].is_string(), "{error}");
}

#[tokio::test]
async fn every_method_over_the_socket() {
    let server = TestServer::start(app()).await;
    let mut socket = SocketClient::connect(&server.base, None, &[])
        .await
        .unwrap();

    let created = socket
        .call("create", vec![json!("notes"), json!({"text": "a"})])
        .await
        .unwrap();
    assert_eq!(
        created,
        json!({"text": "a", "provider": "socketio", "viaConnection": true, "id": 0})
    );
    socket
        .call(
            "create",
            vec![json!("notes"), json!({"text": "b"}), json!({})],
        )
        .await
        .unwrap();

    let found = socket
        .call("find", vec![json!("notes"), json!({"text": "b"})])
        .await
        .unwrap();
    assert_eq!(found.as_array().unwrap().len(), 1);
    let got = socket
        .call("get", vec![json!("notes"), json!(0)])
        .await
        .unwrap();
    assert_eq!(got["text"], json!("a"));
    let got = socket
        .call("get", vec![json!("notes"), json!("0"), json!({})])
        .await
        .unwrap();
    assert_eq!(got["text"], json!("a"), "string ids match numeric ids");
    let patched = socket
        .call(
            "patch",
            vec![json!("notes"), json!(0), json!({"text": "p"}), json!({})],
        )
        .await
        .unwrap();
    assert_eq!(patched["text"], json!("p"));
    let updated = socket
        .call(
            "update",
            vec![json!("notes"), json!(0), json!({"text": "u"})],
        )
        .await
        .unwrap();
    assert_eq!(updated, json!({"text": "u", "id": 0}));
    let archived = socket
        .call("archive", vec![json!("notes"), json!({"x": 1})])
        .await
        .unwrap();
    assert_eq!(archived, json!({"archived": {"x": 1}}));
    let removed = socket
        .call("remove", vec![json!("notes"), json!(0)])
        .await
        .unwrap();
    assert_eq!(removed["id"], json!(0));
    let error = socket
        .call("get", vec![json!("notes"), json!(0)])
        .await
        .unwrap_err();
    assert_error(&error, "NotFound");
    socket.close().await;
}

#[tokio::test]
async fn bad_input_gets_an_error_ack_and_the_connection_survives() {
    let server = TestServer::start(app()).await;
    let mut socket = SocketClient::connect(&server.base, None, &[])
        .await
        .unwrap();

    let cases: Vec<(&str, Vec<Value>, &str, &str)> = vec![
        ("find", vec![], "NotFound", "Invalid service path"),
        (
            "find",
            vec![json!({"toString": ""})],
            "NotFound",
            "Invalid service path",
        ),
        (
            "find",
            vec![json!(["notes"])],
            "NotFound",
            "Invalid service path",
        ),
        (
            "find",
            vec![json!("nowhere")],
            "NotFound",
            "Service 'nowhere' not found",
        ),
        (
            "find",
            vec![json!("toString")],
            "NotFound",
            "Service 'toString' not found",
        ),
        (
            "create",
            vec![json!("readonly"), json!({})],
            "MethodNotAllowed",
            "Method 'create' not allowed on service 'readonly'",
        ),
        (
            "setup",
            vec![json!("notes")],
            "MethodNotAllowed",
            "Method 'setup' not allowed on service 'notes'",
        ),
        (
            "find",
            vec![json!("notes"), json!({}), json!({})],
            "BadRequest",
            "Too many arguments for 'find' method",
        ),
        (
            "find",
            vec![json!("notes"), json!("text=a")],
            "BadRequest",
            "The query must be an object",
        ),
        (
            "get",
            vec![json!("notes"), json!({"$ne": 1})],
            "BadRequest",
            "Invalid id: expected a string or a number, got object",
        ),
        (
            "remove",
            vec![json!("notes"), json!({"toString": ""})],
            "BadRequest",
            "Invalid id: expected a string or a number, got object",
        ),
        (
            "find",
            vec![json!("notes"), json!({"$where": "1"})],
            "BadRequest",
            "Invalid filter value $where",
        ),
    ];
    for (method, args, name, message) in cases {
        let error = socket.call(method, args.clone()).await.unwrap_err();
        assert_error(&error, name);
        assert_eq!(error["message"], json!(message), "{method} {args:?}");
    }
    // Oversized arguments: 413, still connected.
    let big = json!({"text": "x".repeat(1024 * 1024 + 10)});
    let error = socket
        .call("create", vec![json!("notes"), big])
        .await
        .unwrap_err();
    assert_error(&error, "PayloadTooLarge");

    let ok = socket
        .call(
            "create",
            vec![json!("notes"), json!({"text": "still here"})],
        )
        .await
        .unwrap();
    assert_eq!(ok["text"], json!("still here"));
    assert!(!socket.is_closed());
    socket.close().await;
}

/// A service under `:org/items`, whose results show the `params.route`
/// each call ran with.
fn routed_app() -> App {
    let app = App::new();
    app.use_service(":org/items", MemoryService::new()).unwrap();
    app.service(":org/items").unwrap().hooks(Hooks::new().after(
        "all",
        async |ctx: &mut HookContext| {
            let route = Value::Object(ctx.params.route.clone());
            ctx.result = Some(json!({"route": route}));
            Ok(())
        },
    ));
    app
}

// Issue 12, point 1: both transports resolve paths through one route
// table, so socket.io reaches services with placeholders and sets
// `params.route` as REST does (Feathers' `app.lookup` in `runMethod`).
#[tokio::test]
async fn routed_services_are_reached_over_the_socket_with_their_route() {
    let server = TestServer::start(routed_app()).await;
    let mut socket = SocketClient::connect(&server.base, None, &[])
        .await
        .unwrap();

    let created = socket
        .call("create", vec![json!("acme/items"), json!({"name": "a"})])
        .await
        .unwrap();
    assert_eq!(created, json!({"route": {"org": "acme"}}));
    let found = socket
        .call("find", vec![json!("/other%20org/items/")])
        .await
        .unwrap();
    assert_eq!(found, json!({"route": {"org": "other org"}}));
    // An id belongs in the arguments, not in the path.
    let error = socket
        .call("get", vec![json!("acme/items/0")])
        .await
        .unwrap_err();
    assert_eq!(error["message"], json!("Service 'acme/items/0' not found"));

    let (status, body) = server.get("/acme/items").await;
    assert_eq!((status, body), (200, json!({"route": {"org": "acme"}})));
    socket.close().await;
}
