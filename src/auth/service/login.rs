//! Logging in and out, the bodies of [`AuthenticationService`]'s `create`
//! and `remove`: the login throttle, issuing the access token, logging
//! the real-time connection in or out, and the `login`/`logout` events.

use serde_json::{Map, Value};

use super::strategies::string_list;
use super::{AuthCallOptions, AuthenticationService};
use crate::auth::strategy::{AuthResult, StrategyContext};
use crate::auth::throttle::{Reservation, ThrottleSettings};
use crate::auth::token;
use crate::metrics::Login;
use crate::{ClientAddr, Error, ErrorKind, HookContext, Id, Method, Params, Result};

impl AuthenticationService {
    /// `create`: see the [`Service`](crate::Service) impl.
    pub(super) async fn log_in(&self, data: &Value, params: &Params) -> Result<Value> {
        let config = self.shared_configuration();
        let allowed = self.allowed_strategies(&config, params);
        if allowed.is_empty() {
            return Err(Error::not_authenticated(
                "No authentication strategies allowed for creating a JWT (`authStrategies`)",
            ));
        }
        let reservation = match self.reserve_attempt(&config, data, params).await {
            Ok(reservation) => reservation,
            Err(error) => {
                // A 503 (shared counters unreachable) is not a throttled
                // login.
                if error.kind() == ErrorKind::TooManyRequests {
                    self.count(Login::Throttled);
                }
                return Err(error);
            }
        };
        let auth_result = match self.authenticate(data, params, &allowed).await {
            Ok(result) => {
                if let Some(reservation) = reservation {
                    reservation.succeeded();
                }
                result
            }
            Err(error) => {
                if error.kind() == ErrorKind::NotAuthenticated {
                    self.count(Login::Failed);
                }
                // A failed login keeps its reservation (dropped below);
                // any other error was not a guess and frees it.
                if let Some(reservation) = reservation
                    && error.kind() != ErrorKind::NotAuthenticated
                {
                    reservation.released();
                }
                return Err(error);
            }
        };
        let result = self.login_result(auth_result, params).await?;
        self.count(Login::Succeeded);
        // The connection learns its login before `login` listeners run, so
        // they see it authenticated, as in Feathers, whose
        // `@feathersjs/authentication` `src/service.ts` runs the connection
        // hook before the `login` event (#2908).
        if let (Some(connection), Ok(app)) = (&params.connection, self.app()) {
            let entity = config.get("entity").and_then(Value::as_str);
            let keep_open = config
                .get("keepSocketOnExpiry")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            crate::auth::connection::login(&app, connection, &result, entity, keep_open);
        }
        if params.is_external() {
            self.emit("login", Method::Create, Some(data), params, &result);
        }
        Ok(result)
    }

    /// `remove`: see the [`Service`](crate::Service) impl.
    pub(super) async fn log_out(&self, id: Option<&Id>, params: &Params) -> Result<Value> {
        let authentication = params.authentication.clone().unwrap_or(Value::Null);
        if let Some(id) = id {
            let token = authentication.get("accessToken").and_then(Value::as_str);
            if token != Some(id.to_string().as_str()) {
                return Err(Error::not_authenticated("Invalid access token"));
            }
        }
        let config = self.shared_configuration();
        let allowed = string_list(config.get("authStrategies")).unwrap_or_default();
        let result = self.authenticate(&authentication, params, &allowed).await?;
        let payload = result.get("authentication").and_then(|a| a.get("payload"));
        if let Some(payload) = payload
            && let (Some(jti), Some(exp)) = (
                payload.get("jti").and_then(Value::as_str),
                payload.get("exp").and_then(Value::as_u64),
            )
        {
            self.revocations.revoke(jti, exp).await?;
            // The same token on other connections (a REST logout of a
            // token a socket logged in with) stops receiving events now.
            if let Ok(app) = self.app() {
                crate::auth::connection::revoke(&app, params.connection.as_ref(), |claims| {
                    claims.get("jti").and_then(Value::as_str) == Some(jti)
                });
            }
        }
        let result = Value::Object(result);
        if let Some(connection) = &params.connection {
            crate::auth::connection::logout(connection, &result);
        }
        if params.is_external() {
            self.emit("logout", Method::Remove, None, params, &result);
        }
        Ok(result)
    }

