//! Routing, the gateway's API-key check, JWT verification shared by the surfaces, error bodies,
//! CORS and the request log.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get, post};
use axum::Router;
use serde_json::{json, Value};

use crate::jwt::{self, Claims, JwtError};
use crate::{admin, auth, realtime, rest, storage, App};

/// The role a request ran as, put into response extensions for the request log.
#[derive(Clone)]
pub(crate) struct LogRole(pub(crate) String);

pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/rest/v1/rpc/{function}", any(rest::rpc))
        .route("/rest/v1/{table}", any(rest::table::table))
        .route(
            "/storage/v1/object/sign/{bucket}/{*path}",
            post(storage::sign).get(storage::get_signed),
        )
        .route(
            "/storage/v1/object/authenticated/{bucket}/{*path}",
            get(storage::download).head(storage::download),
        )
        .route(
            "/storage/v1/object/public/{bucket}/{*path}",
            get(storage::public_download).head(storage::public_download),
        )
        .route(
            "/storage/v1/object/{bucket}/{*path}",
            post(storage::upload)
                .put(storage::upload)
                .get(storage::download)
                .head(storage::download)
                .delete(storage::delete_one),
        )
        .route("/storage/v1/object/{bucket}", delete(storage::remove))
        .route("/realtime/v1/websocket", get(realtime::websocket))
        .merge(auth::routes())
        .merge(admin::routes(app.clone()))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(512 << 20))
        .layer(middleware::from_fn_with_state(app.clone(), log_and_cors))
        .with_state(app)
}

async fn not_found() -> Response {
    // Kong's answer for a path no route matches.
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        r#"{"message":"no Route matched with those values"}"#,
    )
        .into_response()
}

/// CORS as Supabase's gateway answers it, and one JSON log line per request.
async fn log_and_cors(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let preflight = method == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if preflight {
        let allow_headers = req
            .headers()
            .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .cloned()
            .unwrap_or_else(|| HeaderValue::from_static("*"));
        let mut r = StatusCode::OK.into_response();
        let h = r.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS"),
        );
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, allow_headers);
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("3600"),
        );
        r
    } else {
        next.run(req).await
    };
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Content-Range, Content-Profile, Proxy-Status, ETag"),
    );
    if app.request_log {
        let role = response.extensions().get::<LogRole>().map(|r| r.0.clone());
        // Fields in a fixed order: ts, method, path, status, duration_ms, role. The path has
        // no query string (it may carry an apikey or a signed-URL token).
        let line = format!(
            "{{\"ts\":{},\"method\":{},\"path\":{},\"status\":{},\"duration_ms\":{},\"role\":{}}}",
            Value::from(crate::timefmt::rfc3339(std::time::SystemTime::now())),
            Value::from(method.as_str()),
            Value::from(path),
            response.status().as_u16(),
            (start.elapsed().as_secs_f64() * 1e6).round() / 1e3,
            role.map_or(Value::Null, Value::from),
        );
        eprintln!("{line}");
    }
    response
}

/// Tags a response with the role it ran as (for the log).
pub(crate) fn with_role(mut response: Response, role: &str) -> Response {
    response.extensions_mut().insert(LogRole(role.to_owned()));
    response
}

/// The API key of a request: the `apikey` header, else the `apikey` query parameter (Kong's
/// key-auth looks in both).
pub(crate) fn api_key(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(v) = headers.get("apikey").and_then(|v| v.to_str().ok()) {
        return Some(v.to_owned());
    }
    query_param(query, "apikey")
}

/// One query parameter, percent-decoded.
pub(crate) fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query_pairs(query.unwrap_or(""))
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// `a=1&b=x%20y` → pairs, percent- and `+`-decoded.
pub(crate) fn query_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Why a request could not be attributed to a role.
pub(crate) enum AuthError {
    /// No `apikey` header or query parameter.
    NoApiKey,
    /// An `apikey` that is neither the anon nor the service-role key.
    BadApiKey,
    /// The bearer token failed verification.
    Jwt(JwtError),
}

