//! `/storage/v1/object/…`: Supabase Storage's object routes over a local folder.
//!
//! Rows in `storage.objects` are read and written in a transaction on an `authenticator`
//! connection with the caller's role and claims set as Storage sets them (role,
//! request.jwt.claim.role, request.jwt, request.jwt.claim.sub, request.jwt.claims,
//! request.headers, request.method, request.path, storage.operation), so the bucket policies
//! decide. Bucket lookups (limits, MIME types) run as the superuser, as Storage's
//! `asSuperUser()` does. Object bytes live at `<dir>/<bucket hex>/<name hash>/<version>`: every
//! upload writes a new version file first, and older versions are removed after commit.
//!
//! Errors use Storage's body `{statusCode, code, error, message}` and its HTTP status rule:
//! 500 stays 500, every other error is sent as 400 with the real status in `statusCode`.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use md5::{Digest as _, Md5};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::http::{self, Caller};
use crate::jwt::{self, JwtError};
use crate::App;

/// Storage's error response.
fn error(status: u16, code: &str, message: &str) -> Response {
    let body = json!({
        "statusCode": status.to_string(),
        "code": code,
        "error": code,
        "message": message,
    });
    let http_status = if status == 500 {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::BAD_REQUEST
    };
    http::json_response(http_status, &body)
}

fn no_such_bucket() -> Response {
    error(404, "NoSuchBucket", "Bucket not found")
}

fn no_such_key() -> Response {
    error(404, "NoSuchKey", "Object not found")
}

fn internal(e: impl std::fmt::Display) -> Response {
    error(500, "InternalError", &format!("Internal server error: {e}"))
}

/// A database error as Storage maps it.
fn db_error(e: &tokio_postgres::Error) -> Response {
    match e.as_db_error() {
        Some(db) => match db.code().code() {
            "42501" => error(
                403,
                "AccessDenied",
                "new row violates row-level security policy",
            ),
            "23505" => error(409, "ResourceAlreadyExists", "The resource already exists"),
            "22023" => error(400, "InvalidJWT", db.message()),
            "23503" => error(404, "InvalidRequest", "The related resource does not exist"),
            _ => error(500, "DatabaseError", db.message()),
        },
        None => internal(e),
    }
}

fn jwt_message(e: &JwtError) -> &'static str {
    // The wording of the jsonwebtoken package Storage verifies with.
    match e {
        JwtError::Expired(_) => "jwt expired",
        JwtError::Signature => "invalid signature",
        JwtError::Algorithm(_) => "invalid algorithm",
        JwtError::NotYetValid => "jwt not active",
        JwtError::Empty | JwtError::Parts(_) | JwtError::Malformed => "jwt malformed",
        _ => "invalid token",
    }
}

/// The caller of an authenticated Storage route: the bearer token, else the `apikey`.
fn caller(app: &App, headers: &HeaderMap, query: Option<&str>) -> Result<Caller, Response> {
    // Storage itself checks the JWT; the gateway does not require the key on /storage/v1.
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            (v.len() >= 6 && v[..6].eq_ignore_ascii_case("bearer"))
                .then(|| v[6..].trim().to_owned())
        });
    let token = match bearer.or_else(|| http::api_key(headers, query)) {
        Some(t) => t,
        None => {
            return Err(error(
                400,
                "InvalidJWT",
                "headers must have required property 'authorization'",
            ))
        }
    };
    let mut claims = jwt::verify(&token, &app.info.jwt_secret, jwt::now(), 0)
        .map_err(|e| error(400, "InvalidJWT", jwt_message(&e)))?;
    let role = match claims.get("role") {
        Some(Value::String(r)) => r.clone(),
        _ => "anon".to_owned(),
    };
    claims.insert("role".into(), Value::String(role.clone()));
    Ok(Caller {
        role,
        claims,
        token,
    })
}

struct Bucket {
    public: bool,
    file_size_limit: Option<i64>,
    allowed_mime_types: Option<Vec<String>>,
}

