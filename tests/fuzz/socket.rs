//! Event names and arguments over a real socket.io connection: every call
//! is answered (a result or a Feathers error below 500) and the connection
//! stays open.

use plume::store::MemoryService;
use plume::{App, Params};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};

use super::{cases, json_value, runtime, word};
use crate::support::TestServer;
use crate::support::socket::SocketClient;

/// An event name: usually a method, else anything that needs no JSON
/// escape. socketioxide reads the name as a borrowed string, so a name
/// with an escape (`\"`, `\\`, a control character) is dropped as an
/// invalid event name before Plume sees it: the call gets no answer, the
/// connection stays.
fn event() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(&["find", "get", "create", "update", "patch", "remove"][..])
            .prop_map(str::to_owned),
        1 => word().prop_map(|name| {
            name.chars()
                .filter(|c| !matches!(c, '"' | '\\') && !c.is_control())
                .collect()
        }),
    ]
}

/// Arguments: usually a known path first, then anything.
fn args() -> impl Strategy<Value = Vec<Value>> {
    (
        prop_oneof![
            3 => Just(json!("items")),
            1 => json_value(),
        ],
        prop::collection::vec(json_value(), 0..5),
    )
        .prop_map(|(path, mut rest)| {
            rest.insert(0, path);
            rest
        })
}

#[test]
fn socket_calls_with_any_arguments_are_answered() {
    let rt = runtime();
    let (server, client) = rt.block_on(async {
        let app = App::new();
        app.use_service("items", MemoryService::new()).unwrap();
        app.service("items")
            .unwrap()
            .create(json!({"id": 1, "name": "a"}), Params::new())
            .await
            .unwrap();
        app.setup().await.unwrap();
        let server = TestServer::start(app).await;
        let client = SocketClient::connect(&server.base, None, &[])
            .await
            .unwrap();
        (server, client)
    });
    let client = std::sync::Mutex::new(client);
    let mut runner = TestRunner::new(cases(192));
    runner
        .run(&(event(), args()), |(event, args)| {
            let mut client = client.lock().unwrap();
            let answer = rt.block_on(client.call(&event, args.clone()));
            if let Err(error) = answer {
                let code = error["code"].as_u64().unwrap_or(0);
                prop_assert!((400..500).contains(&code), "{event} {args:?}: {error}");
            }
            prop_assert!(!client.is_closed());
            Ok(())
        })
        .unwrap();
    rt.block_on(async {
        let mut client = client.into_inner().unwrap();
        let found = client.call("get", vec![json!("items"), json!(1)]).await;
        assert_eq!(found.unwrap()["name"], "a", "still answering");
        client.close().await;
        server.stop().await;
    });
}
