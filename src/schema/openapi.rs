//! An OpenAPI 3.1 document of an app, as feathers-swagger builds one for
//! Feathers: a path per service (`/messages`, and `/messages/{id}` for the
//! methods on one record), an operation per method a transport may call,
//! request and response schemas from the service's [`ServiceDocs`], the
//! bearer JWT security scheme, and Feathers' page and error shapes. The
//! REST transport serves it at `GET /openapi.json`.
//!
//! A service without docs is still listed, with schemas that admit any
//! JSON. Schemas go to `components.schemas` (their `$defs` too, with their
//! references rewritten), so the document has no reference that does not
//! resolve in it.

use serde_json::{Map, Value, json};

use super::Schema;
use crate::{App, Method};

/// What the OpenAPI document says of a service beyond its path and
/// methods; register it with [`ServiceHandle::docs`](crate::ServiceHandle::docs).
///
/// ```
/// use plume::schema::{Schema, ServiceDocs};
/// use plume::{App, Method, store::MemoryService};
/// use serde_json::json;
///
/// let data = Schema::new(json!({"type": "object", "properties": {"text": {"type": "string"}}}))?;
/// let app = App::new();
/// app.use_service("messages", MemoryService::new())?
///     .docs(ServiceDocs::new().data(data.clone()).patch(data.for_patch()?).result(data));
/// # Ok::<(), plume::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct ServiceDocs {
    description: Option<String>,
    data: Option<Schema>,
    patch: Option<Schema>,
    query: Option<Schema>,
    result: Option<Schema>,
    public: Vec<Method>,
}

impl ServiceDocs {
    /// Docs without schemas: every body and result is any JSON.
    pub fn new() -> Self {
        Self::default()
    }

    /// A sentence about the service.
    #[must_use]
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = Some(text.into());
        self
    }

    /// The body of `create` and `update`.
    #[must_use]
    pub fn data(mut self, schema: Schema) -> Self {
        self.data = Some(schema);
        self
    }

    /// The body of `patch` (the data schema when not given).
    #[must_use]
    pub fn patch(mut self, schema: Schema) -> Self {
        self.patch = Some(schema);
        self
    }

    /// The query of `find`.
    #[must_use]
    pub fn query(mut self, schema: Schema) -> Self {
        self.query = Some(schema);
        self
    }

    /// One record as the service answers it.
    #[must_use]
    pub fn result(mut self, schema: Schema) -> Self {
        self.result = Some(schema);
        self
    }

    /// Methods a client may call without a token (sign-up's `create`).
    #[must_use]
    pub fn public<I: IntoIterator<Item = Method>>(mut self, methods: I) -> Self {
        self.public.extend(methods);
        self
    }
}

