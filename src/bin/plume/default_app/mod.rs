//! The app `cargo run --release` serves: users who sign up and log in,
//! and messages they read together and change only when they wrote them,
//! on the embedded SQLite database, or on PostgreSQL (with Redis between
//! instances) when configured. Safe against a logged-in stranger by
//! default:
//!
//! - `users`: `create` is public (sign-up) and accepts `email` (a valid
//!   address) and `password` only, checked by a JSON Schema; emails are unique ignoring case (stored as given,
//!   and login matches them the same way); a logged-in user finds, gets, updates, patches and
//!   removes only their own record (anyone else's is 404); `role` and
//!   `permissions` are never client-writable (`plume user add` and
//!   `plume user grant` set them) and survive an `update`; the password is
//!   hashed on create, update and patch, never leaves the server and
//!   cannot be queried; a password change or removal revokes the user's
//!   tokens. Ids are always assigned by the server (a client-chosen id
//!   could revive a deleted account's tokens). Pages of 10 (at most 50).
//!   Its events reach only the user's own connections.
//! - `messages`: every method needs a token; pages of 10 (at most 50);
//!   `create` needs a non-blank `text` (at most 10,000 characters, checked by
//!   a JSON Schema) and stamps `userId` (from the token, whatever the client
//!   sent) and `createdAt`; only `text` is client-writable; update, patch and remove reach only the caller's own
//!   messages (anyone else's is 404).
//! - `authentication`: `local` (email + password) and `jwt`; a login hook
//!   sets the `role` claim to `user` unless a hook set one, and the service
//!   signs the user's own `role` and `permissions` into the token when the
//!   user has them.
//! - Readiness: `GET /ready` asks the database (`sqlite` or `postgres`)
//!   and, when the app joined other instances, Redis (`redis`).
//! - Real-time: new connections join `anonymous` and move to
//!   `authenticated` (and `users/<id>`) when they log in; service events go
//!   to `authenticated`, `users` events to `users/<id>` only.

use serde_json::{Map, Value};

use plume::auth::AuthenticationService;
use plume::auth::hooks::{SetField, preserve_on_update, set_field};
use plume::channels::{ANONYMOUS, AUTHENTICATED};
use plume::cluster::RedisBus;
use plume::config::Config;
use plume::schema::validate_data;
use plume::store::{SqliteService, SqliteStore};

mod accounts;
pub(crate) mod database;
mod docs;
mod schemas;
mod settings;

use plume::{
    App, Error, ErrorKind, HookContext, Hooks, JwtStrategy, LocalStrategy, Paginate, Result,
    authenticate, hash_password, protect,
};
// The tests check the limit at its edge.
#[allow(unused_imports)]
pub(crate) use schemas::MAX_TEXT;
pub(crate) use settings::unused;

use accounts::{ClaimsFromUser, default_role, revoke_on_claim_change, server_assigned_ids};
use schemas::{ClientSchemas, Writer, message_schema, user_schema};

/// Builds the default app from the configuration, on PostgreSQL when one
/// is configured (`postgres.url`, `DATABASE_URL`, or knex's `postgresql`
/// section; see [`database`]), else on the SQLite database named by
/// `sqlite.filename` (or knex's `sqlite.connection`, see
/// [`sqlite_filename`](plume::config::sqlite_filename));
/// `sqlite.recordCacheMs` sets the SQLite store's record cache time to
/// live (0 turns it off). Without an `authentication.secret` the one kept
/// in the database (PostgreSQL) or beside it (SQLite) is used, made on the
/// first start ([`Config::with_secret`]).
///
/// With `redis.url` (or `REDIS_URL`) the app joins the other instances on
/// that Redis ([`RedisBus`]): their service events reach its real-time
/// clients, and the login throttle counts across all of them.
pub(crate) async fn build(config: &Config) -> Result<App> {
    let (database, config) = database::open(config).await?;
    let bus = match database::redis_url(&config)? {
        Some(url) => Some(RedisBus::connect_with_key(&url, &database::redis_key(&config)?).await?),
        None => None,
    };
    let app = build_on(&config, &database, bus.as_ref())?;
    if let Some(bus) = &bus {
        bus.join(&app);
        tracing::info!("joined the other instances on Redis");
    }
    Ok(app)
}

