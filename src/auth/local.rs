//! The `local` strategy: username and password, checked against an argon2id
//! hash stored on the entity.
//!
//! Stricter than Feathers: an unknown user, a wrong password, a record
//! without a hash and a hash that cannot be read all give the same 401
//! after the same work (an unknown user is verified against a dummy hash;
//! Feathers answers it faster). A missing, empty, non-string or over-long
//! username or password is that 401 without touching the store; an
//! over-long username (`maxUsernameLength`, 256 bytes by default) is
//! refused before the login throttle sees it. Hashes
//! made with other parameters are replaced after a successful login.
//! bcrypt hashes (`$2a$`/`$2b$`, which Feathers' local strategy accepts:
//! `@feathersjs/authentication-local`, `src/strategy.ts`) are not
//! supported: Plume has no bcrypt implementation, so such records never
//! match.

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use super::config::{JWT_OPTION_KEYS, LOCAL_STRATEGY_KEYS, misplaced};
use super::password::{self, DEFAULT_MAX_PASSWORD_LEN, Priority};
use super::strategy::{AuthResult, AuthenticationStrategy, StrategyContext};
use crate::fields::{get_path, set_path};
use crate::{Error, Id, Params, Result};

/// How many records a login lookup reads: one exact match plus the few
/// records whose name only equals it after the query language's coercion.
const LOOKUP_LIMIT: usize = 8;
/// Login names longer than this (bytes) are refused by default: e-mail
/// addresses stop at 254.
pub const DEFAULT_MAX_USERNAME_LEN: usize = 256;
/// How many password hashes (sign-ups, password changes) one client
/// address may have in progress at once by default.
pub const DEFAULT_MAX_HASHING_PER_ADDRESS: usize = 2;
/// Marks an internal call whose data already holds a password hash (the
/// rehash after login), so `hash_password` leaves it alone. Only honoured
/// for internal calls; transports never set extensions.
#[derive(Debug, Clone, Copy, Default)]
pub struct PrehashedPassword;

/// The local strategy. Register it as `"local"` and configure
/// `authentication.local.usernameField` and `passwordField`.
#[derive(Debug, Default, Clone)]
pub struct LocalStrategy {
    /// Hashes in progress per client address (`maxHashingPerAddress`),
    /// shared by every `hash_password` hook that uses this strategy.
    hashing: std::sync::Arc<password::HashingLimiter>,
}

/// The strategy's settings, with the defaults of Feathers' local strategy
/// (`@feathersjs/authentication-local`, `src/strategy.ts`).
#[derive(Debug, Clone)]
struct Settings {
    username_field: String,
    password_field: String,
    entity_username_field: String,
    entity_password_field: String,
    error_message: String,
    max_password_len: usize,
    max_username_len: usize,
    max_hashing_per_address: usize,
}

impl LocalStrategy {
    /// The local strategy.
    pub fn new() -> Self {
        Self::default()
    }

    fn settings(ctx: &StrategyContext<'_>) -> Result<Settings> {
        let section = ctx.section();
        let field = |key: &str| section.get(key).and_then(Value::as_str).map(str::to_owned);
        let required = |key: &str| {
            field(key).ok_or_else(|| {
                Error::general(format!(
                    "'{}' authentication strategy requires a '{key}' setting",
                    ctx.name
                ))
            })
        };
        let username_field = required("usernameField")?;
        let password_field = required("passwordField")?;
        Ok(Settings {
            entity_username_field: field("entityUsernameField")
                .unwrap_or_else(|| username_field.clone()),
            entity_password_field: field("entityPasswordField")
                .unwrap_or_else(|| password_field.clone()),
            error_message: field("errorMessage").unwrap_or_else(|| "Invalid login".to_owned()),
            max_password_len: size(section.get("maxPasswordLength"))
                .unwrap_or(DEFAULT_MAX_PASSWORD_LEN),
            max_username_len: size(section.get("maxUsernameLength"))
                .unwrap_or(DEFAULT_MAX_USERNAME_LEN),
            max_hashing_per_address: size(section.get("maxHashingPerAddress"))
                .unwrap_or(DEFAULT_MAX_HASHING_PER_ADDRESS),
            username_field,
            password_field,
        })
    }

    /// The entity's password field (`entityPasswordField`, else
    /// `passwordField`), when the strategy is configured.
    pub fn entity_password_field(&self, ctx: &StrategyContext<'_>) -> Option<String> {
        Self::settings(ctx).ok().map(|s| s.entity_password_field)
    }

    /// Hashes a password for storage (Feathers' `hashPassword`,
    /// `@feathersjs/authentication-local`, `src/strategy.ts`), refusing one
    /// longer than `maxPasswordLength` bytes with 400 BadRequest.
    pub async fn hash_password(&self, ctx: &StrategyContext<'_>, password: &str) -> Result<String> {
        let max = Self::settings(ctx).map_or(DEFAULT_MAX_PASSWORD_LEN, |s| s.max_password_len);
        if password.len() > max {
            return Err(Error::bad_request(format!(
                "The password is too long (at most {max} bytes)"
            )));
        }
        password::hash_password(password.to_owned()).await
    }