/// The OpenAPI 3.1 document of `app` (see the [`schema`](crate::schema) module docs).
pub fn document(app: &App) -> Value {
    let mut paths = Map::new();
    let mut components = Components::default();
    components
        .schemas
        .insert("Error".to_owned(), error_schema());
    for path in app.service_paths() {
        let Ok(service) = app.service(&path) else {
            continue;
        };
        let docs = service.service_docs().unwrap_or_default();
        let name = component_name(&path);
        let any = json!({});
        let schema_of = |components: &mut Components, kind: &str, schema: Option<&Schema>| {
            schema.map_or(any.clone(), |s| components.add(&format!("{name}{kind}"), s))
        };
        let data = schema_of(&mut components, "Data", docs.data.as_ref());
        let patch = match docs.patch.as_ref() {
            Some(patch) => components.add(&format!("{name}Patch"), patch),
            None => data.clone(),
        };
        let query = schema_of(&mut components, "Query", docs.query.as_ref());
        let result = schema_of(&mut components, "", docs.result.as_ref());

        let (collection, parameters) = openapi_path(&path);
        let mut id_parameters = parameters.clone();
        id_parameters.push(json!({
            "name": "id", "in": "path", "required": true,
            "schema": {"type": ["string", "integer"]},
        }));
        let page = json!({
            "type": "object",
            "properties": {
                "total": {"type": "integer"},
                "limit": {"type": "integer"},
                "skip": {"type": "integer"},
                "data": {"type": "array", "items": result},
            },
            "required": ["total", "limit", "skip", "data"],
        });
        let operation = |method: Method,
                         summary: &str,
                         body: Option<&Value>,
                         status: &str,
                         answer: Value| {
            let mut op = json!({
                "tags": [path],
                "summary": summary,
                "operationId": format!("{}_{}", name, method.as_str()),
                "responses": {
                    status: {"description": "Success", "content": json_content(answer)},
                    "default": {"description": "A Feathers error", "content": json_content(json!({"$ref": "#/components/schemas/Error"}))},
                },
            });
            if let Some(body) = body {
                op["requestBody"] =
                    json!({"required": true, "content": json_content(body.clone())});
            }
            if docs.public.contains(&method) {
                op["security"] = json!([]);
            }
            op
        };
        let mut on_collection = Map::new();
        let mut on_record = Map::new();
        let allows = |method: &Method| service.allows_external(method);
        if allows(&Method::Find) {
            let mut op = operation(
                Method::Find,
                "Find records",
                None,
                "200",
                json!({"oneOf": [page, {"type": "array", "items": result}]}),
            );
            let mut params = parameters.clone();
            params.push(json!({
                "name": "query", "in": "query", "style": "deepObject", "explode": true,
                "schema": query,
            }));
            op["parameters"] = Value::Array(params);
            on_collection.insert("get".to_owned(), op);
        }
        if allows(&Method::Create) {
            let mut op = operation(
                Method::Create,
                "Create a record",
                Some(&data),
                "201",
                result.clone(),
            );
            if !parameters.is_empty() {
                op["parameters"] = Value::Array(parameters.clone());
            }
            on_collection.insert("post".to_owned(), op);
        }
        for (method, verb, summary, body) in [
            (Method::Get, "get", "Get a record", None),
            (Method::Update, "put", "Replace a record", Some(&data)),
            (
                Method::Patch,
                "patch",
                "Change fields of a record",
                Some(&patch),
            ),
            (Method::Remove, "delete", "Remove a record", None),
        ] {
            if allows(&method) {
                let mut op = operation(method, summary, body, "200", result.clone());
                op["parameters"] = Value::Array(id_parameters.clone());
                on_record.insert(verb.to_owned(), op);
            }
        }
        if let Some(description) = &docs.description {
            for op in on_collection.values_mut().chain(on_record.values_mut()) {
                op["description"] = json!(description);
            }
        }
        if !on_collection.is_empty() {
            paths.insert(collection.clone(), Value::Object(on_collection));
        }
        if !on_record.is_empty() {
            paths.insert(format!("{collection}/{{id}}"), Value::Object(on_record));
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Plume app", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {
            "schemas": components.schemas,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            },
        },
        "security": [{"bearerAuth": []}],
    })
}

fn json_content(schema: Value) -> Value {
    let mut media = Map::new();
    media.insert("schema".to_owned(), schema);
    let mut content = Map::new();
    content.insert("application/json".to_owned(), Value::Object(media));
    Value::Object(content)
}

/// Feathers' error JSON.
fn error_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "message": {"type": "string"},
            "code": {"type": "integer"},
            "className": {"type": "string"},
            "data": {},
            "errors": {},
        },
        "required": ["name", "message", "code", "className"],
    })
}

/// The OpenAPI path of a service path (`:org/items` is `/{org}/items`)
/// and its path parameters.
fn openapi_path(path: &str) -> (String, Vec<Value>) {
    let mut out = String::new();
    let mut parameters = Vec::new();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        out.push('/');
        match segment.strip_prefix(':') {
            Some(name) => {
                out.push_str(&format!("{{{name}}}"));
                parameters.push(json!({
                    "name": name, "in": "path", "required": true, "schema": {"type": "string"},
                }));
            }
            None => out.push_str(segment),
        }
    }
    (out, parameters)
}

/// `users` is `Users`, `:org/items` is `OrgItems`.
fn component_name(path: &str) -> String {
    path.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or(String::new(), |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

#[derive(Default)]
struct Components {
    schemas: Map<String, Value>,
}

impl Components {
    /// Puts `schema` under `name` (its `$defs` beside it as
    /// `name_Def`) and answers a reference to it.
    fn add(&mut self, name: &str, schema: &Schema) -> Value {
        let mut json = schema.json().clone();
        if let Some(object) = json.as_object_mut() {
            object.remove("$schema");
            if let Some(Value::Object(defs)) = object.remove("$defs") {
                for (def, mut body) in defs {
                    rewrite_refs(&mut body, name);
                    self.schemas.insert(format!("{name}_{def}"), body);
                }
            }
        }
        rewrite_refs(&mut json, name);
        self.schemas.insert(name.to_owned(), json);
        json!({"$ref": format!("#/components/schemas/{name}")})
    }
}

/// `#/$defs/X` becomes `#/components/schemas/{name}_X`.
fn rewrite_refs(value: &mut Value, name: &str) {
    match value {
        Value::Object(object) => {
            if let Some(Value::String(reference)) = object.get_mut("$ref")
                && let Some(def) = reference.strip_prefix("#/$defs/")
            {
                *reference = format!("#/components/schemas/{name}_{def}");
            }
            for child in object.values_mut() {
                rewrite_refs(child, name);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| rewrite_refs(item, name)),
        _ => {}
    }
}