/// The default app's `messages` store service, before hooks and before
/// the indexes of `sqlite.indexes`: paginated, indexed for the queries
/// its clients send (the newest page, `$sort[createdAt]=-1`, of all
/// messages or of one user's; both read `$limit` records). Public so that
/// tools writing the same table (the scale benchmark's `grow` example)
/// declare exactly the same indexes: setting a service up drops the
/// indexes it does not declare.
// Used by the tests and examples that include this module.
#[allow(dead_code)]
pub(crate) fn messages_service(store: &SqliteStore) -> Result<SqliteService> {
    Ok(messages_indexes!(store.service("messages")?))
}

/// The builder calls of [`messages_service`], for either store.
macro_rules! messages_indexes {
    ($service:expr) => {
        $service
            .paginate(PAGES)
            .index(["createdAt"])
            .compound_index(["userId", "createdAt"])
    };
}
use messages_indexes;

/// The services whose indexes `sqlite.indexes` may add to.
const INDEXED_SERVICES: [&str; 2] = ["users", "messages"];

/// `sqlite.indexes` (or `postgres.indexes`, as `section` says): a map from
/// the default app's service names to the indexes to add (see
/// [`SqliteService::indexes_from_config`]); a key that names no service is
/// an error, not a silently missing index.
fn configured_indexes<'c>(
    config: &'c Config,
    section: &str,
) -> Result<Option<&'c Map<String, Value>>> {
    match config.get(&format!("{section}.indexes")) {
        None => Ok(None),
        Some(Value::Object(entries)) => {
            match entries
                .keys()
                .find(|name| !INDEXED_SERVICES.contains(&name.as_str()))
            {
                Some(unknown) => Err(Error::general(format!(
                    "{section}.indexes.{unknown} names no service of the default app (it has {})",
                    INDEXED_SERVICES.join(" and ")
                ))),
                None => Ok(Some(entries)),
            }
        }
        Some(other) => Err(Error::general(format!(
            "{section}.indexes must map service names to lists of indexes, not {other}"
        ))),
    }
}

/// `service` with the indexes `sqlite.indexes` lists for `name`.
fn with_indexes(
    configured: Option<&Map<String, Value>>,
    name: &str,
    service: database::Table,
) -> Result<database::Table> {
    match configured.and_then(|entries| entries.get(name)) {
        Some(listed) => service.indexes_from_config(listed),
        None => Ok(service),
    }
}

/// A setting in whole milliseconds, if set.
fn milliseconds(config: &Config, key: &str) -> Result<Option<std::time::Duration>> {
    config
        .get(key)
        .map(|ms| {
            ms.as_u64()
                .map(std::time::Duration::from_millis)
                .ok_or_else(|| {
                    Error::general(format!(
                        "{key} must be a whole number of milliseconds, not {ms}"
                    ))
                })
        })
        .transpose()
}

/// Builds the default app on an open SQLite store (tests pass
/// `:memory:`).
#[allow(dead_code)]
pub(crate) fn build_with_store(config: &Config, store: &SqliteStore) -> Result<App> {
    build_on(config, &database::Database::Sqlite(store.clone()), None)
}

