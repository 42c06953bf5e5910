//! `/auth/v1/…`: the Supabase Auth (GoTrue) routes that fs-sync's tools call through supabase-js
//! (`auth.admin.createUser`, `auth.admin.deleteUser`, `auth.signInWithPassword`), answered as
//! GoTrue answers them (supabase/auth `internal/api/admin.go`, `token.go`, `errors.go`):
//!
//! - `POST /auth/v1/admin/users {email, password?, email_confirm?, user_metadata?}` → 200, the
//!   user. A bearer token whose role is `service_role` (or `supabase_admin`) is required.
//! - `DELETE /auth/v1/admin/users/{id}` → 200 `{}` (same requirement).
//! - `POST /auth/v1/token?grant_type=password {email, password}` → 200 `{access_token,
//!   token_type, expires_in, expires_at, refresh_token, user}`; wrong credentials are 400
//!   `invalid_credentials` "Invalid login credentials".
//!
//! In front of them the gateway's key check, as Kong does it for `/auth/v1` on hosted Supabase.
//! Passwords are kept as GoTrue keeps them: a bcrypt hash (cost 10, `$2a$`) in
//! `auth.users.encrypted_password`. Errors have GoTrue's two shapes: `{code, message}` for
//! clients that send `X-Supabase-Api-Version: 2024-01-01` or later (supabase-js does), else
//! `{code: <status>, error_code, msg}`. Not served: refresh tokens (the `refresh_token` returned
//! cannot be exchanged), sign-up, phone logins, soft deletion and the rest of GoTrue's API.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{delete, post};
use axum::Router;
use serde_json::{json, Map, Value};

use crate::admin::{self, InsertError, NewUser};
use crate::http;
use crate::jwt::{self, JwtError};
use crate::App;

/// GoTrue's `bcrypt.DefaultCost` (Go's `golang.org/x/crypto/bcrypt`).
const BCRYPT_COST: u32 = 10;
/// GoTrue's default `GOTRUE_JWT_EXP`, as on hosted projects: one hour.
const ACCESS_TOKEN_SECS: i64 = 3600;
/// The roles GoTrue's admin API accepts (`GOTRUE_JWT_ADMIN_ROLES`).
const ADMIN_ROLES: [&str; 2] = ["service_role", "supabase_admin"];
/// GoTrue's `InvalidLoginMessage`: the same answer for an unknown address and a wrong password.
const INVALID_LOGIN: &str = "Invalid login credentials";
/// The API version supabase-js sends; from it on, errors are `{code, message}`.
const API_VERSION_2024: &str = "2024-01-01";
const API_VERSION_HEADER: &str = "x-supabase-api-version";
/// `AdminUserParams` fields of GoTrue that this stand-in does not implement: refused by name
/// rather than ignored, so a caller never gets a user other than the one it asked for.
const UNSUPPORTED_USER_FIELDS: [&str; 8] = [
    "id",
    "aud",
    "role",
    "phone",
    "phone_confirm",
    "password_hash",
    "app_metadata",
    "ban_duration",
];

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/auth/v1/admin/users", post(create_user))
        .route("/auth/v1/admin/users/{id}", delete(delete_user))
        .route("/auth/v1/token", post(token))
}

/// An error as GoTrue renders it for the request's API version.
struct AuthError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

type Answer = Result<Response, AuthError>;

fn auth_error(status: StatusCode, code: &'static str, message: impl Into<String>) -> AuthError {
    AuthError {
        status,
        code,
        message: message.into(),
    }
}

