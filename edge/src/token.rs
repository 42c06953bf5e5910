//! JWTs: verifying callers (the service role, a container's token) and minting container tokens.
//!
//! HS256 with the project's JWT secret (its raw UTF-8 bytes, as PostgREST, Realtime and Storage use
//! it), through `jwt-compact`'s pure-Rust HMAC; no signing code here. Times are passed in (seconds
//! since the epoch), so this module has no clock and is tested natively.

use chrono::{DateTime, Duration, Utc};
use jwt_compact::alg::{Hs256, Hs256Key};
use jwt_compact::{AlgorithmExt, Claims, Header, TimeOptions, UntrustedToken, ValidationError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// The role a container token carries (docs/contracts.md "Container token and env").
pub(crate) const CONTAINER_ROLE: &str = "fsync_container";
/// The scope a container token carries: read its own project.
pub(crate) const READ_SCOPE: &str = "fsync:read";
/// The role the orchestrator's calls must carry.
pub(crate) const SERVICE_ROLE: &str = "service_role";
/// PostgREST's clock skew for `exp`; used for service-role callers.
const SERVICE_LEEWAY_SECS: i64 = 30;

/// The custom claims of a container token. With `iat` and `exp` these are exactly docs/contracts.md's:
/// role, sub (= session id), project_id, session_id, scope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ContainerClaims {
    pub(crate) role: String,
    pub(crate) sub: String,
    pub(crate) project_id: String,
    pub(crate) session_id: String,
    pub(crate) scope: String,
}

/// A freshly minted container token.
#[derive(Clone, Debug)]
pub(crate) struct Minted {
    pub(crate) token: String,
    pub(crate) expires_at: i64,
}

#[derive(Clone, Deserialize)]
struct RoleOnly {
    #[serde(default)]
    role: Option<String>,
}

/// The bearer token of an `Authorization` header value, if it is one.
pub(crate) fn bearer(header: Option<String>) -> Result<String, AppError> {
    let value = header.ok_or_else(|| {
        AppError::Unauthorized("missing Authorization: Bearer <token> header".into())
    })?;
    let mut parts = value.trim().splitn(2, ' ');
    match (parts.next(), parts.next()) {
        (Some(scheme), Some(token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim().to_owned())
        }
        _ => Err(AppError::Unauthorized(
            "the Authorization header must be 'Bearer <token>'".into(),
        )),
    }
}

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(secs, 0).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Verifies signature and expiry (`exp` is optional, as PostgREST treats it) and returns the claims.
fn verify<T: DeserializeOwned + Clone>(
    secret: &str,
    token: &str,
    now: i64,
    leeway_secs: i64,
    require_exp: bool,
) -> Result<Claims<T>, AppError> {
    let untrusted = UntrustedToken::new(token)
        .map_err(|_| AppError::Unauthorized("the bearer token is not a JWT".into()))?;
    let key = Hs256Key::new(secret.as_bytes());
    let verified = Hs256
        .validator::<T>(&key)
        .validate(&untrusted)
        .map_err(|e| {
            AppError::Unauthorized(match e {
                ValidationError::AlgorithmMismatch { actual, .. } => {
                    format!("the token is signed with {actual}; HS256 is required")
                }
                ValidationError::MalformedClaims(_) => "the token's claims are malformed".into(),
                _ => "the token's signature does not verify".into(),
            })
        })?;
    let claims = verified.claims().clone();
    let options = TimeOptions::new(Duration::seconds(leeway_secs), move || at(now));
    match claims.expiration {
        Some(_) => {
            claims
                .validate_expiration(&options)
                .map_err(|_| AppError::Unauthorized("the token has expired".into()))?;
        }
        None if require_exp => {
            return Err(AppError::Unauthorized("the token has no exp claim".into()));
        }
        None => {}
    }
    if claims.not_before.is_some() {
        claims
            .validate_maturity(&options)
            .map_err(|_| AppError::Unauthorized("the token is not valid yet (nbf)".into()))?;
    }
    Ok(claims)
}

/// Accepts only an HS256 token signed with `secret` whose `role` is `service_role`.
pub(crate) fn verify_service(secret: &str, token: &str, now: i64) -> Result<(), AppError> {
    let claims = verify::<RoleOnly>(secret, token, now, SERVICE_LEEWAY_SECS, false)?;
    match claims.custom.role.as_deref() {
        Some(SERVICE_ROLE) => Ok(()),
        Some(other) => Err(AppError::Unauthorized(format!(
            "the token's role is {other:?}; this endpoint needs the service role"
        ))),
        None => Err(AppError::Unauthorized(
            "the token has no role; this endpoint needs the service role".into(),
        )),
    }
}

/// Accepts a still-valid container token (no leeway) and returns its claims.
pub(crate) fn verify_container(
    secret: &str,
    token: &str,
    now: i64,
) -> Result<ContainerClaims, AppError> {
    // Parse the role first, so a wrong kind of token gets a precise message.
    let role = verify::<RoleOnly>(secret, token, now, 0, true)?.custom.role;
    if role.as_deref() != Some(CONTAINER_ROLE) {
        return Err(AppError::Unauthorized(format!(
            "the token's role is {:?}; only a container token ({CONTAINER_ROLE}) can be refreshed",
            role.unwrap_or_default()
        )));
    }
    let claims = verify::<ContainerClaims>(secret, token, now, 0, true)
        .map_err(|_| AppError::Unauthorized("the container token lacks required claims".into()))?
        .custom;
    if claims.sub != claims.session_id {
        return Err(AppError::Unauthorized(
            "the container token's sub and session_id differ".into(),
        ));
    }
    if !claims.scope.split(' ').any(|s| s == READ_SCOPE) {
        return Err(AppError::Unauthorized(format!(
            "the container token lacks the {READ_SCOPE} scope"
        )));
    }
    Ok(claims)
}

