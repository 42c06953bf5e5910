//! `/admin/v1/…`: local-only helpers for demos and tests, service-role key required.
//!
//! - `POST /admin/v1/users {email}` → `{id, email, access_token, expires_at}`
//! - `POST /admin/v1/token {user_id, expires_in?}` → `{access_token, expires_at}`
//!   (`expires_in` in seconds, default 3600; zero or negative makes an already expired token)
//! - `POST /admin/v1/projects {owner_id, name}` → `{id}` (runs `fsync.create_project` as a
//!   service caller)
//! - `POST /admin/v1/members {project_id, user_id, role}` → `{}` (`fsync.set_project_member`)
//! - `POST /admin/v1/faults/drop-websockets` → `{dropped}`: every socket closes abruptly
//! - `POST /admin/v1/faults/pause-delivery {mode?: "hold"|"drop"}` → `{mode}`: committed
//!   messages are held (default) or dropped until resume
//! - `POST /admin/v1/faults/resume-delivery` → `{delivered, dropped}`: held messages go out
//!   first, in commit order
//! - `GET /admin/v1/faults` → `{mode, delivered, dropped, held}`: the delivery mode (`live`,
//!   `hold` or `drop`), the messages fanned out and lost to the drop fault since the start, and
//!   those held now; a test waits on these instead of sleeping until the stack has handled a
//!   message

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use crate::http;
use crate::jwt;
use crate::pool::PoolError;
use crate::App;

/// The admin routes, each behind [`service_only`].
pub(crate) fn routes(app: Arc<App>) -> Router<Arc<App>> {
    Router::new()
        .route("/admin/v1/users", post(create_user))
        .route("/admin/v1/token", post(token))
        .route("/admin/v1/projects", post(create_project))
        .route("/admin/v1/members", post(add_member))
        .route("/admin/v1/faults/drop-websockets", post(drop_websockets))
        .route("/admin/v1/faults/pause-delivery", post(pause_delivery))
        .route("/admin/v1/faults/resume-delivery", post(resume_delivery))
        .route("/admin/v1/faults", get(delivery_status))
        .route_layer(middleware::from_fn_with_state(app, service_only))
}

/// Refuses callers without the service-role key; the request log names the role either way.
async fn service_only(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let response = match require_service(&app, req.headers(), req.uri().query()) {
        Ok(()) => next.run(req).await,
        Err(refusal) => refusal,
    };
    http::with_role(response, "service_role")
}

/// An admin request's JSON body (an empty body reads as `{}`); a bad one is a 400 naming why.
struct Body(Value);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Body(json!({})));
        }
        serde_json::from_slice(&bytes)
            .map(Body)
            .map_err(|e| admin_error(StatusCode::BAD_REQUEST, &format!("invalid JSON body: {e}")))
    }
}

type Answer = Result<Response, Response>;

fn admin_error(status: StatusCode, message: &str) -> Response {
    http::json_response(status, &json!({"error": message}))
}

/// The service-role key as bearer token or `apikey`; anything else is refused.
fn require_service(app: &App, headers: &HeaderMap, query: Option<&str>) -> Result<(), Response> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::to_owned);
    let key = http::api_key(headers, query);
    let ok = |t: &Option<String>| t.as_deref() == Some(app.info.service_role_key.as_str());
    // The bearer token decides when there is one; otherwise the apikey.
    if ok(&bearer) || (bearer.is_none() && ok(&key)) {
        Ok(())
    } else {
        Err(admin_error(
            StatusCode::UNAUTHORIZED,
            "the admin API needs the service_role key (Authorization: Bearer or apikey)",
        ))
    }
}

/// No connection to be had: 503 with the pool's reason.
fn no_connection(e: &PoolError) -> Response {
    admin_error(StatusCode::SERVICE_UNAVAILABLE, &format!("database: {e}"))
}

fn db_failure(e: &tokio_postgres::Error) -> Response {
    let status = match e.as_db_error() {
        Some(db) => crate::rest::status_for(db, true),
        None => StatusCode::SERVICE_UNAVAILABLE,
    };
    admin_error(status, &fs_sync_pg::db_message(e))
}

/// A user for [`insert_user`].
pub(crate) struct NewUser {
    pub(crate) id: uuid::Uuid,
    pub(crate) email: String,
    /// GoTrue's `encrypted_password`: a bcrypt hash, or empty for a user with no password (who
    /// cannot sign in with one).
    pub(crate) encrypted_password: String,
    /// The address counts as confirmed (`email_confirmed_at` set), as GoTrue's `email_confirm`.
    pub(crate) email_confirmed: bool,
    pub(crate) user_metadata: serde_json::Map<String, Value>,
}

/// Why [`insert_user`] inserted nothing.
pub(crate) enum InsertError {
    /// `unique_email` and the address is registered already.
    EmailExists,
    /// No database connection.
    Pool(PoolError),
    Db(tokio_postgres::Error),
}