/// Builds the default app on an open database; with a bus, the login
/// throttle counts in it (the caller joins the app to it).
pub(crate) fn build_on(
    config: &Config,
    db: &database::Database,
    bus: Option<&RedisBus>,
) -> Result<App> {
    let app = App::new();
    config.apply_to(&app);
    let indexes = configured_indexes(config, db.section())?;
    let pages = pages(config)?;
    // Compiled once: the hooks check with them and the docs show them.
    let schemas = ClientSchemas {
        sign_up: user_schema(&["email", "password"])?,
        user_patch: user_schema(&[])?,
        message: message_schema(Writer::ClientCreating)?,
        message_patch: message_schema(Writer::Client)?.for_patch()?,
    };

    with_indexes(
        indexes,
        "users",
        database::table!(db, "users", |s| s
            .unique_ignoring_case(["email"])
            .paginate(pages)
            .protected_fields(["password"])),
    )?
    .mount(&app, "users")?
    .hooks(
        Hooks::new()
            .before(
                ["find", "get", "update", "patch", "remove"],
                (
                    authenticate(["jwt"]),
                    set_field("user.id", "query.id").or_from("authentication.payload.sub"),
                ),
            )
            .before("create", server_assigned_ids)
            .before(
                "create",
                validate_data(schemas.sign_up.clone()).external_only(),
            )
            .before(
                "update",
                validate_data(user_schema(&["email"])?).external_only(),
            )
            .before(
                "patch",
                validate_data(schemas.user_patch.clone()).external_only(),
            )
            .before("update", preserve_on_update(["role", "permissions"]))
            .before(["create", "update", "patch"], hash_password("password"))
            .after(["update", "patch"], revoke_on_claim_change)
            .around("all", protect(["password"])),
    );
    // A user's own events go to that user's connections only: a sign-up
    // or an email change is nobody else's business.
    app.service("users")?
        .publish(|data, _ctx| user_channel(data).into_iter().collect());

    with_indexes(
        indexes,
        "messages",
        database::table!(db, "messages", |s| messages_indexes!(s).paginate(pages)),
    )?
    .mount(&app, "messages")?
    .hooks(
        Hooks::new()
            .before("all", authenticate(["jwt"]))
            // A client may send its own `userId` on create (the official
            // client examples do); the server overwrites it. After that the
            // owner and the creation time are the server's.
            // Every call needs a good text; a client may write nothing else.
            .before(
                "create",
                validate_data(message_schema(Writer::Any)?).for_clients(schemas.message.clone()),
            )
            .before(
                "update",
                validate_data(message_schema(Writer::Client)?).external_only(),
            )
            .before(
                "patch",
                validate_data(schemas.message_patch.clone()).external_only(),
            )
            .before(["update", "patch", "remove"], owner_only())
            .before("update", preserve_on_update(["userId", "createdAt"]))
            .before("create", stamp_owner_and_time)
            .error("create", tag_bad_request),
    );

    let revocations = match bus {
        // Other instances' sockets hear of a logout too.
        Some(bus) => bus.revocations(db.revocations()),
        None => db.revocations(),
    };
    let mut auth = AuthenticationService::new(&app)
        .with_overrides(ClaimsFromUser)
        .with_revocation_list(revocations);
    if let Some(bus) = bus {
        // The key of the account hashes in Redis: never an empty one.
        let secret = config
            .get("authentication.secret")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Error::general("Joining other instances needs authentication.secret"))?;
        auth = auth.with_shared_throttle(bus.throttle(secret));
    }
    auth.register("jwt", JwtStrategy::new())?;
    auth.register("local", LocalStrategy::new())?;
    app.use_service("authentication", auth)?
        .hooks(Hooks::new().before("create", default_role));

    channels(&app);
    docs::register(&app, schemas)?;
    // `GET /ready` answers 503 while the database, or the Redis of the
    // other instances, cannot be reached.
    db.add_readiness_check(&app);
    if let Some(bus) = bus {
        app.add_readiness_check(bus.clone());
    }
    Ok(app)
}

/// New connections are anonymous until they log in, as in the Feathers
/// generator's `channels` file.
fn channels(app: &App) {
    let joining = app.clone();
    app.on_connection(move |connection| joining.channel(ANONYMOUS).join(connection));
    let login = app.clone();
    app.on("login", move |result, ctx| {
        if let Some(connection) = &ctx.params.connection {
            login.channel(ANONYMOUS).leave(connection);
            login.channel(AUTHENTICATED).join(connection);
            if let Some(own) = result.get("user").and_then(user_channel) {
                login.channel(&own).join(connection);
            }
        }
    });
    let logout = app.clone();
    app.on("logout", move |result, ctx| {
        if let Some(connection) = &ctx.params.connection {
            logout.channel(AUTHENTICATED).leave(connection);
            if let Some(own) = result.get("user").and_then(user_channel) {
                logout.channel(&own).leave(connection);
            }
            logout.channel(ANONYMOUS).join(connection);
        }
    });
}