async fn bucket(app: &App, id: &str) -> Result<Option<Bucket>, Response> {
    let conn = app.admin_pool.get().await.map_err(|e| internal(&e))?;
    let row = conn
        .query_opt(
            "select coalesce(public, false), file_size_limit, allowed_mime_types
               from storage.buckets where id = $1",
            &[&id],
        )
        .await
        .map_err(|e| db_error(&e))?;
    Ok(row.map(|r| Bucket {
        public: r.get(0),
        file_size_limit: r.get(1),
        allowed_mime_types: r.get(2),
    }))
}

/// Storage's key rule (`isValidKey`), loosely: no empty name, no control characters.
fn valid_key(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('/')
        && !name.chars().any(|c| c.is_control())
        && name.split('/').all(|s| s != ".." && s != ".")
}

fn object_dir(app: &App, bucket: &str, name: &str) -> PathBuf {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    app.storage_dir
        .join(hex::encode(bucket.as_bytes()))
        .join(hex::encode(&h.finalize()[..16]))
}

/// Runs `f` in a transaction with the caller's role and claims set as Storage sets them.
async fn as_caller<T, F>(
    app: &App,
    caller: &Caller,
    method: &Method,
    path: &str,
    operation: &str,
    headers: &HeaderMap,
    f: F,
) -> Result<T, Response>
where
    F: for<'a> FnOnce(
        &'a tokio_postgres::Transaction<'a>,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<T, tokio_postgres::Error>> + Send + 'a>,
    >,
{
    let mut conn = app.rest_pool.get().await.map_err(|e| internal(&e))?;
    let result = async {
        let tx = conn.transaction().await?;
        let sub = caller.sub().unwrap_or("").to_owned();
        let names: Vec<&str> = vec![
            "role",
            "request.jwt.claim.role",
            "request.jwt",
            "request.jwt.claim.sub",
            "request.jwt.claims",
            "request.headers",
            "request.method",
            "request.path",
            "storage.operation",
            "storage.allow_delete_query",
        ];
        let values: Vec<String> = vec![
            caller.role.clone(),
            caller.role.clone(),
            caller.token.clone(),
            sub,
            Value::Object(caller.claims.clone()).to_string(),
            http::headers_json(headers),
            method.as_str().to_owned(),
            path.to_owned(),
            operation.to_owned(),
            "true".to_owned(),
        ];
        tx.query(
            "select set_config(k, v, true) from unnest($1::text[], $2::text[]) with ordinality as s(k, v, n) order by s.n",
            &[&names, &values],
        )
        .await?;
        let out = f(&tx).await?;
        tx.commit().await?;
        Ok::<T, tokio_postgres::Error>(out)
    }
    .await;
    match result {
        Ok(v) => Ok(v),
        Err(e) => {
            if e.as_db_error().is_none() {
                crate::pool::discard(conn);
            }
            Err(db_error(&e))
        }
    }
}

/// Storage's MIME rule: `type/*` or an exact `type/subtype` match of the whole header value.
fn mime_allowed(mime: &str, allowed: &[String]) -> bool {
    let (t, ext) = mime.split_once('/').unwrap_or((mime, ""));
    allowed.iter().any(|a| {
        let (at, aext) = a.split_once('/').unwrap_or((a, ""));
        at == t && (aext == "*" || aext == ext)
    })
}