/// A user row of `auth.users` (alias `u`) as GoTrue serialises its `User` (supabase/auth
/// `internal/models/user.go`): a JSON object for [`user_json`] to finish. There is no
/// `auth.identities` here, so `identities` is empty.
pub(crate) fn user_select() -> String {
    let ts =
        |c: &str| format!("to_char(u.{c} at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')");
    format!(
        "jsonb_build_object(
           'id', u.id, 'aud', coalesce(u.aud, ''), 'role', coalesce(u.role, ''),
           'email', coalesce(u.email, ''), 'email_confirmed_at', {confirmed},
           'phone', coalesce(u.phone, ''), 'confirmed_at', {confirmed},
           'last_sign_in_at', {last}, 'app_metadata', coalesce(u.raw_app_meta_data, '{{}}'),
           'user_metadata', coalesce(u.raw_user_meta_data, '{{}}'), 'identities', '[]'::jsonb,
           'created_at', {created}, 'updated_at', {updated}, 'is_anonymous', u.is_anonymous)",
        confirmed = ts("email_confirmed_at"),
        last = ts("last_sign_in_at"),
        created = ts("created_at"),
        updated = ts("updated_at"),
    )
}

/// A [`user_select`] value without the timestamps GoTrue omits when unset (`omitempty`).
pub(crate) fn user_json(mut user: Value) -> Value {
    if let Some(o) = user.as_object_mut() {
        for key in ["email_confirmed_at", "confirmed_at", "last_sign_in_at"] {
            if o.get(key).is_some_and(Value::is_null) {
                o.remove(key);
            }
        }
    }
    user
}

/// Inserts `user` as GoTrue does: as `supabase_auth_admin`, the owner of `auth.users` (no API
/// role, not even service_role, has a privilege on it), role and aud `authenticated`,
/// app_metadata `{provider: email, providers: [email]}`, and a confirmed address marked
/// `email_verified` in user_metadata. With `unique_email`, an address already registered (in any
/// case) is refused, as GoTrue's admin API refuses it; concurrent inserts of one address are
/// serialised by a transaction-scoped advisory lock (the table has no unique index here).
/// Returns the new user as [`user_json`].
pub(crate) async fn insert_user(
    app: &App,
    mut user: NewUser,
    unique_email: bool,
) -> Result<Value, InsertError> {
    if user.email_confirmed {
        user.user_metadata
            .insert("email_verified".into(), Value::Bool(true));
    }
    let mut conn = app.admin_pool.get().await.map_err(InsertError::Pool)?;
    let tx = conn.transaction().await.map_err(InsertError::Db)?;
    tx.batch_execute("set local role supabase_auth_admin")
        .await
        .map_err(InsertError::Db)?;
    if unique_email {
        tx.execute(
            "select pg_advisory_xact_lock(hashtext('auth.users email ' || lower($1)))",
            &[&user.email],
        )
        .await
        .map_err(InsertError::Db)?;
        let taken = tx
            .query_opt(
                "select 1 from auth.users where lower(email) = lower($1) limit 1",
                &[&user.email],
            )
            .await
            .map_err(InsertError::Db)?;
        if taken.is_some() {
            return Err(InsertError::EmailExists);
        }
    }
    let row = tx
        .query_one(
            &format!(
                "insert into auth.users as u (id, aud, role, email, encrypted_password,
                                              email_confirmed_at, raw_app_meta_data,
                                              raw_user_meta_data, created_at, updated_at)
                 values ($1, 'authenticated', 'authenticated', $2, $3,
                         case when $4 then now() end,
                         '{{\"provider\": \"email\", \"providers\": [\"email\"]}}', $5, now(), now())
                 returning {}",
                user_select()
            ),
            &[
                &user.id,
                &user.email,
                &user.encrypted_password,
                &user.email_confirmed,
                &Value::Object(user.user_metadata),
            ],
        )
        .await
        .map_err(InsertError::Db)?;
    tx.commit().await.map_err(InsertError::Db)?;
    Ok(user_json(row.get(0)))
}

/// A GoTrue-shaped access token (supabase/auth `AccessTokenClaims`) for `user` (a
/// [`user_json`]), valid `expires_in` seconds: `(token, exp)`.
pub(crate) fn user_token(app: &App, user: &Value, expires_in: i64) -> (String, i64) {
    let now = jwt::now();
    let exp = now + expires_in;
    let field = |k: &str| user.get(k).cloned().unwrap_or(Value::Null);
    let claims = json!({
        "iss": format!("{}/auth/v1", app.info.api_url),
        "sub": field("id"),
        "aud": field("aud"),
        "exp": exp,
        "iat": now,
        "email": field("email"),
        "phone": field("phone"),
        "app_metadata": field("app_metadata"),
        "user_metadata": field("user_metadata"),
        "role": field("role"),
        "aal": "aal1",
        "amr": [{"method": "password", "timestamp": now}],
        "session_id": uuid::Uuid::new_v4().to_string(),
        "is_anonymous": field("is_anonymous"),
    });
    (jwt::sign(&claims, &app.info.jwt_secret), exp)
}