    fn allowed_strategies(&self, config: &Map<String, Value>, params: &Params) -> Vec<String> {
        params
            .extensions
            .get::<AuthCallOptions>()
            .and_then(|o| o.auth_strategies.clone())
            .or_else(|| string_list(config.get("authStrategies")))
            .unwrap_or_default()
    }

    /// Throttles external login attempts per account and per address:
    /// `None` when this attempt is not throttled.
    async fn reserve_attempt(
        &self,
        config: &Map<String, Value>,
        data: &Value,
        params: &Params,
    ) -> Result<Option<Reservation<'_>>> {
        let throttled = params.is_external();
        let throttle = ThrottleSettings::from_config(config, &self.config_key)?;
        let address = params.extensions.get::<ClientAddr>().map(|a| a.0);
        let named = data
            .get("strategy")
            .and_then(Value::as_str)
            .and_then(|name| Some((name, self.get_strategy(name)?)));
        let account = match &named {
            Some((name, strategy)) => {
                let ctx = StrategyContext {
                    name,
                    service: self,
                };
                // Before the throttle, so hopeless attempts (an over-long
                // login name) take no room in it.
                strategy.screen(&ctx, data)?;
                strategy.throttle_key(&ctx, data)
            }
            None => None,
        };
        // The attempt is reserved before any password is verified: of any
        // number of concurrent logins, at most the limit are evaluated.
        let throttled = throttled && named.as_ref().is_none_or(|(_, s)| s.throttled());
        Ok(if throttled {
            Some(
                self.throttle
                    .reserve_shared(
                        &throttle,
                        account.as_deref(),
                        address,
                        self.shared_throttle.as_ref(),
                    )
                    .await?,
            )
        } else {
            None
        })
    }

    /// What `create` answers for an authenticated `auth_result`:
    /// `{accessToken, authentication: {strategy, payload}, <entity>}`.
    async fn login_result(&self, auth_result: AuthResult, params: &Params) -> Result<Value> {
        let has_token = auth_result
            .get("accessToken")
            .is_some_and(|t| t.as_str().is_some_and(|s| !s.is_empty()));
        if has_token {
            // The jwt strategy: the same token back, never a longer-lived one.
            return Ok(Value::Object(auth_result));
        }
        let payload = self.get_payload(&auth_result, params).await?;
        let options = self.get_token_options(&auth_result, params).await?;
        let secret = params
            .extensions
            .get::<AuthCallOptions>()
            .and_then(|o| o.secret.clone());
        self.wait_past_revocation(&options).await?;
        let access_token = self.create_access_token(&payload, Some(&options), secret.as_deref())?;
        let decoded = token::peek_claims(&access_token).unwrap_or_default();
        let mut result = Map::new();
        result.insert("accessToken".to_owned(), Value::String(access_token));
        let mut authentication = Map::new();
        for (key, value) in auth_result {
            if key == "authentication" {
                if let Value::Object(map) = value {
                    authentication = map;
                }
            } else {
                result.insert(key, value);
            }
        }
        authentication.insert("payload".to_owned(), Value::Object(decoded));
        result.insert("authentication".to_owned(), Value::Object(authentication));
        Ok(Value::Object(result))
    }

    /// A token issued in the second its subject was revoked would carry
    /// the same `iat` as the revoked ones and be refused with them; such
    /// a login waits for the next second (at most about one).
    async fn wait_past_revocation(&self, options: &Map<String, Value>) -> Result<()> {
        let Some(sub) = options.get("subject").and_then(Value::as_str) else {
            return Ok(());
        };
        for _ in 0..30 {
            match self.revocations.subject_revoked_at(sub).await? {
                Some(at) if at >= token::now() => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                _ => return Ok(()),
            }
        }
        Ok(())
    }

    /// Counts a login attempt's outcome for `/metrics`.
    fn count(&self, outcome: Login) {
        if let Ok(app) = self.app() {
            app.metrics().login(outcome);
        }
    }

    fn emit(
        &self,
        event: &str,
        method: Method,
        data: Option<&Value>,
        params: &Params,
        result: &Value,
    ) {
        let (Ok(app), Some(path)) = (self.app(), self.path()) else {
            return;
        };
        let mut ctx = HookContext::new(app.clone(), path, method);
        ctx.params = params.clone();
        ctx.data = data.cloned();
        ctx.result = Some(result.clone());
        app.emit(event, result, &ctx);
    }
}