    /// How many password hashes one client address may have in progress
    /// at once (`maxHashingPerAddress`; 0 is no limit).
    pub fn max_hashing_per_address(&self, ctx: &StrategyContext<'_>) -> usize {
        Self::settings(ctx).map_or(DEFAULT_MAX_HASHING_PER_ADDRESS, |s| {
            s.max_hashing_per_address
        })
    }

    /// Counts one more hash in progress for `address` until the returned
    /// slot is dropped, or 429 TooManyRequests (with `retryAfter`) when
    /// the address is at `maxHashingPerAddress`; `None` when there is no
    /// limit.
    pub(crate) fn enter_hashing(
        &self,
        ctx: &StrategyContext<'_>,
        address: std::net::IpAddr,
    ) -> Result<Option<password::HashingSlot>> {
        match self.max_hashing_per_address(ctx) {
            0 => Ok(None),
            limit => self.hashing.enter(address, limit).map(Some),
        }
    }

    /// [`enter_hashing`](Self::enter_hashing) for the client of a call:
    /// only an external call from a known address is counted (server code
    /// hashes without a limit); `None` otherwise.
    pub(crate) fn enter_hashing_for(
        &self,
        ctx: &StrategyContext<'_>,
        params: &Params,
    ) -> Result<Option<password::HashingSlot>> {
        let address = params
            .extensions
            .get::<crate::ClientAddr>()
            .map(|a| a.0)
            .filter(|_| params.is_external());
        match address {
            Some(address) => self.enter_hashing(ctx, address),
            None => Ok(None),
        }
    }

    /// Finds the entity by username with an internal `find`
    /// (`{$limit, <entityUsernameField>: username}`, as Feathers' `findEntity`
    /// in `@feathersjs/authentication-local`, `src/strategy.ts`), keeping
    /// only an exact string match.
    async fn find_entity(
        &self,
        ctx: &StrategyContext<'_>,
        settings: &Settings,
        username: &str,
        params: &Params,
    ) -> Result<Option<Value>> {
        let service = ctx
            .entity_service()?
            .ok_or_else(|| Error::not_authenticated("Could not find entity service"))?;
        let mut find = params.clone();
        find.provider = None;
        // The query language reads a string as a number or a boolean when
        // the stored value is one ("5" finds 5), so ask for a few matches
        // and keep only the record whose login name is exactly this
        // string: a record whose name is the number 5 must not answer for
        // the login name "5".
        let mut query = Map::new();
        query.insert("$limit".to_owned(), json!(LOOKUP_LIMIT));
        query.insert(settings.entity_username_field.clone(), json!(username));
        find.query = query;
        let found = service.find(find).await?;
        let list = match &found {
            Value::Array(items) => Some(items),
            Value::Object(page) => page.get("data").and_then(Value::as_array),
            _ => None,
        };
        fn name<'v>(entity: &'v Value, field: &str) -> Option<&'v str> {
            entity.get(field).and_then(Value::as_str)
        }
        let field = settings.entity_username_field.as_str();
        // The exact name first; else one that differs only in case, which
        // a store returns only for a field it compares ignoring case (an
        // email declared `unique_ignoring_case`), so it is the one account.
        let found = list.and_then(|l| {
            l.iter()
                .find(|e| name(e, field) == Some(username))
                .or_else(|| {
                    l.iter()
                        .find(|e| name(e, field).is_some_and(|n| n.eq_ignore_ascii_case(username)))
                })
        });
        Ok(found.cloned())
    }

    /// The entity to return (Feathers' `getEntity`,
    /// `@feathersjs/authentication-local`, `src/strategy.ts`): as found for
    /// internal calls, else what the caller may see, through an external `get`.
    pub async fn get_entity(
        &self,
        ctx: &StrategyContext<'_>,
        entity: Value,
        params: &Params,
    ) -> Result<Value> {
        let settings = ctx.entity_settings();
        let service = ctx
            .entity_service()?
            .ok_or_else(|| Error::not_authenticated("Could not find entity service"))?;
        let id_field = settings
            .entity_id
            .clone()
            .or_else(|| service.service().id_field().map(str::to_owned));
        let id = id_field
            .as_deref()
            .and_then(|field| entity.get(field))
            .and_then(|id| Id::from_value(id).ok().flatten())
            .ok_or_else(|| Error::not_authenticated("Could not get local entity"))?;
        if !params.is_external() {
            return Ok(entity);
        }
        let mut external = params.clone();
        if let Some(name) = &settings.entity {
            external.entities.insert(name.clone(), entity);
        }
        service.get(id, external).await
    }

    /// Replaces a hash made with old parameters. Failure is logged, not
    /// fatal: the login itself was valid.
    async fn rehash(
        &self,
        ctx: &StrategyContext<'_>,
        settings: &Settings,
        entity: &Value,
        password: &str,
    ) {
        let outcome: Result<()> = async {
            let Some(service) = ctx.entity_service()? else {
                return Ok(());
            };
            let id_field = ctx
                .entity_settings()
                .entity_id
                .or_else(|| service.service().id_field().map(str::to_owned));
            let Some(id) = id_field
                .as_deref()
                .and_then(|field| entity.get(field))
                .and_then(|id| Id::from_value(id).ok().flatten())
            else {
                return Ok(());
            };
            let hash = password::hash_with(Priority::Login, password.to_owned()).await?;
            // A dotted field (`auth.password`) patches its top-level object
            // with only the hash replaced.
            let field = settings.entity_password_field.as_str();
            let top = field.split('.').next().unwrap_or(field);
            let mut data = Value::Object(Map::new());
            data[top] = entity.get(top).cloned().unwrap_or(Value::Null);
            if !set_path(&mut data, field, Value::String(hash)) {
                return Ok(());
            }
            let mut params = Params::new();
            params.extensions.insert(PrehashedPassword);
            service.patch(Some(id), data, params).await?;
            Ok(())
        }
        .await;
        if let Err(error) = outcome {
            tracing::warn!(%error, "could not replace an outdated password hash");
        }
    }
}