/// POST/PUT `/object/<bucket>/<path>`: raw body or multipart/form-data; `x-upsert` on POST,
/// PUT always replaces.
pub(crate) async fn upload(
    State(app): State<Arc<App>>,
    Path((bucket_id, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    req: Request,
) -> Response {
    let method = req.method().clone();
    let headers = req.headers().clone();
    let caller = match caller(&app, &headers, query.as_deref()) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let role = caller.role.clone();
    let r = upload_inner(&app, &caller, &method, &headers, &bucket_id, &name, req).await;
    http::with_role(r.unwrap_or_else(|e| e), &role)
}

#[allow(clippy::too_many_arguments)]
async fn upload_inner(
    app: &App,
    caller: &Caller,
    method: &Method,
    headers: &HeaderMap,
    bucket_id: &str,
    name: &str,
    req: Request,
) -> Result<Response, Response> {
    if !valid_key(name) {
        return Err(error(400, "InvalidKey", &format!("Invalid key: {name}")));
    }
    let upsert = *method == Method::PUT
        || headers
            .get("x-upsert")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let mut cache_control = headers
        .get(header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut user_metadata: Option<Value> = None;
    let (bytes, mime) = if content_type.starts_with("multipart/form-data") {
        let mut form = Multipart::from_request(req, &())
            .await
            .map_err(|e| error(400, "InvalidRequest", &e.body_text()))?;
        let mut file: Option<(Bytes, String)> = None;
        while let Some(field) = form
            .next_field()
            .await
            .map_err(|e| error(400, "InvalidRequest", &e.body_text()))?
        {
            let field_name = field.name().unwrap_or("").to_owned();
            if field.file_name().is_some() || (field_name.is_empty() && file.is_none()) {
                let mime = field
                    .content_type()
                    .unwrap_or("application/octet-stream")
                    .to_owned();
                let data = field
                    .bytes()
                    .await
                    .map_err(|e| error(400, "InvalidRequest", &e.body_text()))?;
                if file.is_none() {
                    file = Some((data, mime));
                }
            } else {
                let text = field.text().await.unwrap_or_default();
                match field_name.as_str() {
                    "cacheControl" => cache_control = Some(format!("max-age={text}")),
                    "metadata" => user_metadata = serde_json::from_str(&text).ok(),
                    _ => {}
                }
            }
        }
        file.ok_or_else(|| error(400, "InvalidRequest", "No content provided"))?
    } else {
        let body = axum::body::to_bytes(req.into_body(), usize::MAX)
            .await
            .map_err(|e| error(400, "InvalidRequest", &e.to_string()))?;
        let mime = if content_type.is_empty() {
            "application/octet-stream".to_owned()
        } else {
            content_type.clone()
        };
        if let Some(m) = headers.get("x-metadata").and_then(|v| v.to_str().ok()) {
            use base64::Engine as _;
            user_metadata = base64::engine::general_purpose::STANDARD
                .decode(m)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
        }
        (body, mime)
    };

    let bucket = bucket(app, bucket_id).await?.ok_or_else(no_such_bucket)?;
    if let Some(limit) = bucket.file_size_limit {
        if bytes.len() as i64 > limit {
            return Err(error(
                413,
                "EntityTooLarge",
                "The object exceeded the maximum allowed size",
            ));
        }
    }
    if let Some(allowed) = bucket.allowed_mime_types.as_deref() {
        if !allowed.is_empty() && !mime_allowed(&mime, allowed) {
            return Err(error(
                415,
                "InvalidMimeType",
                &format!("mime type {mime} is not supported"),
            ));
        }
    }

    let version = uuid::Uuid::new_v4().to_string();
    let dir = object_dir(app, bucket_id, name);
    let file = dir.join(&version);
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| internal(&e))?;
    tokio::fs::write(&file, &bytes)
        .await
        .map_err(|e| internal(&e))?;

    let now = std::time::SystemTime::now();
    let etag = format!("\"{}\"", hex::encode(Md5::digest(&bytes)));
    let metadata = json!({
        "eTag": etag,
        "size": bytes.len(),
        "mimetype": mime,
        "cacheControl": cache_control.unwrap_or_else(|| "no-cache".to_owned()),
        "lastModified": crate::timefmt::rfc3339(now),
        "contentLength": bytes.len(),
        "httpStatusCode": 200,
    });
    let sub = caller.sub().map(str::to_owned);
    let owner: Option<uuid::Uuid> = sub.as_deref().and_then(|s| s.parse().ok());
    let (b, n, v, m, um) = (
        bucket_id.to_owned(),
        name.to_owned(),
        version.clone(),
        metadata,
        user_metadata,
    );
    let path = format!("/object/{bucket_id}/{name}");
    let result = as_caller(app, caller, &Method::POST, &path, "storage.object.upload", headers, move |tx| {
        Box::pin(async move {
            let sql = if upsert {
                "insert into storage.objects (bucket_id, name, owner, owner_id, metadata, version, user_metadata)
                 values ($1, $2, $3, $4, $5, $6, $7)
                 on conflict (bucket_id, name) do update
                   set owner = excluded.owner, owner_id = excluded.owner_id, metadata = excluded.metadata,
                       version = excluded.version, user_metadata = excluded.user_metadata,
                       updated_at = now(), last_accessed_at = now()
                 returning id::text"
            } else {
                "insert into storage.objects (bucket_id, name, owner, owner_id, metadata, version, user_metadata)
                 values ($1, $2, $3, $4, $5, $6, $7)
                 returning id::text"
            };
            let row = tx
                .query_one(sql, &[&b, &n, &owner, &sub, &m, &v, &um])
                .await?;
            Ok(row.get::<_, String>(0))
        })
    })
    .await;
    let id = match result {
        Ok(id) => id,
        Err(r) => {
            let _ = tokio::fs::remove_file(&file).await;
            return Err(r);
        }
    };
    remove_other_versions(&dir, &version).await;
    Ok(http::json_response(
        StatusCode::OK,
        &json!({"Id": id, "Key": format!("{bucket_id}/{name}")}),
    ))
}

async fn remove_other_versions(dir: &std::path::Path, keep: &str) {
    if let Ok(mut entries) = tokio::fs::read_dir(dir).await {
        while let Ok(Some(e)) = entries.next_entry().await {
            if e.file_name().to_str() != Some(keep) {
                let _ = tokio::fs::remove_file(e.path()).await;
            }
        }
    }
}

/// POST `/object/sign/<bucket>/<path>` `{expiresIn}`: a signed download URL. The caller must be
/// able to SELECT the object under RLS.
pub(crate) async fn sign(
    State(app): State<Arc<App>>,
    Path((bucket_id, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let caller = match caller(&app, &headers, query.as_deref()) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let role = caller.role.clone();
    let r = async {
        let body: Value = serde_json::from_slice(&body)
            .map_err(|_| error(400, "InvalidRequest", "body must be JSON"))?;
        let expires_in = body
            .get("expiresIn")
            .and_then(Value::as_i64)
            .filter(|e| *e >= 1)
            .ok_or_else(|| error(400, "InvalidRequest", "body/expiresIn must be >= 1"))?;
        bucket(&app, &bucket_id).await?.ok_or_else(no_such_bucket)?;
        find_object(&app, &caller, &method, &headers, &bucket_id, &name).await?;
        let now = jwt::now();
        let token = jwt::sign(
            &json!({
                "url": format!("{bucket_id}/{name}"),
                "scope": "download",
                "iat": now,
                "exp": now + expires_in,
            }),
            &app.info.jwt_secret,
        );
        Ok::<_, Response>(http::json_response(
            StatusCode::OK,
            &json!({
                // Unencoded, as Storage returns it: storage-js applies encodeURI to the whole URL.
                "signedURL": format!("/object/sign/{bucket_id}/{name}?token={token}")
            }),
        ))
    }
    .await;
    http::with_role(r.unwrap_or_else(|e| e), &role)
}

struct Object {
    version: Option<String>,
    metadata: Value,
    updated_at: std::time::SystemTime,
}

/// The object as the caller sees it under RLS.
async fn find_object(
    app: &App,
    caller: &Caller,
    method: &Method,
    headers: &HeaderMap,
    bucket_id: &str,
    name: &str,
) -> Result<Object, Response> {
    let (b, n) = (bucket_id.to_owned(), name.to_owned());
    let path = format!("/object/{bucket_id}/{name}");
    let row = as_caller(app, caller, method, &path, "storage.object.get", headers, move |tx| {
        Box::pin(async move {
            tx.query_opt(
                "select version, coalesce(metadata, '{}'::jsonb), extract(epoch from coalesce(updated_at, now()))::float8
                   from storage.objects where bucket_id = $1 and name = $2",
                &[&b, &n],
            )
            .await
        })
    })
    .await?;
    row.map(object_from_row).ok_or_else(no_such_key)
}

fn object_from_row(r: tokio_postgres::Row) -> Object {
    let epoch: f64 = r.get(2);
    Object {
        version: r.get(0),
        metadata: r.get(1),
        updated_at: std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(epoch.max(0.0)),
    }
}

async fn serve(
    app: &App,
    bucket_id: &str,
    name: &str,
    object: Object,
    query: Option<&str>,
    head: bool,
) -> Response {
    let Some(version) = object.version else {
        return no_such_key();
    };
    let file = object_dir(app, bucket_id, name).join(version);
    let bytes = match tokio::fs::read(&file).await {
        Ok(b) => b,
        Err(_) => return no_such_key(),
    };
    let meta = |k: &str| {
        object
            .metadata
            .get(k)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let mut r = if head {
        Response::new(Body::empty())
    } else {
        Response::new(Body::from(bytes.clone()))
    };
    let h = r.headers_mut();
    let mut set = |k: header::HeaderName, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    };
    set(
        header::CONTENT_TYPE,
        meta("mimetype").unwrap_or_else(|| "application/octet-stream".into()),
    );
    set(header::CONTENT_LENGTH, bytes.len().to_string());
    set(
        header::CACHE_CONTROL,
        meta("cacheControl").unwrap_or_else(|| "no-cache".into()),
    );
    if let Some(etag) = meta("eTag") {
        set(header::ETAG, etag);
    }
    set(
        header::LAST_MODIFIED,
        crate::timefmt::http_date(object.updated_at),
    );
    if let Some(download) = http::query_param(query, "download") {
        let file_name = if download.is_empty() {
            name.rsplit('/').next().unwrap_or(name).to_owned()
        } else {
            download
        };
        set(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{}\"", file_name.replace('"', "")),
        );
    }
    r
}

/// GET/HEAD `/object/<bucket>/<path>` and `/object/authenticated/<bucket>/<path>`, under RLS.
pub(crate) async fn download(
    State(app): State<Arc<App>>,
    Path((bucket_id, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let caller = match caller(&app, &headers, query.as_deref()) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let role = caller.role.clone();
    let r = async {
        bucket(&app, &bucket_id).await?.ok_or_else(no_such_bucket)?;
        let object = find_object(&app, &caller, &method, &headers, &bucket_id, &name).await?;
        Ok::<_, Response>(
            serve(
                &app,
                &bucket_id,
                &name,
                object,
                query.as_deref(),
                method == Method::HEAD,
            )
            .await,
        )
    }
    .await;
    http::with_role(r.unwrap_or_else(|e| e), &role)
}

/// GET/HEAD `/object/public/<bucket>/<path>`: public buckets only, no token.
pub(crate) async fn public_download(
    State(app): State<Arc<App>>,
    Path((bucket_id, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    method: Method,
) -> Response {
    let r = async {
        let b = bucket(&app, &bucket_id).await?.ok_or_else(no_such_bucket)?;
        if !b.public {
            return Err(no_such_bucket());
        }
        let object = superuser_object(&app, &bucket_id, &name).await?;
        Ok(serve(
            &app,
            &bucket_id,
            &name,
            object,
            query.as_deref(),
            method == Method::HEAD,
        )
        .await)
    }
    .await;
    r.unwrap_or_else(|e| e)
}

async fn superuser_object(app: &App, bucket_id: &str, name: &str) -> Result<Object, Response> {
    let conn = app.admin_pool.get().await.map_err(|e| internal(&e))?;
    let row = conn
        .query_opt(
            "select version, coalesce(metadata, '{}'::jsonb), extract(epoch from coalesce(updated_at, now()))::float8
               from storage.objects where bucket_id = $1 and name = $2",
            &[&bucket_id, &name],
        )
        .await
        .map_err(|e| db_error(&e))?;
    row.map(object_from_row).ok_or_else(no_such_key)
}

/// GET `/object/sign/<bucket>/<path>?token=<jwt>`: the token is the authorization.
pub(crate) async fn get_signed(
    State(app): State<Arc<App>>,
    Path((bucket_id, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    method: Method,
) -> Response {
    let Some(token) = http::query_param(query.as_deref(), "token") else {
        return error(400, "InvalidSignature", "Missing token");
    };
    let claims = match jwt::decode(&token, &app.info.jwt_secret) {
        Ok(c) => c,
        Err(_) => return error(400, "InvalidSignature", "Invalid signature"),
    };
    let scope_ok = match claims.get("scope").and_then(Value::as_str) {
        Some(s) => s == "download",
        None => !claims.contains_key("upsert"),
    };
    let url_ok = claims.get("url").and_then(Value::as_str) == Some(&format!("{bucket_id}/{name}"));
    if !scope_ok || !url_ok {
        return error(400, "InvalidSignature", "Invalid signature");
    }
    if let Some(exp) = claims.get("exp").and_then(Value::as_i64) {
        if exp <= jwt::now() {
            return error(400, "ExpiredToken", "The provided token has expired.");
        }
    }
    match superuser_object(&app, &bucket_id, &name).await {
        Ok(object) => {
            serve(
                &app,
                &bucket_id,
                &name,
                object,
                query.as_deref(),
                method == Method::HEAD,
            )
            .await
        }
        Err(r) => r,
    }
}

/// DELETE `/object/<bucket>/<path>`, under RLS.
pub(crate) async fn delete_one(
    State(app): State<Arc<App>>,
    Path((bucket_id, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let caller = match caller(&app, &headers, query.as_deref()) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let role = caller.role.clone();
    let r = async {
        bucket(&app, &bucket_id).await?.ok_or_else(no_such_bucket)?;
        let deleted =
            delete_names(&app, &caller, &method, &headers, &bucket_id, vec![name]).await?;
        if deleted.is_empty() {
            return Err(no_such_key());
        }
        Ok(http::json_response(
            StatusCode::OK,
            &json!({"message": "Successfully deleted"}),
        ))
    }
    .await;
    http::with_role(r.unwrap_or_else(|e| e), &role)
}

/// DELETE `/object/<bucket>` `{prefixes: [...]}` (storage-js `remove`): the deleted objects.
pub(crate) async fn remove(
    State(app): State<Arc<App>>,
    Path(bucket_id): Path<String>,
    RawQuery(query): RawQuery,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let caller = match caller(&app, &headers, query.as_deref()) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let role = caller.role.clone();
    let r = async {
        let names: Vec<String> = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.get("prefixes").cloned())
            .and_then(|p| serde_json::from_value(p).ok())
            .ok_or_else(|| {
                error(
                    400,
                    "InvalidRequest",
                    "body must have required property 'prefixes'",
                )
            })?;
        bucket(&app, &bucket_id).await?.ok_or_else(no_such_bucket)?;
        let deleted = delete_names(&app, &caller, &method, &headers, &bucket_id, names).await?;
        Ok(http::json_response(StatusCode::OK, &Value::Array(deleted)))
    }
    .await;
    http::with_role(r.unwrap_or_else(|e| e), &role)
}

async fn delete_names(
    app: &App,
    caller: &Caller,
    method: &Method,
    headers: &HeaderMap,
    bucket_id: &str,
    names: Vec<String>,
) -> Result<Vec<Value>, Response> {
    let b = bucket_id.to_owned();
    let path = format!("/object/{bucket_id}");
    let rows = as_caller(app, caller, method, &path, "storage.object.delete", headers, move |tx| {
        Box::pin(async move {
            tx.query(
                "delete from storage.objects where bucket_id = $1 and name = any($2)
                 returning jsonb_build_object('bucket_id', bucket_id, 'name', name, 'id', id,
                   'owner', owner, 'owner_id', owner_id, 'version', version, 'metadata', metadata,
                   'created_at', created_at, 'updated_at', updated_at, 'last_accessed_at', last_accessed_at)",
                &[&b, &names],
            )
            .await
        })
    })
    .await?;
    let mut out = Vec::new();
    for r in rows {
        let v: Value = r.get(0);
        if let Some(n) = v.get("name").and_then(Value::as_str) {
            let _ = tokio::fs::remove_dir_all(object_dir(app, bucket_id, n)).await;
        }
        out.push(v);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mime_rule() {
        let allowed = vec!["application/zip".to_owned(), "image/*".to_owned()];
        assert!(mime_allowed("application/zip", &allowed));
        assert!(mime_allowed("image/png", &allowed));
        assert!(!mime_allowed("text/plain", &allowed));
        assert!(!mime_allowed("application/zip;x=1", &allowed));
    }
}
