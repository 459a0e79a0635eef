//! Signing and verifying access tokens (JSON Web Tokens).
//!
//! Verification is stricter than Feathers': the algorithm is pinned to the
//! configured one (`none` never verifies), `exp` and `jti` are required,
//! `aud` and `iss` are required and checked when configured, the header
//! `typ` is checked when configured, `exp`/`nbf` must be numbers, there is
//! no clock leeway, and tokens over `MAX_TOKEN_LEN` are refused before any
//! decoding. Failures are 401 NotAuthenticated with node-jsonwebtoken's
//! messages (`jwt expired`, `invalid signature`, ...), as Feathers'
//! `verifyAccessToken` (`@feathersjs/authentication`, `src/core.ts`).
//!
//! Registered claims (`iat`, `exp`, `nbf`, `aud`, `iss`, `sub`, `jti`) come
//! from the options only; a payload that carries one is refused, so custom
//! claims can never override them.

use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind as JwtErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Map, Value, json};

use super::config::parse_timespan;
use crate::{Error, Result};

/// Tokens longer than this are refused unread (a 1 MB token costs nothing).
pub(crate) const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The claims that only the options set.
pub(crate) const REGISTERED_CLAIMS: &[&str] = &["iat", "exp", "nbf", "aud", "iss", "sub", "jti"];

/// `jwtOptions`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtSettings {
    /// The signing algorithm; the only one that verifies.
    pub algorithm: Algorithm,
    /// Header `typ` (Feathers' default config: `access`).
    pub typ: Option<String>,
    /// Header `kid`.
    pub kid: Option<String>,
    /// `aud` to set and require.
    pub audience: Option<String>,
    /// `iss` to set and require.
    pub issuer: Option<String>,
    /// Lifetime in seconds.
    pub expires_in: Option<u64>,
    /// `sub` to set (and require on verification, if configured).
    pub subject: Option<String>,
    /// `jti` to set; a uuid v4 when absent.
    pub jwtid: Option<String>,
    /// `nbf` offset from `iat`, in seconds.
    pub not_before: Option<u64>,
}

impl JwtSettings {
    /// Parses merged `jwtOptions`; unknown keys and wrong types are errors
    /// with node-jsonwebtoken's messages where it has one.
    pub fn parse(options: &Map<String, Value>) -> Result<Self> {
        let string = |key: &str| -> Result<Option<String>> {
            match options.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(Error::general(format!("\"{key}\" must be a string"))),
            }
        };
        for key in options.keys() {
            if !super::config::JWT_OPTION_KEYS.contains(&key.as_str()) {
                return Err(Error::general(format!(
                    "\"{key}\" is not allowed in \"options\""
                )));
            }
        }
        let algorithm = match options.get("algorithm") {
            None | Some(Value::Null) => Algorithm::HS256,
            Some(Value::String(name)) => Algorithm::from_str(name)
                .map_err(|_| Error::general("\"algorithm\" must be a valid string enum value"))?,
            Some(_) => {
                return Err(Error::general(
                    "\"algorithm\" must be a valid string enum value",
                ));
            }
        };
        let (typ, kid) = match options.get("header") {
            None | Some(Value::Null) => (None, None),
            Some(Value::Object(header)) => {
                let mut typ = None;
                let mut kid = None;
                for (key, value) in header {
                    let text = value
                        .as_str()
                        .ok_or_else(|| {
                            Error::general(format!("\"header.{key}\" must be a string"))
                        })?
                        .to_owned();
                    match key.as_str() {
                        "typ" => typ = Some(text),
                        "kid" => kid = Some(text),
                        "alg" => {
                            return Err(Error::general(
                                "\"header.alg\" can not be set; use \"algorithm\"",
                            ));
                        }
                        other => {
                            return Err(Error::general(format!(
                                "\"header.{other}\" is not supported"
                            )));
                        }
                    }
                }
                (typ, kid)
            }
            Some(_) => return Err(Error::general("\"header\" must be an object")),
        };
        let timespan = |key: &str| -> Result<Option<u64>> {
            match options.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(value) => parse_timespan(value).map(Some),
            }
        };
        Ok(Self {
            algorithm,
            typ,
            kid,
            audience: string("audience")?,
            issuer: string("issuer")?,
            expires_in: timespan("expiresIn")?,
            subject: string("subject")?,
            jwtid: string("jwtid")?,
            not_before: timespan("notBefore")?,
        })
    }

    /// True for HS256/384/512, whose secret both signs and verifies.
    pub fn is_symmetric(&self) -> bool {
        matches!(
            self.algorithm,
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
        )
    }
}

/// The key that signs, for the configured algorithm: the secret for HS*,
/// a PEM private key otherwise.
pub fn encoding_key(algorithm: Algorithm, secret: &str) -> Result<EncodingKey> {
    let pem = secret.as_bytes();
    let key = match algorithm {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
            return Ok(EncodingKey::from_secret(pem));
        }
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => EncodingKey::from_rsa_pem(pem),
        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(pem),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(pem),
        other => return Err(Error::general(format!("Unsupported algorithm {other:?}"))),
    };
    key.map_err(|e| {
        Error::general(format!(
            "The 'secret' is not a PEM private key for {algorithm:?}: {e}"
        ))
    })
}