/// The channel of one user's connections: `users/<id>`.
fn user_channel(user: &Value) -> Option<String> {
    match user.get("id")? {
        Value::Null => None,
        Value::String(id) => Some(format!("users/{id}")),
        other => Some(format!("users/{other}")),
    }
}

/// Pages of 10, at most 50, on every `find` of the default app unless
/// `paginate` says otherwise.
const PAGES: Paginate = Paginate {
    default: 10,
    max: 50,
};

/// `paginate` (`{"default": 10, "max": 50}`, as in Feathers) for every
/// `find` of the default app. `false`, which in Feathers lists whole
/// tables, is refused: the default app pages every find.
pub(crate) fn pages(config: &Config) -> Result<Paginate> {
    let section = match config.get("paginate") {
        None | Some(Value::Null) => return Ok(PAGES),
        Some(Value::Object(section)) => section,
        Some(other) => {
            return Err(Error::general(format!(
                "paginate must be {{\"default\": 10, \"max\": 50}}: the default app pages \
                 every find, so {other} is not accepted"
            )));
        }
    };
    let size = |key: &str| match section.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_u64()
            .filter(|&n| n >= 1)
            .and_then(|n| usize::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| {
                Error::general(format!(
                    "paginate.{key} must be a whole number from 1, not {value}"
                ))
            }),
    };
    let (default, max) = match (size("default")?, size("max")?) {
        (Some(default), Some(max)) => (default, max),
        (Some(default), None) => (default, default.max(PAGES.max)),
        (None, Some(max)) => (PAGES.default.min(max), max),
        (None, None) => (PAGES.default, PAGES.max),
    };
    if default > max {
        return Err(Error::general(format!(
            "paginate.default ({default}) is larger than paginate.max ({max})"
        )));
    }
    Ok(Paginate { default, max })
}

/// Restricts a call to the caller's own messages (`query.userId`). With
/// stateless tokens (`entity: null`) no user is loaded and the id is the
/// token's subject.
fn owner_only() -> SetField {
    set_field("user.id", "query.userId").or_from("authentication.payload.sub")
}

/// Sets `userId` to the authenticated user's id and `createdAt` to now in
/// milliseconds since the Unix epoch, whatever the client sent. With
/// stateless tokens (`entity: null`) no user is loaded and the id is the
/// token's subject.
async fn stamp_owner_and_time(ctx: &mut HookContext) -> Result<()> {
    let from_user = ctx.params.user().and_then(|user| user.get("id")).cloned();
    let from_token = || {
        let sub = ctx
            .params
            .authentication
            .as_ref()?
            .get("payload")?
            .get("sub")?
            .as_str()?;
        Some(
            sub.parse::<i64>()
                .map_or_else(|_| Value::from(sub), Value::from),
        )
    };
    let user_id = from_user.or_else(from_token).unwrap_or(Value::Null);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default();
    let records: Vec<&mut Map<String, Value>> = match ctx.data.as_mut() {
        Some(Value::Array(records)) => records
            .iter_mut()
            .filter_map(Value::as_object_mut)
            .collect(),
        Some(Value::Object(record)) => vec![record],
        _ => Vec::new(),
    };
    for record in records {
        record.insert("userId".to_owned(), user_id.clone());
        record.insert("createdAt".to_owned(), Value::from(now));
    }
    Ok(())
}

