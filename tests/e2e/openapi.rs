//! The default app's OpenAPI document (issue 13, point 5): served at
//! `GET /openapi.json` without a token, an operation per method a client
//! may call, request bodies from the schemas the hooks check, the bearer
//! JWT scheme with sign-up and login public, and every reference
//! resolving inside the document.

use serde_json::{Value, json};

use super::support::server;

/// Every `$ref` in `value`.
fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(object) => {
            if let Some(Value::String(reference)) = object.get("$ref") {
                out.push(reference);
            }
            object.values().for_each(|v| refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_document_describes_every_route_and_its_schemas() {
    let server = server().await;
    let (status, doc) = server
        .send(server.client.get(server.url("/openapi.json")))
        .await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["openapi"], json!("3.1.0"));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearerAuth"],
        json!({"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    );
    assert_eq!(doc["security"], json!([{"bearerAuth": []}]));

    let paths = doc["paths"].as_object().unwrap();
    let verbs = |path: &str| -> Vec<String> {
        let mut verbs: Vec<String> = paths[path].as_object().unwrap().keys().cloned().collect();
        verbs.sort();
        verbs
    };
    assert_eq!(verbs("/messages"), ["get", "post"]);
    assert_eq!(verbs("/messages/{id}"), ["delete", "get", "patch", "put"]);
    assert_eq!(verbs("/users"), ["get", "post"]);
    // The authentication service takes create and remove only.
    assert_eq!(verbs("/authentication"), ["post"]);
    assert_eq!(verbs("/authentication/{id}"), ["delete"]);

    // Sign-up and login need no token; everything else inherits bearerAuth.
    assert_eq!(paths["/users"]["post"]["security"], json!([]));
    assert_eq!(paths["/authentication"]["post"]["security"], json!([]));
    assert_eq!(paths["/messages"]["post"].get("security"), None);

    // The message body is the schema the create hook checks.
    let body = &paths["/messages"]["post"]["requestBody"]["content"]["application/json"]["schema"];
    let name = body["$ref"].as_str().unwrap().rsplit('/').next().unwrap();
    let schema = &doc["components"]["schemas"][name];
    assert_eq!(schema["required"], json!(["text"]), "{schema}");
    assert_eq!(schema["properties"]["text"]["maxLength"], json!(10_000));
    assert_eq!(schema["additionalProperties"], json!(false));
    // Find answers a Feathers page of messages.
    let found =
        &paths["/messages"]["get"]["responses"]["200"]["content"]["application/json"]["schema"];
    assert_eq!(
        found["oneOf"][0]["required"],
        json!(["total", "limit", "skip", "data"])
    );

    // No reference points outside the document.
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for reference in all {
        let pointer = reference.strip_prefix('#').unwrap_or(reference);
        assert!(
            doc.pointer(pointer).is_some(),
            "{reference} does not resolve"
        );
    }
}
