//! The `handleConnection` cases of `packages/authentication/test/jwt.test.ts`
//! (the code under test: `@feathersjs/authentication`, `src/jwt.ts`):
//! logging a real-time connection in and out, in process, with a
//! [`Connection`] that records nothing it is sent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use plume::{App, Connection, Params, Provider};
use serde_json::{Value, json};

use super::support::{create_user, local_app, login};

fn connection() -> Connection {
    Connection::new(
        "c1",
        Provider::SocketIo,
        HashMap::new(),
        Arc::new(|_: &plume::Outgoing<'_>| plume::Delivery::Queued),
    )
}

fn params_with(connection: &Connection) -> Params {
    let mut params = Params::external(Provider::SocketIo);
    params.connection = Some(connection.clone());
    params
}

/// A user, a token and a connection logged in with it.
async fn logged_in(app: &App) -> (Connection, String, Value) {
    let user = create_user(app, "david@feathersjs.com", "supersecret").await;
    let token = login(app, "david@feathersjs.com", "supersecret")
        .await
        .unwrap()["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let connection = connection();
    app.service("authentication")
        .unwrap()
        .create(
            json!({"strategy": "jwt", "accessToken": token}),
            params_with(&connection),
        )
        .await
        .unwrap();
    (connection, token, user)
}

// "adds entity and authentication information on create" —
// `@feathersjs/authentication`, `test/jwt.test.ts`
#[tokio::test]
async fn adds_entity_and_authentication_information_on_create() {
    let app = local_app().await;
    let (connection, token, user) = logged_in(&app).await;
    let state = connection.state();
    assert_eq!(
        state.authentication,
        Some(json!({"strategy": "jwt", "accessToken": token}))
    );
    assert_eq!(state.entities["user"]["id"], user["id"]);
    assert!(state.expiry.is_some(), "a timer for the token's expiry");
}

// "login event connection has authentication information (#2908)" —
// `@feathersjs/authentication`, `test/jwt.test.ts`
#[tokio::test]
async fn login_event_connection_has_authentication_information_2908() {
    let app = local_app().await;
    let seen = Arc::new(Mutex::new(None));
    let sink = Arc::clone(&seen);
    app.on("login", move |_result, ctx| {
        let state = ctx.params.connection.as_ref().map(Connection::state);
        *sink.lock().unwrap() =
            state.map(|s| (s.authentication.is_some(), s.entities.contains_key("user")));
    });
    logged_in(&app).await;
    assert_eq!(*seen.lock().unwrap(), Some((true, true)));
}

// "sends disconnect event when connection token expires and removes all
// connection information" — `@feathersjs/authentication`, `test/jwt.test.ts`
#[tokio::test]
async fn sends_disconnect_event_when_connection_token_expires_and_removes_all_connection_information()
 {
    let app = local_app().await;
    let mut config = app.get("authentication").unwrap();
    config["jwtOptions"] = json!({"expiresIn": "1s"});
    app.set("authentication", config);
    let disconnected = Arc::new(Mutex::new(0));
    let sink = Arc::clone(&disconnected);
    app.on_disconnect(move |_| *sink.lock().unwrap() += 1);
    let (connection, _, _) = logged_in(&app).await;
    app.channel("authenticated").join(&connection);
    // `exp` has whole seconds: at most two from now. Bounded wait.
    for _ in 0..300 {
        if *disconnected.lock().unwrap() > 0 && connection.state().authentication.is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(*disconnected.lock().unwrap(), 1);
    let state = connection.state();
    assert!(state.authentication.is_none() && state.entities.is_empty());
    assert!(app.channel("authenticated").connections().is_empty());
}

// "deletes authentication information on remove" —
// `@feathersjs/authentication`, `test/jwt.test.ts`
#[tokio::test]
async fn deletes_authentication_information_on_remove() {
    let app = local_app().await;
    let (connection, token, _) = logged_in(&app).await;
    let mut params = params_with(&connection);
    params.authentication = Some(json!({"strategy": "jwt", "accessToken": token}));
    app.service("authentication")
        .unwrap()
        .remove(None, params)
        .await
        .unwrap();
    let state = connection.state();
    assert!(state.authentication.is_none() && state.entities.is_empty() && state.expiry.is_none());
}

// "deletes authentication information on disconnect but maintains it in
// event handler" — `@feathersjs/authentication`, `test/jwt.test.ts`
#[tokio::test]
async fn deletes_authentication_information_on_disconnect_but_maintains_it_in_event_handler() {
    let app = local_app().await;
    let seen = Arc::new(Mutex::new(None));
    let sink = Arc::clone(&seen);
    app.on_disconnect(move |connection| {
        *sink.lock().unwrap() = Some(connection.state().entities.contains_key("user"));
    });
    let (connection, _, _) = logged_in(&app).await;
    app.disconnected(&connection);
    assert_eq!(
        *seen.lock().unwrap(),
        Some(true),
        "listeners still see the user"
    );
    for _ in 0..100 {
        if connection.state().authentication.is_none() {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(connection.state().authentication.is_none());
}

// "does not remove if accessToken does not match" —
// `@feathersjs/authentication`, `test/jwt.test.ts`
#[tokio::test]
async fn does_not_remove_if_access_token_does_not_match() {
    let app = local_app().await;
    let (connection, token, _) = logged_in(&app).await;
    let other = login(&app, "david@feathersjs.com", "supersecret")
        .await
        .unwrap()["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(other, token);
    let mut params = params_with(&connection);
    params.authentication = Some(json!({"strategy": "jwt", "accessToken": other}));
    app.service("authentication")
        .unwrap()
        .remove(None, params)
        .await
        .unwrap();
    assert_eq!(
        connection.state().authentication,
        Some(json!({"strategy": "jwt", "accessToken": token}))
    );
}