fn size(value: Option<&Value>) -> Option<usize> {
    value?.as_u64().and_then(|n| usize::try_from(n).ok())
}

fn text<'v>(value: &'v Value, path: &str) -> Option<&'v str> {
    get_path(value, path)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

#[async_trait]
impl AuthenticationStrategy for LocalStrategy {
    /// Feathers' checks (`verifyConfiguration`, `@feathersjs/authentication-local`,
    /// `src/strategy.ts`), plus: options that belong elsewhere are named.
    fn verify_configuration(&self, ctx: &StrategyContext<'_>) -> Result<()> {
        let key = ctx.service.config_key();
        for option in ctx.section().keys() {
            if LOCAL_STRATEGY_KEYS.contains(&option.as_str()) {
                continue;
            }
            let found = format!("{key}.{}.{option}", ctx.name);
            if JWT_OPTION_KEYS.contains(&option.as_str()) {
                return Err(misplaced(&found, &format!("{key}.jwtOptions.{option}")));
            }
            return Err(Error::general(format!(
                "Invalid LocalStrategy option '{found}'"
            )));
        }
        for option in ["maxUsernameLength", "maxHashingPerAddress"] {
            if let Some(value) = ctx.section().get(option)
                && size(Some(value)).is_none()
            {
                return Err(Error::general(format!(
                    "'{key}.{}.{option}' must be a whole number",
                    ctx.name
                )));
            }
        }
        Self::settings(ctx).map(|_| ())
    }

    async fn authenticate(
        &self,
        ctx: &StrategyContext<'_>,
        authentication: &Value,
        params: &Params,
    ) -> Result<AuthResult> {
        let settings = Self::settings(ctx)?;
        let fail = || Error::not_authenticated(settings.error_message.clone());
        let password = text(authentication, &settings.password_field)
            .filter(|p| p.len() <= settings.max_password_len)
            .ok_or_else(fail)?;
        let username = text(authentication, &settings.username_field)
            .filter(|u| u.len() <= settings.max_username_len)
            .ok_or_else(fail)?;
        let entity = self.find_entity(ctx, &settings, username, params).await?;
        let hash = entity
            .as_ref()
            .and_then(|e| text(e, &settings.entity_password_field))
            .map(str::to_owned);
        let (Some(entity), Some(hash)) = (entity, hash) else {
            // Same work as a wrong password, so timing tells nothing.
            password::burn_verification(password.to_owned()).await?;
            return Err(fail());
        };
        if !password::verify_password(password.to_owned(), hash.clone()).await? {
            return Err(fail());
        }
        if password::needs_rehash(&hash) {
            self.rehash(ctx, &settings, &entity, password).await;
        }
        let entity_name = ctx
            .entity_settings()
            .entity
            .ok_or_else(|| Error::general(format!(
                "The '{}' strategy needs an 'entity' (set '{}.{}.entity' when the top-level entity is null)",
                ctx.name, ctx.service.config_key(), ctx.name
            )))?;
        let entity = self.get_entity(ctx, entity, params).await?;
        let mut result = Map::new();
        result.insert("authentication".to_owned(), json!({"strategy": ctx.name}));
        result.insert(entity_name, entity);
        Ok(result)
    }

    /// An over-long login name is the same 401 as any failed login (the
    /// login answer never says which part was wrong, and a 400 would be
    /// the only login error naming the username), before the throttle.
    fn screen(&self, ctx: &StrategyContext<'_>, data: &Value) -> Result<()> {
        let settings = Self::settings(ctx)?;
        match text(data, &settings.username_field) {
            Some(username) if username.len() > settings.max_username_len => {
                Err(Error::not_authenticated(settings.error_message))
            }
            _ => Ok(()),
        }
    }

    fn throttle_key(&self, ctx: &StrategyContext<'_>, data: &Value) -> Option<String> {
        let settings = Self::settings(ctx).ok()?;
        text(data, &settings.username_field).map(|u| format!("{}:{u}", ctx.name))
    }
}