/// Whether the client asked for the 2024-01-01 API (GoTrue's `DetermineClosestAPIVersion`: a
/// `YYYY-MM-DD` date on or after it); anything else gets the initial one.
fn api_2024(headers: &HeaderMap) -> bool {
    headers
        .get(API_VERSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| chrono::NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d").ok())
        .is_some_and(|d| d.to_string().as_str() >= API_VERSION_2024)
}

impl AuthError {
    fn render(self, headers: &HeaderMap) -> Response {
        if api_2024(headers) {
            let mut r = http::json_response(
                self.status,
                &json!({"code": self.code, "message": self.message}),
            );
            r.headers_mut().insert(
                API_VERSION_HEADER,
                HeaderValue::from_static(API_VERSION_2024),
            );
            r
        } else {
            http::json_response(
                self.status,
                &json!({"code": self.status.as_u16(), "error_code": self.code, "msg": self.message}),
            )
        }
    }
}

/// Runs a handler's body and renders its error, tagging the request log with `role`.
fn finish(headers: &HeaderMap, role: &str, answer: Answer) -> Response {
    http::with_role(answer.unwrap_or_else(|e| e.render(headers)), role)
}

/// The gateway's key check: an `apikey` that is this project's anon or service-role key.
fn gateway(app: &App, headers: &HeaderMap, query: Option<&str>) -> Result<(), Response> {
    let refusal = match http::api_key(headers, query) {
        None => http::AuthError::NoApiKey,
        Some(k) if k == app.info.anon_key || k == app.info.service_role_key => return Ok(()),
        Some(_) => http::AuthError::BadApiKey,
    };
    Err(http::gateway_refusal(&refusal).expect("a key refusal has a response"))
}

/// GoTrue's `requireAdminCredentials`: a bearer token signed with the JWT secret whose role is
/// an admin role.
fn require_admin(app: &App, headers: &HeaderMap) -> Result<(), AuthError> {
    // GoTrue's bearerRegexp: `^(?:B|b)earer (\S+$)`.
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .filter(|t| !t.is_empty() && !t.contains(char::is_whitespace))
        .ok_or_else(|| {
            auth_error(
                StatusCode::UNAUTHORIZED,
                "no_authorization",
                "This endpoint requires a Bearer token",
            )
        })?;
    let claims = jwt::verify(token, &app.info.jwt_secret, jwt::now(), 0).map_err(|e| {
        auth_error(
            StatusCode::FORBIDDEN,
            "bad_jwt",
            format!(
                "invalid JWT: unable to parse or verify signature, {}",
                jwt_reason(&e)
            ),
        )
    })?;
    let role = claims.get("role").and_then(Value::as_str).unwrap_or("");
    if ADMIN_ROLES.contains(&role) {
        Ok(())
    } else {
        Err(auth_error(
            StatusCode::FORBIDDEN,
            "not_admin",
            "User not allowed",
        ))
    }
}

/// Why a token failed, in golang-jwt's words (GoTrue quotes them).
fn jwt_reason(e: &JwtError) -> String {
    match e {
        JwtError::Signature => "token signature is invalid: signature is invalid".into(),
        JwtError::Expired(_) => "token has invalid claims: token is expired".into(),
        JwtError::NotYetValid => "token has invalid claims: token is not valid yet".into(),
        JwtError::IssuedInFuture => "token has invalid claims: token used before issued".into(),
        JwtError::Empty | JwtError::Parts(_) | JwtError::Malformed => {
            "token is malformed: could not base64 decode or parse the token".into()
        }
        other => other.pgrst_message(),
    }
}

/// The request body as a JSON object (empty means `{}`), or GoTrue's `bad_json`.
fn json_body(bytes: &[u8]) -> Result<Map<String, Value>, AuthError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(other) => Err(bad_json(format!("expected a JSON object, got {other}"))),
        Err(e) => Err(bad_json(e.to_string())),
    }
}

fn bad_json(why: String) -> AuthError {
    auth_error(
        StatusCode::BAD_REQUEST,
        "bad_json",
        format!("Could not parse request body as JSON: {why}"),
    )
}

/// `body[key]` as a string: absent or null is `None`; another type is `bad_json` naming it.
fn string_field<'a>(body: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, AuthError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(bad_json(format!("{key} must be a string, not {other}"))),
    }
}

fn validation(message: impl Into<String>) -> AuthError {
    auth_error(StatusCode::BAD_REQUEST, "validation_failed", message)
}

/// GoTrue's `validateEmail`: at most 255 characters, and the format checkmail accepts
/// (`local@domain`, the local part of RFC 5322 atom characters and dots, the domain of
/// dot-separated labels of letters, digits and inner hyphens).
fn validate_email(email: &str) -> Result<(), AuthError> {
    if email.len() > 255 {
        return Err(validation("An email address is too long"));
    }
    let valid = email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && local
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".!#$%&'*+/=?^_`{|}~-".contains(c))
            && domain.split('.').all(|label| {
                (1..=63).contains(&label.len())
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            })
    });
    if valid {
        Ok(())
    } else {
        Err(validation(format!(
            "Unable to validate email address: invalid format ({email:?})"
        )))
    }
}

/// A bcrypt hash as GoTrue makes it; a password over bcrypt's 72 bytes is refused, as Go's
/// bcrypt refuses it.
async fn hash_password(password: String) -> Result<String, AuthError> {
    let hashed = tokio::task::spawn_blocking(move || {
        bcrypt::non_truncating_hash_with_result(password, BCRYPT_COST)
    })
    .await
    .map_err(|e| internal(format!("hashing the password: {e}")))?;
    match hashed {
        Ok(parts) => Ok(parts.format_for_version(bcrypt::Version::TwoA)),
        Err(bcrypt::BcryptError::Truncation(_)) => {
            Err(validation("bcrypt: password length exceeds 72 bytes"))
        }
        Err(e) => Err(internal(format!("hashing the password: {e}"))),
    }
}