async fn create_user(State(app): State<Arc<App>>, Body(body): Body) -> Answer {
    let id = uuid::Uuid::new_v4();
    let email = body
        .get("email")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{id}@example.test"));
    let user = NewUser {
        id,
        email,
        encrypted_password: String::new(),
        email_confirmed: true,
        user_metadata: serde_json::Map::new(),
    };
    let user = insert_user(&app, user, false).await.map_err(|e| match e {
        InsertError::Pool(e) => no_connection(&e),
        InsertError::Db(e) => db_failure(&e),
        InsertError::EmailExists => unreachable!("unique_email is false"),
    })?;
    let (token, exp) = user_token(&app, &user, 3600);
    Ok(http::json_response(
        StatusCode::CREATED,
        &json!({"id": user["id"], "email": user["email"], "access_token": token, "expires_at": exp}),
    ))
}

/// `body[key]` as a uuid, or a 400 naming the key.
fn uuid_field(body: &Value, key: &str) -> Result<uuid::Uuid, Response> {
    body.get(key)
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            admin_error(
                StatusCode::BAD_REQUEST,
                &format!("{key} (a uuid) is required"),
            )
        })
}

async fn token(State(app): State<Arc<App>>, Body(body): Body) -> Answer {
    let user_id = uuid_field(&body, "user_id")?;
    let expires_in = body
        .get("expires_in")
        .and_then(Value::as_i64)
        .unwrap_or(3600);
    let conn = app.admin_pool.get().await.map_err(|e| no_connection(&e))?;
    let row = conn
        .query_opt(
            &format!("select {} from auth.users u where id = $1", user_select()),
            &[&user_id],
        )
        .await
        .map_err(|e| db_failure(&e))?
        .ok_or_else(|| admin_error(StatusCode::NOT_FOUND, &format!("user {user_id} not found")))?;
    let (token, exp) = user_token(&app, &user_json(row.get(0)), expires_in);
    Ok(http::json_response(
        StatusCode::OK,
        &json!({"access_token": token, "expires_at": exp}),
    ))
}

async fn create_project(State(app): State<Arc<App>>, Body(body): Body) -> Answer {
    let owner = match body.get("owner_id") {
        None | Some(Value::Null) => None,
        Some(_) => Some(
            uuid_field(&body, "owner_id")
                .map_err(|_| admin_error(StatusCode::BAD_REQUEST, "owner_id must be a uuid"))?,
        ),
    };
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("Untitled project")
        .to_owned();
    // As the superuser, fsync.current_caller() is a service caller: the project is owned by
    // owner_id, which also gets its owner membership row.
    let conn = app.admin_pool.get().await.map_err(|e| no_connection(&e))?;
    let row = conn
        .query_one("select fsync.create_project($1, $2)", &[&name, &owner])
        .await
        .map_err(|e| db_failure(&e))?;
    let id: uuid::Uuid = row.get(0);
    Ok(http::json_response(StatusCode::CREATED, &json!({"id": id})))
}

async fn add_member(State(app): State<Arc<App>>, Body(body): Body) -> Answer {
    let project = uuid_field(&body, "project_id")?;
    let user = uuid_field(&body, "user_id")?;
    let role = body
        .get("role")
        .and_then(Value::as_str)
        .unwrap_or("editor")
        .to_owned();
    let conn = app.admin_pool.get().await.map_err(|e| no_connection(&e))?;
    conn.execute(
        "select fsync.set_project_member($1, $2, $3)",
        &[&project, &user, &role],
    )
    .await
    .map_err(|e| db_failure(&e))?;
    Ok(http::json_response(StatusCode::OK, &json!({})))
}

async fn drop_websockets(State(app): State<Arc<App>>) -> Response {
    let n = app.hub.drop_all();
    http::json_response(StatusCode::OK, &json!({"dropped": n}))
}

async fn pause_delivery(State(app): State<Arc<App>>, Body(body): Body) -> Answer {
    let mode = body.get("mode").and_then(Value::as_str).unwrap_or("hold");
    let hold = match mode {
        "hold" => true,
        "drop" => false,
        other => {
            return Err(admin_error(
                StatusCode::BAD_REQUEST,
                &format!("mode {other:?}: use \"hold\" or \"drop\""),
            ))
        }
    };
    app.hub.pause(hold);
    Ok(http::json_response(StatusCode::OK, &json!({"mode": mode})))
}

async fn resume_delivery(State(app): State<Arc<App>>) -> Response {
    let (delivered, dropped) = app.hub.resume();
    http::json_response(
        StatusCode::OK,
        &json!({"delivered": delivered, "dropped": dropped}),
    )
}

async fn delivery_status(State(app): State<Arc<App>>) -> Response {
    http::json_response(StatusCode::OK, &app.hub.delivery_status())
}