/// The key that verifies: the secret for HS*, a PEM public key otherwise.
pub fn decoding_key(algorithm: Algorithm, key: &str) -> Result<DecodingKey> {
    let pem = key.as_bytes();
    let key = match algorithm {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
            return Ok(DecodingKey::from_secret(pem));
        }
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => DecodingKey::from_rsa_pem(pem),
        Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(pem),
        Algorithm::EdDSA => DecodingKey::from_ed_pem(pem),
        other => return Err(Error::general(format!("Unsupported algorithm {other:?}"))),
    };
    key.map_err(|e| {
        Error::general(format!(
            "The 'publicKey' is not a PEM public key for {algorithm:?}: {e}"
        ))
    })
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Signs `payload` (custom claims) with the registered claims from
/// `settings`, in Feathers' claim order: custom keys, then `iat, exp, aud,
/// iss, sub, jti` (Feathers' `createAccessToken`, `@feathersjs/authentication`,
/// `src/core.ts`).
pub fn sign(
    payload: &Map<String, Value>,
    settings: &JwtSettings,
    key: &EncodingKey,
) -> Result<String> {
    if let Some(claim) = REGISTERED_CLAIMS.iter().find(|c| payload.contains_key(**c)) {
        return Err(Error::general(format!(
            "The payload already has an \"{claim}\" property; registered claims come from the token options and can not be overridden"
        )));
    }
    let Some(expires_in) = settings.expires_in else {
        return Err(Error::general(
            "'jwtOptions.expiresIn' must be set: Plume does not issue tokens that never expire",
        ));
    };
    let iat = now();
    let mut claims = payload.clone();
    claims.insert("iat".to_owned(), json!(iat));
    claims.insert("exp".to_owned(), json!(iat.saturating_add(expires_in)));
    if let Some(not_before) = settings.not_before {
        claims.insert("nbf".to_owned(), json!(iat.saturating_add(not_before)));
    }
    if let Some(audience) = &settings.audience {
        claims.insert("aud".to_owned(), json!(audience));
    }
    if let Some(issuer) = &settings.issuer {
        claims.insert("iss".to_owned(), json!(issuer));
    }
    if let Some(subject) = &settings.subject {
        claims.insert("sub".to_owned(), json!(subject));
    }
    let jti = settings
        .jwtid
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    claims.insert("jti".to_owned(), json!(jti));
    let mut header = Header::new(settings.algorithm);
    header.typ = Some(settings.typ.clone().unwrap_or_else(|| "JWT".to_owned()));
    header.kid.clone_from(&settings.kid);
    jsonwebtoken::encode(&header, &claims, key).map_err(Error::internal)
}

