//! Routing, verb mapping, params and responses (Feathers:
//! `@feathersjs/transport-commons`, `src/routing/router.ts` and `src/http.ts`;
//! `@feathersjs/express`, `src/rest.ts`; the shared REST tests of
//! `@feathersjs/tests`, `src/rest.ts`).

use async_trait::async_trait;
use plume::store::MemoryService;
use plume::{App, HookContext, Hooks, Id, Params, Result, Service, ServiceOptions};
use serde_json::{Value, json};

use crate::support::TestServer;

/// Answers every method with what it received, so tests can see the
/// arguments the transport built.
struct Mirror;

fn seen(method: &str, id: Option<&Id>, data: Option<&Value>, params: &Params) -> Value {
    let mut headers: Vec<(&String, &String)> = params
        .headers
        .iter()
        .filter(|(k, _)| k.starts_with("x-test"))
        .collect();
    headers.sort();
    json!({
        "method": method,
        "id": id.map(Id::to_value),
        "data": data,
        "query": params.query,
        "route": params.route,
        "provider": params.provider.map(|p| p.as_str()),
        "headers": headers.into_iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
        "clientAddr": params.extensions.get::<plume::ClientAddr>().map(|a| a.0.to_string()),
    })
}

#[async_trait]
impl Service for Mirror {
    async fn find(&self, params: &Params) -> Result<Value> {
        Ok(seen("find", None, None, params))
    }
    async fn get(&self, id: &Id, params: &Params) -> Result<Value> {
        if id.to_string() == "null" {
            return Ok(Value::Null);
        }
        Ok(seen("get", Some(id), None, params))
    }
    async fn create(&self, data: &Value, params: &Params) -> Result<Value> {
        Ok(seen("create", None, Some(data), params))
    }
    async fn update(&self, id: Option<&Id>, data: &Value, params: &Params) -> Result<Value> {
        Ok(seen("update", id, Some(data), params))
    }
    async fn patch(&self, id: Option<&Id>, data: &Value, params: &Params) -> Result<Value> {
        Ok(seen("patch", id, Some(data), params))
    }
    async fn remove(&self, id: Option<&Id>, params: &Params) -> Result<Value> {
        Ok(seen("remove", id, None, params))
    }
    async fn custom(&self, method: &str, data: &Value, params: &Params) -> Result<Value> {
        Ok(seen(method, None, Some(data), params))
    }
}

fn mirror_app() -> App {
    let app = App::new();
    let all = [
        "find", "get", "create", "update", "patch", "remove", "archive",
    ];
    app.use_service_with("mirror", Mirror, ServiceOptions::new().methods(all))
        .unwrap();
    app.use_service(":org/items", Mirror).unwrap();
    app.use_service("orgs/items", Mirror).unwrap();
    app.use_service_with("limited", Mirror, ServiceOptions::new().methods(["find"]))
        .unwrap();
    app
}

#[tokio::test]
async fn verbs_map_to_methods_with_their_arguments() {
    // `getServiceMethod` and `argumentsFor` (`@feathersjs/transport-commons`,
    // `src/http.ts`); statuses as in `@feathersjs/tests`, `src/rest.ts`.
    let server = TestServer::start(mirror_app()).await;
    let c = &server.client;
    let body = json!({"a": 1});

    let (status, out) = server.get("/mirror").await;
    assert_eq!(
        (status, out["method"].clone(), out["id"].clone()),
        (200, json!("find"), Value::Null)
    );

    let (status, out) = server.get("/mirror/7").await;
    assert_eq!(
        (status, out["method"].clone(), out["id"].clone()),
        (200, json!("get"), json!("7"))
    );

    // An id in the URL is ignored for create.
    let (status, out) = server.post("/mirror/abc", &body).await;
    assert_eq!(
        (status, out["method"].clone(), out["data"].clone()),
        (201, json!("create"), body.clone())
    );
    assert_eq!(out["id"], Value::Null);

    let (status, out) = server
        .send(c.put(server.url("/mirror/7")).json(&body))
        .await;
    assert_eq!(
        (status, out["method"].clone(), out["id"].clone()),
        (200, json!("update"), json!("7"))
    );
    let (status, out) = server.send(c.put(server.url("/mirror")).json(&body)).await;
    assert_eq!(
        (status, out["method"].clone(), out["id"].clone()),
        (200, json!("update"), Value::Null)
    );

    let (status, out) = server
        .send(c.patch(server.url("/mirror/7")).json(&body))
        .await;
    assert_eq!(
        (status, out["method"].clone(), out["data"].clone()),
        (200, json!("patch"), body.clone())
    );
    let (_, out) = server
        .send(c.patch(server.url("/mirror")).json(&body))
        .await;
    assert_eq!(out["id"], Value::Null);

    let (status, out) = server.send(c.delete(server.url("/mirror/7"))).await;
    assert_eq!(
        (status, out["method"].clone(), out["id"].clone()),
        (200, json!("remove"), json!("7"))
    );
    let (_, out) = server.send(c.delete(server.url("/mirror"))).await;
    assert_eq!(out["id"], Value::Null);

    let (status, out) = server
        .send(
            c.post(server.url("/mirror"))
                .header("X-Service-Method", "archive")
                .json(&body),
        )
        .await;
    assert_eq!(
        (status, out["method"].clone(), out["data"].clone()),
        (200, json!("archive"), body)
    );
    assert_eq!(out["provider"], json!("rest"));
}