/// Marks BadRequest errors of `create` with where they came from, keeping
/// what the error already said. A schema's errors (a list in `data`, as
/// Feathers' validators give) are left as they are.
async fn tag_bad_request(ctx: &mut HookContext) -> Result<()> {
    if let Some(error) = ctx.error.take() {
        let is_list = error.data().is_some_and(Value::is_array);
        ctx.error = Some(if error.kind() == ErrorKind::BadRequest && !is_list {
            let mut data = match error.data() {
                Some(Value::Object(data)) => data.clone(),
                _ => Map::new(),
            };
            data.insert("hook".to_owned(), Value::from("messages.error.create"));
            error.with_data(Value::Object(data))
        } else {
            error
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pages_come_from_paginate() {
        let pages_of = |paginate: Value| {
            let Value::Object(values) = json!({ "paginate": paginate }) else {
                unreachable!("an object")
            };
            pages(&Config::from_value("test", values))
        };
        let page = |default, max| Paginate { default, max };
        assert_eq!(pages_of(Value::Null).unwrap(), page(10, 50));
        assert_eq!(
            pages_of(json!({"default": 25, "max": 100})).unwrap(),
            page(25, 100)
        );
        assert_eq!(pages_of(json!({"default": 80})).unwrap(), page(80, 80));
        assert_eq!(pages_of(json!({"max": 5})).unwrap(), page(5, 5));
        for (bad, says) in [
            (json!(false), "pages every find"),
            (json!({"default": 0}), "paginate.default"),
            (json!({"max": "50"}), "paginate.max"),
            (json!({"default": 60, "max": 50}), "larger than"),
        ] {
            let error = pages_of(bad.clone()).unwrap_err();
            assert!(error.message().contains(says), "{bad}: {error}");
        }
    }

    fn config(sqlite: &Value) -> Config {
        let Value::Object(values) = json!({
            "sqlite": sqlite,
            "authentication": {
                "secret": "a-test-secret-that-is-long-enough-for-hs256-0123456789abcdef",
                "entity": "user",
                "service": "users",
                "authStrategies": ["jwt", "local"],
                "local": {"usernameField": "email", "passwordField": "password"}
            }
        }) else {
            unreachable!()
        };
        Config::from_value("test", values)
    }

    #[tokio::test]
    async fn the_record_cache_ttl_comes_from_the_configuration() {
        let bad = config(&json!({"filename": ":memory:", "recordCacheMs": "soon"}));
        let error = build(&bad).await.unwrap_err();
        assert!(error.message().contains("sqlite.recordCacheMs"), "{error}");
        let negative = config(&json!({"filename": ":memory:", "recordCacheMs": -1}));
        assert!(build(&negative).await.is_err());
        let off = config(&json!({"filename": ":memory:", "recordCacheMs": 0}));
        build(&off).await.unwrap();
    }

    #[tokio::test]
    async fn configured_indexes_are_added_and_mistakes_stop_the_start() {
        let store = SqliteStore::open(":memory:").await.unwrap();
        let app = build_with_store(
            &config(&json!({"indexes": {"messages": ["text", ["userId", "text"]]}})),
            &store,
        )
        .unwrap();
        app.setup().await.unwrap();
        let names = store
            .read(|tx| {
                let mut stmt = tx
                    .prepare(
                        "SELECT name FROM sqlite_master WHERE type = 'index' \
                         AND tbl_name = 'messages' ORDER BY name",
                    )
                    .map_err(Error::internal)?;
                let rows = stmt
                    .query_map([], |row| row.get::<_, String>(0))
                    .map_err(Error::internal)?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(Error::internal)
            })
            .await
            .unwrap();
        for name in [
            "messages__index__createdAt",
            "messages__index__userId,createdAt",
            "messages__index__text",
            "messages__sort__text",
            "messages__index__userId,text",
        ] {
            assert!(names.iter().any(|n| n == name), "{name}: {names:?}");
        }
        for (indexes, says) in [
            (json!({"posts": ["a"]}), "sqlite.indexes.posts"),
            (json!(["a"]), "sqlite.indexes must map"),
            (json!({"messages": [7]}), "Invalid index 7"),
        ] {
            let store = SqliteStore::open(":memory:").await.unwrap();
            let error = build_with_store(&config(&json!({"indexes": indexes})), &store)
                .err()
                .unwrap();
            assert!(error.message().contains(says), "{says}: {error}");
        }
    }
}