/// The `sub` claim for an entity id: a string id as it is, a number in
/// decimal; other values (null, objects) name no subject. Every place that
/// signs or revokes by subject uses this, so they agree.
pub fn subject_of(id: &Value) -> Option<String> {
    match id {
        Value::String(id) => Some(id.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The claims of a token, decoded without any check. Only for tokens this
/// server just signed, or to describe an error after verification failed.
pub fn peek_claims(token: &str) -> Option<Map<String, Value>> {
    let mut parts = token.split('.');
    let (_, payload) = (parts.next()?, parts.next()?);
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

fn invalid(message: &str, name: &str) -> Error {
    Error::not_authenticated(message).with_data(json!({ "name": name }))
}

/// Verifies `token` against `settings` and `key` and returns its claims.
pub fn verify(
    token: &str,
    settings: &JwtSettings,
    key: &DecodingKey,
) -> Result<Map<String, Value>> {
    if token.is_empty() {
        return Err(invalid("jwt must be provided", "JsonWebTokenError"));
    }
    if token.len() > MAX_TOKEN_LEN || token.split('.').count() != 3 {
        return Err(invalid("jwt malformed", "JsonWebTokenError"));
    }
    // node-jsonwebtoken's message for an unsigned token (`alg: none`, or
    // a signature cut off), whatever its header says.
    if token
        .rsplit('.')
        .next()
        .is_some_and(|signature| signature.trim().is_empty())
    {
        return Err(invalid("jwt signature is required", "JsonWebTokenError"));
    }
    let header = jsonwebtoken::decode_header(token)
        .map_err(|_| invalid("invalid token", "JsonWebTokenError"))?;
    if header.alg != settings.algorithm {
        return Err(invalid("invalid algorithm", "JsonWebTokenError"));
    }
    if let Some(typ) = &settings.typ
        && header.typ.as_deref() != Some(typ.as_str())
    {
        return Err(invalid(
            &format!("jwt typ invalid. expected: {typ}"),
            "JsonWebTokenError",
        ));
    }
    let mut validation = Validation::new(settings.algorithm);
    validation.leeway = 0;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    let mut required = vec!["exp"];
    match &settings.audience {
        Some(audience) => {
            validation.set_audience(&[audience]);
            required.push("aud");
        }
        None => validation.validate_aud = false,
    }
    if let Some(issuer) = &settings.issuer {
        validation.set_issuer(&[issuer]);
        required.push("iss");
    }
    if let Some(subject) = &settings.subject {
        validation.sub = Some(subject.clone());
        required.push("sub");
    }
    validation.set_required_spec_claims(&required);
    let data = jsonwebtoken::decode::<Map<String, Value>>(token, key, &validation)
        .map_err(|e| verification_error(e.kind(), token, settings))?;
    let claims = data.claims;
    // jsonwebtoken accepts fractional `exp`/`nbf` (rounding them) and
    // ignores `iat`; insist on whole numbers, as RFC 7519 NumericDate
    // parsers commonly do, and on a string `jti` so logout can revoke.
    for claim in ["exp", "nbf", "iat"] {
        if let Some(value) = claims.get(claim)
            && value.as_u64().is_none()
        {
            return Err(invalid(
                &format!("jwt {claim} must be a number"),
                "JsonWebTokenError",
            ));
        }
    }
    // jsonwebtoken accepts an `iss` array that contains the issuer; RFC
    // 7519 makes `iss` and `sub` strings, and a subject that is not one
    // could name two entities at once.
    for claim in ["iss", "sub"] {
        if claims.get(claim).is_some_and(|value| !value.is_string()) {
            return Err(invalid(
                &format!("jwt {claim} must be a string"),
                "JsonWebTokenError",
            ));
        }
    }
    if claims
        .get("jti")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(invalid("jwt jti missing", "JsonWebTokenError"));
    }
    Ok(claims)
}

fn verification_error(kind: &JwtErrorKind, token: &str, settings: &JwtSettings) -> Error {
    let claim = |name: &str| peek_claims(token).and_then(|c| c.get(name).and_then(Value::as_u64));
    match kind {
        JwtErrorKind::ExpiredSignature => {
            let mut data = json!({ "name": "TokenExpiredError" });
            if let Some(exp) = claim("exp") {
                data["expiredAt"] = json!(iso8601(exp));
            }
            Error::not_authenticated("jwt expired").with_data(data)
        }
        JwtErrorKind::ImmatureSignature => {
            let mut data = json!({ "name": "NotBeforeError" });
            if let Some(nbf) = claim("nbf") {
                data["date"] = json!(iso8601(nbf));
            }
            Error::not_authenticated("jwt not active").with_data(data)
        }
        JwtErrorKind::InvalidSignature => invalid("invalid signature", "JsonWebTokenError"),
        JwtErrorKind::InvalidAlgorithm => invalid("invalid algorithm", "JsonWebTokenError"),
        JwtErrorKind::InvalidAudience => invalid(
            &format!(
                "jwt audience invalid. expected: {}",
                settings.audience.as_deref().unwrap_or_default()
            ),
            "JsonWebTokenError",
        ),
        JwtErrorKind::InvalidIssuer => invalid(
            &format!(
                "jwt issuer invalid. expected: {}",
                settings.issuer.as_deref().unwrap_or_default()
            ),
            "JsonWebTokenError",
        ),
        JwtErrorKind::InvalidSubject => invalid(
            &format!(
                "jwt subject invalid. expected: {}",
                settings.subject.as_deref().unwrap_or_default()
            ),
            "JsonWebTokenError",
        ),
        JwtErrorKind::MissingRequiredClaim(claim) => {
            invalid(&format!("jwt {claim} missing"), "JsonWebTokenError")
        }
        JwtErrorKind::InvalidClaimFormat(claim) => invalid(
            &format!("jwt {claim} must be a number"),
            "JsonWebTokenError",
        ),
        _ => invalid("invalid token", "JsonWebTokenError"),
    }
}

/// Unix seconds as an ISO 8601 UTC timestamp with milliseconds, the way a
/// JavaScript `Date` serialises (`2024-01-31T12:00:00.000Z`). Past year
/// 9999, which a `Date` cannot show either, the last second of 9999.
pub fn iso8601(seconds: u64) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    let at = i64::try_from(seconds)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or_else(|| time::macros::datetime!(9999-12-31 23:59:59).assume_utc());
    at.format(FORMAT)
        .unwrap_or_else(|_| "9999-12-31T23:59:59.000Z".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> JwtSettings {
        JwtSettings::parse(&super::super::config::default_jwt_options()).unwrap()
    }

    // The crypto backend is chosen at run time: with none or two backends
    // enabled, jsonwebtoken panics on the first encode (CRATES.md pitfall 1).
    #[test]
    fn one_crypto_backend_signs_and_verifies() {
        let settings = settings();
        let token = sign(&Map::new(), &settings, &EncodingKey::from_secret(b"k")).unwrap();
        let claims = verify(&token, &settings, &DecodingKey::from_secret(b"k")).unwrap();
        assert_eq!(claims["iss"], json!("feathers"));
    }

    #[test]
    fn iso_dates() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso8601(1_700_000_000), "2023-11-14T22:13:20.000Z");
        assert_eq!(iso8601(u64::MAX), "9999-12-31T23:59:59.000Z");
    }
}