/// Who is calling: the verified claims (with `role` filled in) and the token they came from.
pub(crate) struct Caller {
    pub(crate) role: String,
    pub(crate) claims: Claims,
    pub(crate) token: String,
}

impl Caller {
    /// The `sub` claim, if it is a string.
    pub(crate) fn sub(&self) -> Option<&str> {
        self.claims.get("sub").and_then(Value::as_str)
    }
}

/// The gateway's key check, then the bearer token (or, with no `Authorization`, the API key
/// itself, as supabase-js sends it) verified with `skew` seconds of clock leeway.
pub(crate) fn authenticate(
    app: &App,
    headers: &HeaderMap,
    query: Option<&str>,
    skew: i64,
) -> Result<Caller, AuthError> {
    let key = api_key(headers, query).ok_or(AuthError::NoApiKey)?;
    if key != app.info.anon_key && key != app.info.service_role_key {
        return Err(AuthError::BadApiKey);
    }
    let token = match headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        Some(v) if v.len() >= 6 && v[..6].eq_ignore_ascii_case("bearer") => {
            v[6..].trim().to_owned()
        }
        _ => key,
    };
    let mut claims =
        jwt::verify(&token, &app.info.jwt_secret, jwt::now(), skew).map_err(AuthError::Jwt)?;
    let role = match claims.get("role") {
        Some(Value::String(r)) => r.clone(),
        Some(Value::Null) | None => "anon".to_owned(),
        Some(other) => other.to_string(),
    };
    claims.insert("role".into(), Value::String(role.clone()));
    Ok(Caller {
        role,
        claims,
        token,
    })
}

/// The gateway's refusal for a missing or unknown API key.
pub(crate) fn gateway_refusal(err: &AuthError) -> Option<Response> {
    let body = match err {
        AuthError::NoApiKey => json!({
            "message": "No API key found in request",
            "hint": "No `apikey` request header or url param was found.",
        }),
        AuthError::BadApiKey => json!({
            "message": "Invalid API key",
            "hint": "Double check your Supabase `anon` or `service_role` API key.",
        }),
        AuthError::Jwt(_) => return None,
    };
    Some(json_response(StatusCode::UNAUTHORIZED, &body))
}

/// A JSON response.
pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

/// PostgREST's error response: `{code, details, hint, message}`, `Proxy-Status`, and for 401
/// a `WWW-Authenticate` challenge.
pub(crate) fn pgrst_error(
    status: StatusCode,
    code: &str,
    message: &str,
    details: Value,
    hint: Value,
    www_authenticate: Option<String>,
) -> Response {
    let body = json!({"code": code, "message": message, "details": details, "hint": hint});
    let mut r = json_response(status, &body);
    if let Ok(v) = HeaderValue::from_str(&format!("PostgREST; error={code}")) {
        r.headers_mut().insert("proxy-status", v);
    }
    if status == StatusCode::UNAUTHORIZED {
        let challenge = www_authenticate.unwrap_or_else(|| "Bearer".to_owned());
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
    }
    r
}

/// PostgREST's response for a JWT failure.
pub(crate) fn pgrst_jwt_error(err: &JwtError) -> Response {
    let message = err.pgrst_message();
    let challenge = format!(
        "Bearer error=\"invalid_token\", error_description={}",
        Value::String(message.clone())
    );
    pgrst_error(
        StatusCode::UNAUTHORIZED,
        err.pgrst_code(),
        &message,
        Value::Null,
        Value::Null,
        Some(challenge),
    )
}

/// The lower-cased request headers as a JSON object (PostgREST's `request.headers`).
pub(crate) fn headers_json(headers: &HeaderMap) -> String {
    let mut map = serde_json::Map::new();
    for (k, v) in headers {
        if let Ok(v) = v.to_str() {
            map.insert(k.as_str().to_ascii_lowercase(), Value::String(v.to_owned()));
        }
    }
    Value::Object(map).to_string()
}

/// An empty body with a status.
pub(crate) fn empty(status: StatusCode) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    r
}
