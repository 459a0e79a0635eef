//! Real-time connections and authentication (Feathers' `handleConnection`
//! in `@feathersjs/authentication`, `src/jwt.ts`): a login over a
//! connection authenticates the connection, so later calls over it carry
//! the credentials; it stops being authenticated on logout, on disconnect,
//! when its token is revoked and when its token expires.
//!
//! When the token expires, the connection is told why (the event
//! `authentication expired` with the NotAuthenticated error) and closed,
//! as seed 002 says ("connections are automatically closed when tokens
//! expire, forcing clients to re-authenticate"); with
//! `authentication.keepSocketOnExpiry: true` it stays open as anonymous
//! instead (Feathers' behaviour): its authentication is removed and it
//! leaves every channel.
//!
//! When a token is revoked (a logout over any transport, a password
//! change, a deleted entity), every connection logged in with it leaves
//! every channel at once and forgets its login, so no more events reach
//! it; the app's disconnect listeners run only when it really closes. Calls are checked again on every call by the `authenticate` hook
//! in any case.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use super::expiry::Expiry;
use super::token::peek_claims;
use crate::{App, Connection, Error};

/// The access token of an authentication result, and its `exp` claim.
fn token_and_exp(result: &Value) -> Option<(&str, Option<u64>)> {
    let token = result.get("accessToken")?.as_str()?;
    let exp = result
        .get("authentication")
        .and_then(|a| a.get("payload"))
        .and_then(|p| p.get("exp"))
        .and_then(Value::as_u64);
    Some((token, exp))
}

/// A login succeeded over `connection`: remember the credentials and the
/// entity, and end the authentication when the token expires (replacing
/// the timer of an earlier login).
pub(crate) fn login(
    app: &App,
    connection: &Connection,
    result: &Value,
    entity: Option<&str>,
    keep_open: bool,
) {
    let Some((token, exp)) = token_and_exp(result) else {
        return;
    };
    let ends = exp.and_then(|exp| {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        // `exp` is the last second the token is valid in. A token valid
        // for longer than the timer's horizon is not timed at all (every
        // call still checks it).
        let wait = Duration::from_secs(exp.saturating_sub(now).saturating_add(1));
        (wait <= EXPIRY_HORIZON).then(|| tokio::time::Instant::now() + wait)
    });
    // Logging in as someone else over the same socket: the channels the
    // earlier login put it in (a user's own channel) are not the new
    // user's, and a revocation of the earlier user would no longer find
    // this connection by its token.
    let subject = |token: &str| peek_claims(token).and_then(|c| c.get("sub").cloned());
    if let Some(previous) = current_token(connection)
        && subject(&previous) != subject(token)
    {
        app.forget_channels(connection);
    }
    let mut entities = Map::new();
    if let Some(name) = entity
        && let Some(value) = result.get(name)
    {
        entities.insert(name.to_owned(), value.clone());
    }
    connection.update(|state| {
        if let Some(previous) = state.expiry.take() {
            previous.cancel();
        }
        state.authentication = Some(json!({"strategy": "jwt", "accessToken": token}));
        state.entities = entities;
        // Queued under the state's lock, so that the entry is the
        // connection's before the timer can see it come due (the lock
        // order is always the state's, then the queue's).
        state.expiry = ends.and_then(|at| app.expiries().add(app, connection, at, keep_open));
    });
}

/// A logout succeeded over `connection`: forget its authentication if it
/// was logged in with that token (a logout with another token leaves it
/// alone, as in Feathers).
pub(crate) fn logout(connection: &Connection, result: &Value) {
    let Some((token, _)) = token_and_exp(result) else {
        return;
    };
    if current_token(connection).as_deref() == Some(token) {
        clear(connection);
    }
}

/// The connection closed: stop its expiry timer now, and forget its
/// authentication on the next tick, so that the app's other disconnect
/// listeners still see who it was (as Feathers does).
pub(crate) fn disconnected(connection: &Connection) {
    connection.update(|state| {
        if let Some(timer) = state.expiry.take() {
            timer.cancel();
        }
    });
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            let connection = connection.clone();
            runtime.spawn(async move { clear(&connection) });
        }
        Err(_) => clear(connection),
    }
}

fn current_token(connection: &Connection) -> Option<String> {
    connection.state().authentication.and_then(|a| {
        a.get("accessToken")
            .and_then(Value::as_str)
            .map(str::to_owned)
    })
}

fn clear(connection: &Connection) {
    connection.update(|state| {
        if let Some(timer) = state.expiry.take() {
            timer.cancel();
        }
        state.authentication = None;
        state.entities = Map::new();
    });
}

/// The furthest ahead a login's end is timed: tokio's timer cannot take a
/// deadline near the end of time, and 30 years is what it calls far.
const EXPIRY_HORIZON: Duration = Duration::from_secs(30 * 365 * 24 * 60 * 60);

/// The token a connection logged in with has expired: called by the app's
/// expiry timer ([`super::expiry`]) with the entry that came due, which
/// ends the login only if it is still the connection's (checked and
/// cleared at once, so a login made meanwhile stays).
pub(super) fn expire(
    app: &App,
    connection: &Connection,
    is_current: impl Fn(&Expiry) -> bool,
    keep_open: bool,
) {
    let mut ended = false;
    connection.update(|state| {
        if state.expiry.as_ref().is_some_and(&is_current) {
            // Its entry left the queue when it came due.
            state.expiry = None;
            state.authentication = None;
            state.entities = Map::new();
            ended = true;
        }
    });
    if !ended {
        return;
    }
    tracing::debug!(
        connection = connection.id(),
        "access token expired; connection no longer authenticated"
    );
    if keep_open || !connection.can_close() {
        // Feathers' behaviour (and all a transport that cannot close may
        // get): the app hears a disconnect, the connection stays.
        app.detach(connection);
    } else {
        // The transport reports the close, and the app's disconnect
        // listeners run then, once.
        app.forget_channels(connection);
        let error =
            Error::not_authenticated("jwt expired").with_data(json!({"name": "TokenExpiredError"}));
        connection.send(EXPIRED_EVENT, &error.to_json());
        connection.close();
    }
}

/// The event a connection receives just before it is closed because its
/// token expired; the official client can listen to it with
/// `app.service('authentication').on('expired', ...)`.
pub(crate) const EXPIRED_EVENT: &str = "authentication expired";

/// Tokens were revoked: every open connection (but `except`, whose own
/// logout is handled by the caller) logged in with a token whose claims
/// `revoked` matches forgets its login and leaves every channel.
pub(crate) fn revoke(
    app: &App,
    except: Option<&Connection>,
    revoked: impl Fn(&Map<String, Value>) -> bool,
) {
    for connection in app.live_connections() {
        if except == Some(&connection) {
            continue;
        }
        let Some(token) = current_token(&connection) else {
            continue;
        };
        if peek_claims(&token).is_some_and(|claims| revoked(&claims)) {
            tracing::debug!(
                connection = connection.id(),
                "access token revoked; connection no longer authenticated"
            );
            // The socket stays open: it leaves its channels, and the app's
            // disconnect listeners run when it really closes.
            clear(&connection);
            app.forget_channels(&connection);
        }
    }
}