/// Mints a container token for `project_id`/`session_id` valid for `ttl_secs` from `now`.
pub(crate) fn mint_container(
    secret: &str,
    project_id: &str,
    session_id: &str,
    scope: &str,
    now: i64,
    ttl_secs: i64,
) -> Result<Minted, AppError> {
    let mut claims = Claims::new(ContainerClaims {
        role: CONTAINER_ROLE.to_owned(),
        sub: session_id.to_owned(),
        project_id: project_id.to_owned(),
        session_id: session_id.to_owned(),
        scope: scope.to_owned(),
    });
    claims.issued_at = Some(at(now));
    claims.expiration = Some(at(now + ttl_secs));
    let header = Header::empty().with_token_type("JWT");
    let token = Hs256
        .token(&header, &claims, &Hs256Key::new(secret.as_bytes()))
        .map_err(|e| AppError::Internal(format!("minting a container token: {e}")))?;
    Ok(Minted {
        token,
        expires_at: now + ttl_secs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "super-secret-jwt-token-with-at-least-32-characters-long";
    const NOW: i64 = 1_764_000_000;

    fn sign(claims: serde_json::Value, secret: &str) -> String {
        let serde_json::Value::Object(map) = claims else {
            unreachable!()
        };
        let claims = Claims::new(map);
        Hs256
            .token(&Header::empty(), &claims, &Hs256Key::new(secret.as_bytes()))
            .unwrap()
    }

    #[test]
    fn service_role_is_accepted_with_or_without_exp() {
        let t = sign(
            serde_json::json!({"role": "service_role", "exp": NOW + 60}),
            SECRET,
        );
        verify_service(SECRET, &t, NOW).unwrap();
        let t = sign(serde_json::json!({"role": "service_role"}), SECRET);
        verify_service(SECRET, &t, NOW).unwrap();
    }

    #[test]
    fn other_roles_wrong_secret_and_expired_are_refused() {
        let anon = sign(serde_json::json!({"role": "anon"}), SECRET);
        assert!(
            matches!(verify_service(SECRET, &anon, NOW), Err(AppError::Unauthorized(m)) if m.contains("anon"))
        );
        let forged = sign(
            serde_json::json!({"role": "service_role"}),
            "another-secret-of-sufficient-length-1234",
        );
        assert!(
            matches!(verify_service(SECRET, &forged, NOW), Err(AppError::Unauthorized(m)) if m.contains("signature"))
        );
        let expired = sign(
            serde_json::json!({"role": "service_role", "exp": NOW - 31}),
            SECRET,
        );
        assert!(
            matches!(verify_service(SECRET, &expired, NOW), Err(AppError::Unauthorized(m)) if m.contains("expired"))
        );
        let within_skew = sign(
            serde_json::json!({"role": "service_role", "exp": NOW - 29}),
            SECRET,
        );
        verify_service(SECRET, &within_skew, NOW).unwrap();
        assert!(verify_service(SECRET, "not-a-jwt", NOW).is_err());
    }

    #[test]
    fn minted_token_has_exactly_the_design_claims_and_refreshes() {
        let m = mint_container(SECRET, "p-1", "s-1", READ_SCOPE, NOW, 900).unwrap();
        assert_eq!(m.expires_at, NOW + 900);
        let untrusted = UntrustedToken::new(&m.token).unwrap();
        assert_eq!(untrusted.algorithm(), "HS256");
        let claims = untrusted
            .deserialize_claims_unchecked::<serde_json::Map<String, serde_json::Value>>()
            .unwrap();
        let mut keys: Vec<_> = claims.custom.keys().cloned().collect();
        keys.extend(["exp".to_owned(), "iat".to_owned()]);
        keys.sort();
        assert_eq!(
            keys,
            [
                "exp",
                "iat",
                "project_id",
                "role",
                "scope",
                "session_id",
                "sub"
            ]
        );
        let back = verify_container(SECRET, &m.token, NOW + 899).unwrap();
        assert_eq!(back.project_id, "p-1");
        assert_eq!(back.sub, "s-1");
        // Expired (no leeway for refresh).
        assert!(verify_container(SECRET, &m.token, NOW + 901).is_err());
    }

    #[test]
    fn refresh_refuses_service_and_scopeless_tokens() {
        let service = sign(
            serde_json::json!({"role": "service_role", "exp": NOW + 60}),
            SECRET,
        );
        assert!(
            matches!(verify_container(SECRET, &service, NOW), Err(AppError::Unauthorized(m)) if m.contains("only a container token"))
        );
        let m = mint_container(SECRET, "p", "s", "other:scope", NOW, 60).unwrap();
        assert!(
            matches!(verify_container(SECRET, &m.token, NOW), Err(AppError::Unauthorized(m)) if m.contains("scope"))
        );
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer(Some("Bearer abc".into())).unwrap(), "abc");
        assert_eq!(bearer(Some("bearer  abc ".into())).unwrap(), "abc");
        assert!(bearer(None).is_err());
        assert!(bearer(Some("Basic abc".into())).is_err());
        assert!(bearer(Some("Bearer ".into())).is_err());
    }
}