fn internal(message: String) -> AuthError {
    auth_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "unexpected_failure",
        message,
    )
}

fn no_connection(e: &crate::pool::PoolError) -> AuthError {
    internal(format!("database: {e}"))
}

fn db_error(what: &str, e: &tokio_postgres::Error) -> AuthError {
    internal(format!("{what}: {}", fs_sync_pg::db_message(e)))
}

async fn create_user(
    State(app): State<Arc<App>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(refusal) = gateway(&app, &headers, query.as_deref()) {
        return refusal;
    }
    let answer = async {
        require_admin(&app, &headers)?;
        let body = json_body(&body)?;
        let unsupported: Vec<&str> = UNSUPPORTED_USER_FIELDS
            .into_iter()
            .filter(|k| body.get(*k).is_some_and(|v| !v.is_null()))
            .collect();
        if !unsupported.is_empty() {
            return Err(validation(format!(
                "fs-sync-dev's Auth does not support {} (it takes email, password, \
                 email_confirm, user_metadata)",
                unsupported.join(", ")
            )));
        }
        let Some(email) = string_field(&body, "email")?.filter(|e| !e.is_empty()) else {
            return Err(validation(
                "Cannot create a user without either an email or phone",
            ));
        };
        validate_email(email)?;
        let email_confirmed = match body.get("email_confirm") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(bad_json(format!(
                    "email_confirm must be a boolean, not {other}"
                )))
            }
        };
        let user_metadata = match body.get("user_metadata") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(other) => {
                return Err(bad_json(format!(
                    "user_metadata must be an object, not {other}"
                )))
            }
        };
        // No password: GoTrue sets a random one nobody knows; an empty hash is as unusable.
        let encrypted_password = match string_field(&body, "password")? {
            Some(p) if !p.is_empty() => hash_password(p.to_owned()).await?,
            _ => String::new(),
        };
        let user = NewUser {
            id: uuid::Uuid::new_v4(),
            email: email.to_lowercase(),
            encrypted_password,
            email_confirmed,
            user_metadata,
        };
        match admin::insert_user(&app, user, true).await {
            Ok(user) => Ok(http::json_response(StatusCode::OK, &user)),
            Err(InsertError::EmailExists) => Err(auth_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "email_exists",
                "A user with this email address has already been registered",
            )),
            Err(InsertError::Pool(e)) => Err(no_connection(&e)),
            Err(InsertError::Db(e)) => Err(db_error("Database error creating new user", &e)),
        }
    }
    .await;
    finish(&headers, "service_role", answer)
}

async fn delete_user(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(refusal) = gateway(&app, &headers, query.as_deref()) {
        return refusal;
    }
    let answer = async {
        require_admin(&app, &headers)?;
        let id: uuid::Uuid = id.parse().map_err(|_| {
            auth_error(
                StatusCode::NOT_FOUND,
                "validation_failed",
                format!("user_id must be an UUID (got {id:?})"),
            )
        })?;
        let body = json_body(&body)?;
        match body.get("should_soft_delete") {
            None | Some(Value::Null) | Some(Value::Bool(false)) => {}
            Some(Value::Bool(true)) => {
                return Err(validation(
                    "fs-sync-dev's Auth does not support soft deletion (should_soft_delete): \
                     delete the user outright",
                ))
            }
            Some(other) => {
                return Err(bad_json(format!(
                    "should_soft_delete must be a boolean, not {other}"
                )))
            }
        }
        let mut conn = app.admin_pool.get().await.map_err(|e| no_connection(&e))?;
        let deleted = async {
            let tx = conn.transaction().await?;
            tx.batch_execute("set local role supabase_auth_admin")
                .await?;
            let n = tx
                .execute("delete from auth.users where id = $1", &[&id])
                .await?;
            tx.commit().await?;
            Ok::<_, tokio_postgres::Error>(n)
        }
        .await
        .map_err(|e| db_error("Database error deleting user", &e))?;
        if deleted == 0 {
            return Err(auth_error(
                StatusCode::NOT_FOUND,
                "user_not_found",
                "User not found",
            ));
        }
        Ok(http::json_response(StatusCode::OK, &json!({})))
    }
    .await;
    finish(&headers, "service_role", answer)
}

