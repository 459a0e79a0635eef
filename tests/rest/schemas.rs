//! Schemas over real HTTP (issue 13, point 3): `validate_data` refuses data
//! that does not fit with Feathers' 400 `validation failed` and ajv-style
//! `data`; `validate_query` turns a URL query's strings into the declared
//! types before the store sees them, and refuses unknown fields.

use plume::schema::{Schema, validate_data, validate_query};
use plume::store::SqliteStore;
use plume::{App, HookContext, Hooks, Paginate, Result};
use schemars::JsonSchema;
use serde_json::{Value, json};

use crate::support::TestServer;

#[derive(JsonSchema)]
#[allow(dead_code)]
struct Person {
    #[schemars(length(min = 1, max = 50))]
    name: String,
    #[schemars(email)]
    email: String,
    age: u32,
}

#[derive(JsonSchema)]
#[allow(dead_code)]
struct PersonQuery {
    name: String,
    age: u32,
}

/// Puts the query the service saw into a page, for the test to read.
async fn show_query(ctx: &mut HookContext) -> Result<()> {
    let query = Value::Object(ctx.params.query.clone());
    if let Some(Value::Object(page)) = ctx.result.as_mut() {
        page.insert("query".to_owned(), query);
    }
    Ok(())
}

async fn people_server() -> TestServer {
    let store = SqliteStore::open(":memory:").await.unwrap();
    let app = App::new();
    let data = Schema::of::<Person>().unwrap();
    app.use_service(
        "people",
        store
            .service("people")
            .unwrap()
            .multi(true)
            .paginate(Paginate {
                default: 10,
                max: 50,
            }),
    )
    .unwrap()
    .hooks(
        Hooks::new()
            .before(["create", "update"], validate_data(data.clone()))
            .before("patch", validate_data(data.for_patch().unwrap()))
            .before(
                "find",
                validate_query(Schema::query_of::<PersonQuery>().unwrap()),
            )
            .after("find", show_query),
    );
    TestServer::start(app).await
}

#[tokio::test]
async fn data_that_does_not_fit_is_400_listing_each_error() {
    let server = people_server().await;
    let post = |body: Value| server.client.post(server.url("/people")).json(&body);
    let (status, created) = server
        .send(post(
            json!({"name": "Ada", "email": "ada@example.com", "age": 36}),
        ))
        .await;
    assert_eq!(status, 201, "{created}");

    let (status, error) = server
        .send(post(json!({"name": "", "email": "nope", "age": "old"})))
        .await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["name"], json!("BadRequest"));
    assert_eq!(error["message"], json!("validation failed"));
    let mut paths: Vec<&str> = error["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["instancePath"].as_str().unwrap())
        .collect();
    paths.sort_unstable();
    assert_eq!(paths, ["/age", "/email", "/name"], "{error}");
    for entry in error["data"].as_array().unwrap() {
        assert!(
            entry["message"].is_string() && entry["keyword"].is_string(),
            "{entry}"
        );
    }

    // Each record of an array, its index in front of the path.
    let (status, error) = server
        .send(post(json!([
            {"name": "Bo", "email": "bo@example.com", "age": 3},
            {"name": "Cy", "email": "cy@example.com"}
        ])))
        .await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["data"][0]["instancePath"], json!("/1"));
    assert_eq!(error["data"][0]["keyword"], json!("required"));

    // A patch needs no field, but what it carries must fit.
    let id = created["id"].clone();
    let patch = |body: Value| {
        server
            .client
            .patch(server.url(&format!("/people/{id}")))
            .json(&body)
    };
    let (status, patched) = server.send(patch(json!({"age": 37}))).await;
    assert_eq!(status, 200, "{patched}");
    let (status, error) = server.send(patch(json!({"email": "x"}))).await;
    assert_eq!(status, 400, "{error}");

    // Nothing invalid was stored.
    let (_, page) = server.send(server.client.get(server.url("/people"))).await;
    assert_eq!(page["total"], json!(1), "{page}");
}

#[tokio::test]
async fn a_url_query_is_converted_to_the_declared_types_and_checked() {
    let server = people_server().await;
    for (name, age) in [("Ada", 36), ("Bo", 3), ("Cy", 50)] {
        let (status, _) =
            server
                .send(server.client.post(server.url("/people")).json(
                    &json!({"name": name, "email": format!("{name}@example.com"), "age": age}),
                ))
                .await;
        assert_eq!(status, 201);
    }
    let get = |query: &str| server.client.get(server.url(&format!("/people?{query}")));
    let (status, page) = server.send(get("age[$gt]=5&$sort[age]=-1&$limit=5")).await;
    assert_eq!(status, 200, "{page}");
    let names: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Cy", "Ada"], "{page}");
    assert_eq!(page["limit"], json!(5));
    // The service saw numbers, not the URL's strings.
    assert_eq!(
        page["query"],
        json!({"age": {"$gt": 5}, "$sort": {"age": -1}, "$limit": 5}),
        "{page}"
    );

    for bad in [
        "email=ada@example.com",
        "age[$regex]=3",
        "age=old",
        "$sort[email]=1",
        "$limit=-1",
    ] {
        let (status, error) = server.send(get(bad)).await;
        assert_eq!(status, 400, "{bad}: {error}");
        assert_eq!(error["message"], json!("validation failed"), "{bad}");
    }
}

#[tokio::test]
async fn the_openapi_document_lists_routed_services_with_their_parameters_and_refs() {
    #[derive(JsonSchema)]
    #[allow(dead_code)]
    struct Item {
        name: String,
        tags: Vec<Tag>,
    }
    #[derive(JsonSchema)]
    #[allow(dead_code)]
    struct Tag {
        label: String,
    }
    let app = App::new();
    app.use_service(":org/items", plume::store::MemoryService::new())
        .unwrap()
        .docs(plume::schema::ServiceDocs::new().data(Schema::of::<Item>().unwrap()));
    let server = TestServer::start(app).await;
    let (status, doc) = server
        .send(server.client.get(server.url("/openapi.json")))
        .await;
    assert_eq!(status, 200, "{doc}");
    let post = &doc["paths"]["/{org}/items"]["post"];
    assert_eq!(post["parameters"][0]["name"], json!("org"), "{doc}");
    assert_eq!(post["parameters"][0]["in"], json!("path"));
    let get = &doc["paths"]["/{org}/items/{id}"]["get"];
    let names: Vec<&Value> = get["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["name"])
        .collect();
    assert_eq!(names, [&json!("org"), &json!("id")]);
    // The nested type went to the components, its reference rewritten.
    let data = &doc["components"]["schemas"]["OrgItemsData"];
    let tag_ref = data["properties"]["tags"]["items"]["$ref"]
        .as_str()
        .unwrap();
    assert_eq!(tag_ref, "#/components/schemas/OrgItemsData_Tag");
    assert!(doc.pointer(&tag_ref[1..]).is_some(), "{doc}");

    // Turned off, the path is an ordinary 404.
    let app = App::new();
    let off = TestServer::start_with(
        app,
        plume::transport::rest::RestOptions {
            openapi: false,
            ..Default::default()
        },
    )
    .await;
    let (status, _) = off.send(off.client.get(off.url("/openapi.json"))).await;
    assert_eq!(status, 404);
}