#[tokio::test]
async fn head_is_get_without_a_body() {
    let server = TestServer::start(mirror_app()).await;
    let response = server
        .client
        .head(server.url("/mirror/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn trailing_slashes_and_route_placeholders() {
    // Routing (`@feathersjs/transport-commons`, `src/routing/router.ts`) and
    // `params.route` (`@feathersjs/express`, `src/rest.ts`): `/:org/items`
    // captures `org`; literal paths win.
    let server = TestServer::start(mirror_app()).await;
    let (_, out) = server.get("/mirror/").await;
    assert_eq!(out["method"], json!("find"));
    let (_, out) = server.get("/acme/items/3").await;
    assert_eq!(out["route"], json!({"org": "acme"}));
    assert_eq!(out["id"], json!("3"));
    let (_, out) = server.get("/orgs/items").await;
    assert_eq!(
        out["route"],
        json!({}),
        "the literal service wins over the placeholder"
    );
    let (status, _) = server.get("/mirror/a/b").await;
    assert_eq!(status, 404, "more segments than path + id match nothing");
}

#[tokio::test]
async fn ids_are_percent_decoded() {
    // Plume decodes ids (Feathers passes `a%20b%2Fc` raw:
    // `@feathersjs/transport-commons`, `src/routing/router.ts`).
    let server = TestServer::start(mirror_app()).await;
    let (_, out) = server.get("/mirror/a%20b%2Fc").await;
    assert_eq!(out["id"], json!("a b/c"));
}

#[tokio::test]
async fn queries_are_parsed_the_qs_way() {
    // `params.query` as Feathers builds it (`@feathersjs/express`,
    // `src/rest.ts`, with Express's `qs` parser): brackets nest,
    // percent-encoded brackets too, `[]` appends,
    // every value is a string.
    let server = TestServer::start(mirror_app()).await;
    let (_, out) = server
        .get(
            "/mirror?$limit=5&$sort[createdAt]=-1&name[$in][]=a&name[$in][]=b&%24skip=2&b%5Bc%5D=2",
        )
        .await;
    assert_eq!(
        out["query"],
        json!({"$limit": "5", "$sort": {"createdAt": "-1"}, "name": {"$in": ["a", "b"]}, "$skip": "2", "b": {"c": "2"}})
    );
    let (_, out) = server.get("/mirror?name[$in][0]=x&name[$in][1]=y").await;
    assert_eq!(out["query"], json!({"name": {"$in": ["x", "y"]}}));
}

#[tokio::test]
async fn headers_and_client_address_reach_params() {
    let server = TestServer::start(mirror_app()).await;
    let (_, out) = server
        .send(
            server
                .client
                .get(server.url("/mirror"))
                .header("X-Test-Thing", "yes"),
        )
        .await;
    assert_eq!(out["headers"], json!([["x-test-thing", "yes"]]));
    assert_eq!(out["clientAddr"], json!("127.0.0.1"));
}

#[tokio::test]
async fn empty_results_are_204_and_hooks_set_status_headers_location() {
    // Status and headers from `context.http` (`@feathersjs/transport-commons`,
    // `src/http.ts`).
    let app = mirror_app();
    app.service("mirror").unwrap().hooks(
        Hooks::new()
            .after("find", async |ctx: &mut HookContext| {
                if ctx.params.query.contains_key("accepted") {
                    ctx.http.status = Some(202);
                    ctx.http.headers.push(("x-extra".into(), "1".into()));
                }
                if ctx.params.query.contains_key("moved") {
                    ctx.http.location = Some("/somewhere else".into());
                }
                Ok(())
            })
            .after("create", async |ctx: &mut HookContext| {
                if ctx.data.as_ref().is_some_and(|d| d.get("empty").is_some()) {
                    ctx.result = Some(Value::Null);
                }
                Ok(())
            }),
    );
    let server = TestServer::start(app).await;

    let (status, body) = server.get("/mirror/null").await;
    assert_eq!((status, body), (204, Value::Null));
    let (status, body) = server.post("/mirror", &json!({"empty": true})).await;
    assert_eq!(
        (status, body),
        (204, Value::Null),
        "5.0.50: a falsy create body is 204"
    );

    let response = server
        .client
        .get(server.url("/mirror?accepted"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    assert_eq!(response.headers()["x-extra"], "1");

    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = no_redirect
        .get(server.url("/mirror?moved"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 303);
    assert_eq!(response.headers()["location"], "/somewhere%20else");
}

#[tokio::test]
async fn memory_store_round_trip_with_pagination() {
    let app = App::new();
    app.use_service(
        "notes",
        MemoryService::new().paginate(plume::Paginate { default: 2, max: 3 }),
    )
    .unwrap();
    let server = TestServer::start(app).await;
    for n in 0..5 {
        let (status, _) = server.post("/notes", &json!({"n": n})).await;
        assert_eq!(status, 201);
    }
    let (_, page) = server.get("/notes?n[$gte]=1&$sort[n]=-1&$limit=10").await;
    assert_eq!(page["total"], json!(4));
    assert_eq!(page["limit"], json!(3), "$limit is clamped to max");
    let ns: Vec<Value> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["n"].clone())
        .collect();
    assert_eq!(ns, [json!(4), json!(3), json!(2)]);
    let (_, page) = server.get("/notes?$limit=0").await;
    assert_eq!(page, json!({"total": 5, "limit": 0, "skip": 0, "data": []}));
}

#[tokio::test]
async fn graceful_stop_tears_the_app_down() {
    let app = mirror_app();
    let server = TestServer::start(app.clone()).await;
    let (status, _) = server.get("/mirror").await;
    assert_eq!(status, 200);
    assert!(app.is_set_up());
    server.stop().await;
    assert!(!app.is_set_up());
}

#[tokio::test]
async fn cors_allows_configured_origins_only() {
    let cors =
        plume::transport::rest::cors_from_config(&json!({"origins": ["https://app.example"]}))
            .unwrap();
    let options = plume::transport::rest::RestOptions {
        cors: Some(cors),
        ..Default::default()
    };
    let server = TestServer::start_with(mirror_app(), options).await;
    let preflight = server
        .client
        .request(reqwest::Method::OPTIONS, server.url("/mirror"))
        .header("Origin", "https://app.example")
        .header("Access-Control-Request-Method", "PATCH")
        .header(
            "Access-Control-Request-Headers",
            "authorization,content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let other = server
        .client
        .get(server.url("/mirror"))
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    assert!(
        plume::transport::rest::cors_from_config(&json!({"origins": "*", "credentials": true}))
            .is_err()
    );
    assert!(plume::transport::rest::cors_from_config(&json!({"origins": 5})).is_err());
}

#[tokio::test]
async fn the_root_service_serves_slash_and_slash_id() {
    // As `@feathersjs/transport-commons`, `src/routing/router.ts`: a service
    // at '/' answers `/` and `/:id`; other services
    // keep their own paths.
    let app = mirror_app();
    app.use_service("/", Mirror).unwrap();
    let server = TestServer::start(app).await;
    let (status, out) = server.get("/").await;
    assert_eq!((status, out["method"].clone()), (200, json!("find")));
    let (_, out) = server.get("/42").await;
    assert_eq!(
        (out["method"].clone(), out["id"].clone()),
        (json!("get"), json!("42"))
    );
    let (_, out) = server.get("/mirror").await;
    assert_eq!(
        (out["method"].clone(), out["id"].clone()),
        (json!("find"), Value::Null)
    );
}
