//! What schemas and resolvers cost per call, on the memory store so that
//! the store costs little: `create` bare and with `validate_data` (a
//! message schema like the default app's), `find` bare and with
//! `validate_query` (a query schema of two fields, strings converted as
//! from a URL), `get` bare and with `resolve_result` (three fields, one
//! of them virtual), and `Schema::validate` alone.
//!
//! Run: `cargo bench --bench schema`

#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use plume::schema::{
    Resolver, Schema, query_syntax, resolve_result, validate_data, validate_query,
};
use plume::store::MemoryService;
use plume::{App, Hooks, Params};
use serde_json::{Map, Value, json};

fn message_schema() -> Schema {
    Schema::new(json!({
        "type": "object",
        "properties": {
            "text": {"type": "string", "minLength": 1, "maxLength": 10_000, "pattern": "\\S"},
            "userId": {},
            "id": {},
        },
        "required": ["text"],
        "additionalProperties": false,
    }))
    .unwrap()
}

fn query_schema() -> Schema {
    Schema::new(query_syntax(&json!({
        "userId": {"type": "integer"},
        "createdAt": {"type": "integer"},
    })))
    .unwrap()
}

fn hooks(add: impl FnOnce(&mut Hooks)) -> Option<Hooks> {
    let mut hooks = Hooks::new();
    add(&mut hooks);
    Some(hooks)
}

fn service(hooks: Option<Hooks>) -> App {
    let app = App::new();
    let svc = app.use_service("messages", MemoryService::new()).unwrap();
    if let Some(hooks) = hooks {
        svc.hooks(&hooks);
    }
    app
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let message = json!({"text": "hello, this is a message of ordinary length", "userId": 3});

    let mut group = c.benchmark_group("validate");
    let schema = message_schema();
    group.bench_function("Schema::validate (a valid message)", |b| {
        b.iter(|| schema.validate(std::hint::black_box(&message)).unwrap());
    });
    let bad = json!({"text": "   ", "extra": 1});
    group.bench_function("Schema::validate (an invalid message, two errors)", |b| {
        b.iter(|| schema.validate(std::hint::black_box(&bad)).unwrap_err());
    });
    group.finish();

    let mut group = c.benchmark_group("create on memory store");
    for (label, hooks) in [
        ("bare", None),
        (
            "with validate_data",
            hooks(|h| {
                h.before("create", validate_data(message_schema()));
            }),
        ),
    ] {
        let app = service(hooks);
        let svc = app.service("messages").unwrap();
        group.bench_function(label, |b| {
            b.to_async(&runtime)
                .iter(|| async { svc.create(message.clone(), Params::new()).await.unwrap() });
        });
    }
    group.finish();

    let mut group = c.benchmark_group("find on memory store (one record)");
    let mut query = Map::new();
    query.insert("userId".into(), json!("3"));
    query.insert("createdAt".into(), json!({"$gt": "5"}));
    query.insert("$limit".into(), json!("10"));
    for (label, hooks) in [
        ("bare", None),
        (
            "with validate_query",
            hooks(|h| {
                h.before("find", validate_query(query_schema()));
            }),
        ),
    ] {
        let app = service(hooks);
        let svc = app.service("messages").unwrap();
        runtime
            .block_on(svc.create(
                json!({"text": "x", "userId": 3, "createdAt": 9}),
                Params::new(),
            ))
            .unwrap();
        group.bench_function(label, |b| {
            b.to_async(&runtime).iter(|| async {
                let mut params = Params::new();
                params.query = query.clone();
                svc.find(params).await.unwrap()
            });
        });
    }
    group.finish();

    let mut group = c.benchmark_group("get on memory store");
    let resolver = Resolver::new()
        .omit("secret")
        .field("text", |value, _, _| async move {
            Ok(value.map(|t| Value::from(t.as_str().unwrap_or_default().trim())))
        })
        .virtual_field("length", |record, _| async move {
            Ok(record
                .get("text")
                .and_then(Value::as_str)
                .map(|t| json!(t.len())))
        });
    for (label, hooks) in [
        ("bare", None),
        (
            "with resolve_result (3 fields)",
            hooks(|h| {
                h.after("get", resolve_result(resolver.clone()));
            }),
        ),
    ] {
        let app = service(hooks);
        let svc = app.service("messages").unwrap();
        runtime
            .block_on(svc.create(json!({"text": " x ", "secret": 1}), Params::new()))
            .unwrap();
        group.bench_function(label, |b| {
            b.to_async(&runtime)
                .iter(|| async { svc.get(0, Params::new()).await.unwrap() });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