async fn token(
    State(app): State<Arc<App>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(refusal) = gateway(&app, &headers, query.as_deref()) {
        return refusal;
    }
    let answer = async {
        match http::query_param(query.as_deref(), "grant_type").as_deref() {
            Some("password") => {}
            Some(other @ ("refresh_token" | "pkce" | "id_token" | "web3")) => {
                return Err(validation(format!(
                    "grant_type={other} is not supported by fs-sync-dev's Auth (password only)"
                )))
            }
            // GoTrue's answer for a grant type it does not know.
            _ => {
                return Err(auth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_credentials",
                    "unsupported_grant_type",
                ))
            }
        }
        let body = json_body(&body)?;
        let email = string_field(&body, "email")?.unwrap_or("");
        let phone = string_field(&body, "phone")?.unwrap_or("");
        let password = string_field(&body, "password")?.unwrap_or("").to_owned();
        match (email.is_empty(), phone.is_empty()) {
            (false, false) => {
                return Err(validation(
                    "Only an email address or phone number should be provided on login.",
                ))
            }
            (true, false) => {
                return Err(auth_error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "phone_provider_disabled",
                    "Phone logins are disabled",
                ))
            }
            (true, true) => return Err(validation("missing email or phone")),
            (false, true) => {}
        }
        let conn = app.admin_pool.get().await.map_err(|e| no_connection(&e))?;
        // Users made by /admin/v1/users may share an address and have no password: the one with
        // a password answers.
        let found = conn
            .query_opt(
                "select u.id, coalesce(u.encrypted_password, ''), u.email_confirmed_at is not null
                   from auth.users u
                  where lower(u.email) = lower($1) and u.aud = 'authenticated'
                  order by coalesce(u.encrypted_password, '') = '', u.created_at
                  limit 1",
                &[&email],
            )
            .await
            .map_err(|e| db_error("Database error querying schema", &e))?;
        let invalid = || {
            auth_error(
                StatusCode::BAD_REQUEST,
                "invalid_credentials",
                INVALID_LOGIN,
            )
        };
        let Some(row) = found else {
            return Err(invalid());
        };
        let (id, hash, confirmed): (uuid::Uuid, String, bool) =
            (row.get(0), row.get(1), row.get(2));
        if hash.is_empty() {
            return Err(invalid());
        }
        let verified = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash))
            .await
            .map_err(|e| internal(format!("checking the password: {e}")))?
            .map_err(|e| {
                internal(format!(
                    "auth.users.encrypted_password of user {id} is not a bcrypt hash: {e}"
                ))
            })?;
        if !verified {
            return Err(invalid());
        }
        if !confirmed {
            return Err(auth_error(
                StatusCode::BAD_REQUEST,
                "email_not_confirmed",
                "Email not confirmed",
            ));
        }
        let user = conn
            .query_one(
                &format!(
                    "update auth.users u set last_sign_in_at = now() where u.id = $1 returning {}",
                    admin::user_select()
                ),
                &[&id],
            )
            .await
            .map_err(|e| db_error("Database error granting user", &e))?;
        let user = admin::user_json(user.get(0));
        let (access_token, expires_at) = admin::user_token(&app, &user, ACCESS_TOKEN_SECS);
        let refresh_token = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        Ok(http::json_response(
            StatusCode::OK,
            &json!({
                "access_token": access_token,
                "token_type": "bearer",
                "expires_in": ACCESS_TOKEN_SECS,
                "expires_at": expires_at,
                "refresh_token": refresh_token,
                "user": user,
            }),
        ))
    }
    .await;
    finish(&headers, "anon", answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_format_as_gotrue_checks_it() {
        for ok in [
            "a@example.com",
            "first.last+tag@sub.example.co",
            "x@localhost",
        ] {
            assert!(validate_email(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "no-at",
            "@example.com",
            "a@",
            "a b@example.com",
            "a@-x.com",
            "a@x..com",
        ] {
            let e = validate_email(bad).unwrap_err();
            assert_eq!(e.code, "validation_failed", "{bad}");
            assert!(e.message.contains("invalid format"), "{bad}: {}", e.message);
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(
            validate_email(&long).unwrap_err().message,
            "An email address is too long"
        );
    }

    #[test]
    fn api_version_picks_the_error_shape() {
        let mut h = HeaderMap::new();
        assert!(!api_2024(&h));
        for (v, new) in [
            ("2024-01-01", true),
            ("2025-06-30", true),
            ("2023-12-31", false),
            ("soon", false),
        ] {
            h.insert(API_VERSION_HEADER, HeaderValue::from_static(v));
            assert_eq!(api_2024(&h), new, "{v}");
        }
    }
}
