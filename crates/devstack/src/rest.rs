//! `/rest/v1/rpc/<fn>`: PostgREST's function calls.
//!
//! One transaction per request on an `authenticator` connection: the function is looked up in
//! `pg_proc` (schema `public`), matched by the set of argument names (PostgREST's `Plan.hs`
//! rules), then the settings PostgREST sets are applied transaction-locally (search_path, the
//! role's `ALTER ROLE … SET` settings, role, request.jwt.claims, request.method, request.path,
//! request.headers, request.cookies), and the function is called PostgREST's way: the JSON
//! body turned into a row by `jsonb_to_record` typed with the parameter types, named notation.
//!
//! A request costs one round trip to PostgreSQL when its function was seen before: planned from
//! the functions last read from `pg_proc`, `START TRANSACTION`, a check, the settings, the call (a
//! statement prepared once per connection) and `COMMIT` go out together, pipelined. The check
//! fails the transaction, before anything else in it runs, when `pg_proc` no longer holds exactly
//! those functions; the request is then planned again from a new lookup. So every request is
//! still decided by `pg_proc` as it is when the request runs, without a round trip per statement
//! (each was about 0.1 ms of a save on the edit → container path of bench/e2e.mjs).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::future::{join4, join5};
use serde_json::{Map, Value};
use tokio_postgres::error::{DbError, SqlState};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use crate::http::{self, AuthError, Caller};
use crate::pool::{self, Conn, PoolError};
use crate::App;

pub(crate) mod table;

/// The exposed schema.
const SCHEMA: &str = "public";

/// `ALTER ROLE … SET` settings (those a plain user may set), per role, applied like PostgREST
/// does before switching into the role.
pub(crate) struct RoleSettings(RwLock<HashMap<String, Vec<(String, String)>>>);

impl RoleSettings {
    pub(crate) async fn load(
        client: &tokio_postgres::Client,
    ) -> Result<RoleSettings, tokio_postgres::Error> {
        let rows = client
            .query(
                "select r.rolname::text, split_part(c.cfg, '=', 1), substr(c.cfg, strpos(c.cfg, '=') + 1)
                   from pg_db_role_setting s
                   join pg_roles r on r.oid = s.setrole
                   cross join lateral unnest(s.setconfig) as c(cfg)
                   join pg_settings g on g.name = split_part(c.cfg, '=', 1) and g.context = 'user'
                  where s.setdatabase in (0, (select oid from pg_database where datname = current_database()))
                  order by s.setdatabase",
                &[],
            )
            .await?;
        let mut map: HashMap<String, Vec<(String, String)>> = HashMap::new();
        for row in rows {
            map.entry(row.get(0))
                .or_default()
                .push((row.get(1), row.get(2)));
        }
        Ok(RoleSettings(RwLock::new(map)))
    }

    fn for_role(&self, role: &str) -> Vec<(String, String)> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(role)
            .cloned()
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Returns {
    Void,
    Scalar,
    Composite,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Param {
    name: String,
    type_name: String,
    required: bool,
    variadic: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Proc {
    name: String,
    volatile: bool,
    set: bool,
    returns: Returns,
    params: Vec<Param>,
}

/// The functions of the exposed schema by name, as `pg_proc` last answered (PostgREST's schema
/// cache): what a request's statements are planned from, confirmed by [`CHECK`] inside the
/// request's own transaction (see the module comment). Names with no function are not kept.
#[derive(Default)]
pub(crate) struct ProcCache(RwLock<HashMap<String, Arc<Procs>>>);

/// The overloads of one function name and the digest [`CHECK`] confirms them by.
struct Procs {
    procs: Vec<Proc>,
    digest: String,
}

impl ProcCache {
    fn get(&self, name: &str) -> Option<Arc<Procs>> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// Keeps what [`LOOKUP`] answered for `name` (or forgets the name when it found nothing).
    fn put(&self, name: &str, rows: &[Row]) -> Arc<Procs> {
        let procs = Arc::new(Procs {
            procs: parse_procs(rows),
            // The column after those of `procs_of!`.
            digest: rows.first().map(|r| r.get(11)).unwrap_or_default(),
        });
        let mut map = self.0.write().unwrap_or_else(|e| e.into_inner());
        if procs.procs.is_empty() {
            map.remove(name);
        } else {
            map.insert(name.to_owned(), procs.clone());
        }
        procs
    }
}

/// The overloads of function `$1` in the exposed schema, one row each (see [`parse_procs`]).
macro_rules! procs_of {
    () => {
        "select p.proname::text,
       p.provolatile::text,
       p.proretset,
       p.pronargs::int4,
       p.pronargdefaults::int4,
       coalesce(p.proargmodes::text[], '{}'::text[]),
       coalesce(p.proargnames, '{}'::text[]),
       array(select format_type(u.t, null)
               from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])) with ordinality as u(t, n)
              order by u.n),
       p.prorettype = 'void'::regtype,
       t.typtype = 'c' or p.prorettype = 'record'::regtype,
       p.provariadic <> 0
  from pg_proc p
  join pg_type t on t.oid = p.prorettype
 where p.pronamespace = 'public'::regnamespace and p.proname = $1 and p.prokind = 'f'"
    };
}

/// A digest of the overloads' rows, independent of their order: what [`CHECK`] compares.
macro_rules! digest_of {
    ($($rows:tt)+) => {
        concat!(
            "(select md5(coalesce(string_agg(d::text, ',' order by d::text), '')) from (",
            $($rows)+,
            ") d)"
        )
    };
}

/// The configuration parameter [`CHECK`]'s error names.
macro_rules! check_mark {
    () => {
        "fs_sync_dev.functions_changed"
    };
}

/// The overloads of function `$1`, each row with the digest of them all, from one snapshot.
const LOOKUP: &str = concat!(
    "with o as (",
    procs_of!(),
    ") select o.*, ",
    digest_of!("select * from o"),
    " from o"
);

/// Fails the transaction unless the overloads of function `$1` still have digest `$2`: the
/// error names a configuration parameter that does not exist (SQLSTATE 42704), as plain SQL has
/// no way to raise one of its own.
const CHECK: &str = concat!(
    "select case when ",
    digest_of!(procs_of!()),
    " = $2 then true else pg_catalog.current_setting('",
    check_mark!(),
    "')::bool end"
);

const SET_CONFIG: &str =
    "select set_config(k, v, true) from unnest($1::text[], $2::text[]) with ordinality as s(k, v, n) order by s.n";

fn parse_procs(rows: &[tokio_postgres::Row]) -> Vec<Proc> {
    rows.iter()
        .map(|r| {
            let nargs: i32 = r.get(3);
            let ndefaults: i32 = r.get(4);
            let modes: Vec<String> = r.get(5);
            let names: Vec<String> = r.get(6);
            let types: Vec<String> = r.get(7);
            let variadic: bool = r.get(10);
            let mut params = Vec::new();
            for (i, type_name) in types.iter().enumerate() {
                let mode = modes.get(i).map(String::as_str).unwrap_or("i");
                if !matches!(mode, "i" | "b" | "v") {
                    continue;
                }
                let j = params.len() as i32;
                params.push(Param {
                    name: names.get(i).cloned().unwrap_or_default(),
                    type_name: type_name.clone(),
                    required: j < nargs - ndefaults,
                    variadic: variadic && mode == "v",
                });
            }
            let returns = if r.get::<_, bool>(8) {
                Returns::Void
            } else if r.get::<_, bool>(9) {
                Returns::Composite
            } else {
                Returns::Scalar
            };
            Proc {
                name: r.get(0),
                volatile: r.get::<_, String>(1) == "v",
                set: r.get(2),
                returns,
                params,
            }
        })
        .collect()
}

impl Proc {
    /// PostgREST's key-set rule (`Plan.hs` `findProc`).
    fn matches(&self, keys: &BTreeSet<String>) -> bool {
        let required: BTreeSet<String> = self
            .params
            .iter()
            .filter(|p| p.required)
            .map(|p| p.name.clone())
            .collect();
        let optional: BTreeSet<String> = self
            .params
            .iter()
            .filter(|p| !p.required)
            .map(|p| p.name.clone())
            .collect();
        if self.params.is_empty() {
            keys.is_empty()
        } else if optional.is_empty() {
            *keys == required
        } else if required.is_empty() {
            keys.is_subset(&optional)
        } else {
            keys.difference(&optional).cloned().collect::<BTreeSet<_>>() == required
        }
    }

    /// A single unnamed json/jsonb parameter, which receives the whole body.
    fn single_unnamed_json(&self) -> Option<&str> {
        match self.params.as_slice() {
            [p] if p.name.is_empty() && (p.type_name == "json" || p.type_name == "jsonb") => {
                Some(p.type_name.as_str())
            }
            _ => None,
        }
    }

    /// The statement calling this function with `keys` from `$1` (the JSON body), returning
    /// (json text, row count) for sets or json text otherwise.
    fn call_sql(&self, keys: &[String], whole_body: Option<&str>) -> (String, bool) {
        let fname = format!("{}.{}", ident(SCHEMA), ident(&self.name));
        let (args, from, uses_param) = if let Some(ty) = whole_body {
            (format!("$1::{ty}"), String::new(), true)
        } else if keys.is_empty() {
            (String::new(), String::new(), false)
        } else {
            let mut cols = Vec::new();
            let mut args = Vec::new();
            for k in keys {
                let p = self
                    .params
                    .iter()
                    .find(|p| &p.name == k)
                    .expect("matched keys name parameters");
                cols.push(format!("{} {}", ident(k), p.type_name));
                args.push(format!(
                    "{}{} := pgrst_body.{}",
                    if p.variadic { "VARIADIC " } else { "" },
                    ident(k),
                    ident(k)
                ));
            }
            (
                args.join(", "),
                format!(
                    "jsonb_to_record($1::jsonb) as pgrst_body({})",
                    cols.join(", ")
                ),
                true,
            )
        };
        let call = format!("{fname}({args})");
        let from_with = |lateral: &str| -> String {
            if from.is_empty() {
                format!(" from {lateral}")
            } else {
                format!(" from {from}, lateral {lateral}")
            }
        };
        let sql = match (self.returns, self.set) {
            (Returns::Void, _) => {
                if from.is_empty() {
                    format!("select {call}")
                } else {
                    format!("select {call} from {from}")
                }
            }
            (Returns::Scalar, false) => {
                if from.is_empty() {
                    format!("select to_json({call})::text")
                } else {
                    format!("select to_json({call})::text from {from}")
                }
            }
            (Returns::Scalar, true) => format!(
                "select coalesce(json_agg(pgrst_call.pgrst_scalar), '[]')::text, count(*){}",
                from_with(&format!("{call} as pgrst_call(pgrst_scalar)"))
            ),
            (Returns::Composite, false) => format!(
                "select (json_agg(pgrst_call) -> 0)::text{}",
                from_with(&format!("{call} as pgrst_call"))
            ),
            (Returns::Composite, true) => format!(
                "select coalesce(json_agg(pgrst_call), '[]')::text, count(*){}",
                from_with(&format!("{call} as pgrst_call"))
            ),
        };
        (sql, uses_param)
    }
}

/// A double-quoted SQL identifier, cut at a NUL as PostgREST cuts it (no SQL text can hold one).
pub(crate) fn ident(s: &str) -> String {
    let s = s.split('\0').next().unwrap_or_default();
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The failure of one request, rendered as PostgREST would.
enum Failure {
    Response(Response),
    Db(tokio_postgres::Error),
}

impl From<tokio_postgres::Error> for Failure {
    fn from(e: tokio_postgres::Error) -> Failure {
        Failure::Db(e)
    }
}

pub(crate) async fn rpc(
    State(app): State<Arc<App>>,
    method: Method,
    Path(function): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let caller = match authenticate(&app, &headers, query.as_deref()) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let result = call(
        &app,
        &method,
        &function,
        query.as_deref(),
        &headers,
        &body,
        &caller,
    )
    .await;
    respond(result, &method, &caller.role)
}

/// The gateway's key check and the JWT, or the response refusing them.
fn authenticate(app: &App, headers: &HeaderMap, query: Option<&str>) -> Result<Caller, Response> {
    http::authenticate(app, headers, query, crate::jwt::CLOCK_SKEW_SECS).map_err(|e| {
        match http::gateway_refusal(&e) {
            Some(r) => r,
            None => match e {
                AuthError::Jwt(j) => http::pgrst_jwt_error(&j),
                _ => unreachable!("gateway refusals handled above"),
            },
        }
    })
}

/// The response to send: failures rendered as PostgREST renders them, no body for HEAD, the
/// role noted for the request log.
fn respond(result: Result<Response, Failure>, method: &Method, role: &str) -> Response {
    let response = match result {
        Ok(r) => r,
        Err(Failure::Response(r)) => r,
        Err(Failure::Db(e)) => db_error_response(&e, role != "anon"),
    };
    let response = if *method == Method::HEAD {
        let (parts, _) = response.into_parts();
        Response::from_parts(parts, axum::body::Body::empty())
    } else {
        response
    };
    http::with_role(response, role)
}

/// `Accept-Profile` (reads) or `Content-Profile` (writes), when sent, must name the exposed
/// schema.
fn check_profile(headers: &HeaderMap, read_request: bool) -> Result<(), Failure> {
    let profile_header = if read_request {
        "accept-profile"
    } else {
        "content-profile"
    };
    match headers.get(profile_header).and_then(|v| v.to_str().ok()) {
        Some(p) if p != SCHEMA => Err(Failure::Response(http::pgrst_error(
            StatusCode::NOT_ACCEPTABLE,
            "PGRST106",
            &format!("Invalid schema: {p}"),
            Value::Null,
            Value::String(format!("Only the following schemas are exposed: {SCHEMA}")),
            None,
        ))),
        _ => Ok(()),
    }
}

/// An `authenticator` connection from the pool.
async fn connect(app: &App) -> Result<Conn, Failure> {
    app.rest_pool.get().await.map_err(|e| {
        // PostgREST's details name the connection's own error, not the pool's wrapping of it.
        Failure::Response(match &e {
            PoolError::Backend(db) => connection_error(db),
            other => connection_error(other),
        })
    })
}

/// Gives the connection back to the pool, unless the request failed with something other than
/// the database's answer (then the connection's state is unknown).
fn release<T>(conn: Conn, result: &Result<T, Failure>) {
    if let Err(Failure::Db(e)) = result {
        if e.as_db_error().is_none() {
            pool::discard(conn);
        }
    }
}

/// What PostgREST sets, transaction-locally, before running a request: search_path, the role's
/// `ALTER ROLE … SET` settings, role, the JWT claims, method, path, headers and cookies. The
/// names, then the values, for [`SET_CONFIG`].
fn request_settings(
    app: &App,
    caller: &Caller,
    method: &Method,
    path: String,
    headers: &HeaderMap,
) -> (Vec<String>, Vec<String>) {
    let mut names: Vec<String> = vec!["search_path".into()];
    let mut values: Vec<String> = vec![format!("{}, extensions", ident(SCHEMA))];
    for (k, v) in app.role_settings.for_role(&caller.role) {
        names.push(k);
        values.push(v);
    }
    let pairs = [
        ("role", caller.role.clone()),
        (
            "request.jwt.claims",
            Value::Object(caller.claims.clone()).to_string(),
        ),
        ("request.method", method.as_str().to_owned()),
        ("request.path", path),
        ("request.headers", http::headers_json(headers)),
        ("request.cookies", cookies_json(headers)),
    ];
    for (k, v) in pairs {
        names.push(k.to_owned());
        values.push(v);
    }
    (names, values)
}

/// Applies [`request_settings`] inside `tx`.
async fn set_request_settings(
    tx: &deadpool_postgres::Transaction<'_>,
    app: &App,
    caller: &Caller,
    method: &Method,
    path: String,
    headers: &HeaderMap,
) -> Result<(), tokio_postgres::Error> {
    let (names, values) = request_settings(app, caller, method, path, headers);
    let set_config = tx.prepare_cached(SET_CONFIG).await?;
    tx.query(&set_config, &[&names, &values]).await?;
    Ok(())
}

/// 406 PGRST116: one object was asked for and `count` rows came.
fn not_singular(count: i64) -> Failure {
    Failure::Response(http::pgrst_error(
        StatusCode::NOT_ACCEPTABLE,
        "PGRST116",
        "Cannot coerce the result to a single JSON object",
        Value::String(format!("The result contains {count} rows")),
        Value::Null,
        None,
    ))
}

#[allow(clippy::too_many_arguments)]
async fn call(
    app: &App,
    method: &Method,
    function: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &Bytes,
    caller: &Caller,
) -> Result<Response, Failure> {
    let read_request = *method == Method::GET || *method == Method::HEAD;
    if !read_request && *method != Method::POST {
        return Err(Failure::Response(http::pgrst_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "PGRST101",
            &format!("Cannot use the {method} method on RPC"),
            Value::Null,
            Value::Null,
            None,
        )));
    }
    check_profile(headers, read_request)?;

    // The arguments, as one JSON value.
    let args: Value = if read_request {
        let mut map = Map::new();
        for (k, v) in http::query_pairs(query.unwrap_or("")) {
            if matches!(
                k.as_str(),
                "select" | "order" | "limit" | "offset" | "apikey"
            ) {
                continue;
            }
            match map.get_mut(&k) {
                Some(Value::Array(a)) => a.push(Value::String(v)),
                Some(prev) => {
                    let first = prev.take();
                    *prev = Value::Array(vec![first, Value::String(v)]);
                }
                None => {
                    map.insert(k, Value::String(v));
                }
            }
        }
        Value::Object(map)
    } else if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Map::new())
    } else {
        match serde_json::from_slice::<Value>(body) {
            Ok(v) => v,
            Err(_) => return Err(invalid_body()),
        }
    };
    let keys: BTreeSet<String> = match &args {
        Value::Object(m) => m.keys().cloned().collect(),
        _ => BTreeSet::new(),
    };
    let req = Request {
        function,
        args: &args,
        keys: &keys,
        read_request,
        singular: headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("application/vnd.pgrst.object+json")),
        settings: request_settings(app, caller, method, format!("/rpc/{function}"), headers),
    };

    let conn = Leased(Some(connect(app).await?));
    let result = run(app, conn.get(), &req).await;
    release(conn.take(), &result);
    result
}

/// A pooled connection lent to one request. Dropped before [`Leased::take`], as when the client
/// goes away mid-request and the request's future is dropped, the connection may be inside a
/// transaction: it is closed instead of going back to the pool.
struct Leased(Option<Conn>);

impl Leased {
    fn get(&self) -> &Conn {
        self.0.as_ref().expect("taken only once, at the end")
    }

    fn take(mut self) -> Conn {
        self.0.take().expect("taken only once")
    }
}

impl Drop for Leased {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            pool::discard(conn);
        }
    }
}

/// One RPC request, parsed.
struct Request<'a> {
    function: &'a str,
    /// The arguments as one JSON value (the body, or the query string of a GET).
    args: &'a Value,
    /// The argument names, when `args` is an object.
    keys: &'a BTreeSet<String>,
    read_request: bool,
    /// `Accept: application/vnd.pgrst.object+json`.
    singular: bool,
    /// [`request_settings`].
    settings: (Vec<String>, Vec<String>),
}

/// The function a request calls among `procs` (PostgREST's `Plan.hs` rules), and whether it
/// takes the whole body, or the refusal.
fn resolve<'p>(
    procs: &'p [Proc],
    req: &Request<'_>,
) -> Result<(&'p Proc, Option<&'p str>), Failure> {
    let is_object = req.args.is_object();
    let named: Vec<&Proc> = if is_object {
        procs.iter().filter(|p| p.matches(req.keys)).collect()
    } else {
        Vec::new()
    };
    match named.as_slice() {
        [one] => Ok((*one, None)),
        [] => {
            let unnamed: Vec<&Proc> = if req.read_request {
                Vec::new()
            } else {
                procs
                    .iter()
                    .filter(|p| p.single_unnamed_json().is_some())
                    .collect()
            };
            match unnamed.as_slice() {
                [one] => Ok((*one, one.single_unnamed_json())),
                [] if !is_object => Err(invalid_body()),
                [] => Err(Failure::Response(no_rpc(
                    req.function,
                    req.keys,
                    req.read_request,
                    procs,
                ))),
                many => Err(Failure::Response(ambiguous(many))),
            }
        }
        many => Err(Failure::Response(ambiguous(many))),
    }
}

/// The statements of a request's transaction, planned from the function it calls.
struct Planned<'p> {
    proc: &'p Proc,
    /// `START TRANSACTION READ ONLY` (a read, or a function that is not volatile) or `READ WRITE`,
    /// as tokio-postgres's transaction builder writes it.
    begin: &'static str,
    call: tokio_postgres::Statement,
    uses_param: bool,
}

/// Prepares (once per connection) the statement calling `proc` for `req`.
async fn plan<'p>(
    conn: &Conn,
    req: &Request<'_>,
    proc: &'p Proc,
    whole_body: Option<&str>,
) -> Result<Planned<'p>, Failure> {
    let call_keys: Vec<String> = req.keys.iter().cloned().collect();
    let (sql, uses_param) = proc.call_sql(&call_keys, whole_body);
    let read_only = req.read_request || !proc.volatile;
    Ok(Planned {
        proc,
        begin: if read_only {
            "START TRANSACTION READ ONLY"
        } else {
            "START TRANSACTION READ WRITE"
        },
        call: conn.prepare_cached(&sql).await?,
        uses_param,
    })
}

/// What the transaction's statements answered: `START TRANSACTION`, the settings, the call,
/// then `COMMIT`. The first failure is the request's (a statement after a failed one fails only
/// because the transaction is aborted, and `COMMIT` then rolls back).
fn outcome(
    began: Result<(), tokio_postgres::Error>,
    set: Result<Vec<Row>, tokio_postgres::Error>,
    called: Result<Vec<Row>, tokio_postgres::Error>,
    ended: Result<(), tokio_postgres::Error>,
) -> Result<Vec<Row>, Failure> {
    began?;
    set?;
    let rows = called?;
    ended?;
    Ok(rows)
}

async fn run(app: &App, conn: &Conn, req: &Request<'_>) -> Result<Response, Failure> {
    let set_config = conn.prepare_cached(SET_CONFIG).await?;
    let (names, values) = &req.settings;
    let settings: [&(dyn ToSql + Sync); 2] = [names, values];
    let body: [&(dyn ToSql + Sync); 1] = [req.args];
    let params = |p: &Planned<'_>| -> &[&(dyn ToSql + Sync)] {
        if p.uses_param {
            &body
        } else {
            &[]
        }
    };

    // Planned from the functions seen before: the whole transaction in one round trip, with
    // CHECK first failing it (so nothing else in it takes effect) if they changed since.
    if let Some(cached) = app.procs.get(req.function) {
        // A request these functions refuse, or a call that no longer parses, is decided from a
        // new lookup below.
        let planned = match resolve(&cached.procs, req) {
            Ok((proc, whole_body)) => plan(conn, req, proc, whole_body).await.ok(),
            Err(_) => None,
        };
        if let Some(p) = planned {
            let check = conn.prepare_cached(CHECK).await?;
            let confirm: [&(dyn ToSql + Sync); 2] = [&req.function, &cached.digest];
            // futures-util's join polls its futures in order, and a tokio-postgres request is
            // written on its future's first poll: the statements go out in this order, at once.
            let (began, checked, set, called, ended) = join5(
                conn.batch_execute(p.begin),
                conn.query(&check, &confirm),
                conn.query(&set_config, &settings),
                conn.query(&p.call, params(&p)),
                conn.batch_execute("COMMIT"),
            )
            .await;
            let changed = checked
                .as_ref()
                .err()
                .and_then(|e| e.as_db_error())
                .is_some_and(|db| {
                    *db.code() == SqlState::UNDEFINED_OBJECT && db.message().contains(check_mark!())
                });
            if !changed {
                began?;
                checked?;
                return respond_rows(p.proc, outcome(Ok(()), set, called, ended)?, req.singular);
            }
        }
    }

    let lookup = conn.prepare_cached(LOOKUP).await?;
    let procs = app
        .procs
        .put(req.function, &conn.query(&lookup, &[&req.function]).await?);
    let (proc, whole_body) = resolve(&procs.procs, req)?;
    let p = plan(conn, req, proc, whole_body).await?;
    // In order, at once (see above).
    let (began, set, called, ended) = join4(
        conn.batch_execute(p.begin),
        conn.query(&set_config, &settings),
        conn.query(&p.call, params(&p)),
        conn.batch_execute("COMMIT"),
    )
    .await;
    respond_rows(p.proc, outcome(began, set, called, ended)?, req.singular)
}

/// The response to a call's rows, in PostgREST's shapes.
fn respond_rows(proc: &Proc, rows: Vec<Row>, singular: bool) -> Result<Response, Failure> {
    match proc.returns {
        Returns::Void => Ok(http::empty(StatusCode::NO_CONTENT)),
        _ if proc.set => {
            let text: String = rows[0].get(0);
            let count: i64 = rows[0].get(1);
            if singular {
                if count != 1 {
                    return Err(not_singular(count));
                }
                let first = serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|v| v.get(0).cloned())
                    .unwrap_or(Value::Null);
                return Ok(json_ok(first.to_string(), None, true));
            }
            let range = if count == 0 {
                "*/*".to_owned()
            } else {
                format!("0-{}/*", count - 1)
            };
            Ok(json_ok(text, Some(range), false))
        }
        _ => {
            let text: Option<String> = rows.first().and_then(|r| r.get(0));
            Ok(json_ok(
                text.unwrap_or_else(|| "null".into()),
                None,
                singular,
            ))
        }
    }
}

fn json_ok(body: String, range: Option<String>, singular: bool) -> Response {
    let content_type = if singular {
        "application/vnd.pgrst.object+json; charset=utf-8"
    } else {
        "application/json; charset=utf-8"
    };
    let mut r = (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response();
    if let Some(range) = range.and_then(|r| HeaderValue::from_str(&r).ok()) {
        r.headers_mut().insert(header::CONTENT_RANGE, range);
    }
    r
}

fn cookies_json(headers: &HeaderMap) -> String {
    let mut map = Map::new();
    for v in headers.get_all(header::COOKIE) {
        if let Ok(v) = v.to_str() {
            for part in v.split(';') {
                if let Some((k, val)) = part.trim().split_once('=') {
                    map.insert(k.to_owned(), Value::String(val.to_owned()));
                }
            }
        }
    }
    Value::Object(map).to_string()
}

fn invalid_body() -> Failure {
    Failure::Response(http::pgrst_error(
        StatusCode::BAD_REQUEST,
        "PGRST102",
        "Empty or invalid json",
        Value::Null,
        Value::Null,
        None,
    ))
}

fn connection_error(e: &dyn std::fmt::Display) -> Response {
    http::pgrst_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "PGRST000",
        "Database connection error. Retrying the connection.",
        Value::String(e.to_string()),
        Value::Null,
        None,
    )
}

/// 404 PGRST202 with PostgREST's wording.
fn no_rpc(
    function: &str,
    keys: &BTreeSet<String>,
    read_request: bool,
    overloads: &[Proc],
) -> Response {
    let func = format!("{SCHEMA}.{function}");
    let list: Vec<&str> = keys.iter().map(String::as_str).collect();
    let message = if list.is_empty() {
        format!("Could not find the function {func} without parameters in the schema cache")
    } else {
        format!(
            "Could not find the function {func}({}) in the schema cache",
            list.join(", ")
        )
    };
    let prms = if list.is_empty() {
        " without parameters".to_owned()
    } else {
        format!(
            " with parameter{} {}",
            if list.len() > 1 { "s" } else { "" },
            list.join(", ")
        )
    };
    let details = format!(
        "Searched for the function {func}{prms}{}, but no matches were found in the schema cache.",
        if read_request {
            ""
        } else {
            " or with a single unnamed json/jsonb parameter"
        }
    );
    // PostgREST fuzzy-matches a hint; when the function exists under other parameters, name the
    // closest overload's parameters (sorted, as PostgREST prints them).
    let hint = overloads
        .iter()
        .map(|p| {
            let mut names: Vec<&str> = p.params.iter().map(|x| x.name.as_str()).collect();
            names.sort_unstable();
            format!(
                "Perhaps you meant to call the function {func}({})",
                names.join(", ")
            )
        })
        .next()
        .map(Value::String)
        .unwrap_or(Value::Null);
    http::pgrst_error(
        StatusCode::NOT_FOUND,
        "PGRST202",
        &message,
        Value::String(details),
        hint,
        None,
    )
}

fn ambiguous(procs: &[&Proc]) -> Response {
    let list: Vec<String> = procs
        .iter()
        .map(|p| {
            let params: Vec<String> = p
                .params
                .iter()
                .map(|x| format!("{} => {}", x.name, x.type_name))
                .collect();
            format!("{SCHEMA}.{}({})", p.name, params.join(", "))
        })
        .collect();
    http::pgrst_error(
        StatusCode::MULTIPLE_CHOICES,
        "PGRST203",
        &format!(
            "Could not choose the best candidate function between: {}",
            list.join(", ")
        ),
        Value::Null,
        Value::String(
            "Try renaming the parameters or the function itself in the database so function overloading can be resolved"
                .into(),
        ),
        None,
    )
}

/// PostgREST's SQLSTATE → HTTP status (`Error.hs` `mapSQLtoHTTP`). `authed`: the request role
/// is not the anon role.
pub(crate) fn status_for(db: &DbError, authed: bool) -> StatusCode {
    let code = db.code().code();
    let m = db.message();
    let s = |n: u16| StatusCode::from_u16(n).expect("valid status");
    if let Some(n) = code.strip_prefix("PT") {
        return n
            .parse::<u16>()
            .ok()
            .and_then(|n| StatusCode::from_u16(n).ok())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    }
    match code {
        c if c.starts_with("08") => s(503),
        c if c.starts_with("09") => s(500),
        c if c.starts_with("0L") || c.starts_with("0P") => s(403),
        "23503" | "23505" => s(409),
        "25006" => s(405),
        "21000" => {
            if m.ends_with("requires a WHERE clause") {
                s(400)
            } else {
                s(500)
            }
        }
        "22023" => {
            if m.starts_with("role") && m.ends_with("does not exist") {
                s(401)
            } else {
                s(400)
            }
        }
        c if c.starts_with("25") => s(500),
        c if c.starts_with("28") => s(403),
        c if c.starts_with("2D")
            || c.starts_with("38")
            || c.starts_with("39")
            || c.starts_with("3B") =>
        {
            s(500)
        }
        c if c.starts_with("40") => s(500),
        "53400" => s(500),
        c if c.starts_with("53") => s(503),
        c if c.starts_with("54") || c.starts_with("55") => s(500),
        "57P01" => s(503),
        c if c.starts_with("57")
            || c.starts_with("58")
            || c.starts_with("F0")
            || c.starts_with("HV") =>
        {
            s(500)
        }
        "P0001" => s(400),
        c if c.starts_with("P0") || c.starts_with("XX") => s(500),
        "42883" => {
            if m.starts_with("function xmlagg(") {
                s(406)
            } else {
                s(404)
            }
        }
        "42P01" => s(404),
        "42P17" => s(500),
        "42501" => {
            if authed {
                s(403)
            } else {
                s(401)
            }
        }
        _ => s(400),
    }
}

/// A database error as PostgREST renders it, including `RAISE SQLSTATE 'PGRST'`.
fn db_error_response(e: &tokio_postgres::Error, authed: bool) -> Response {
    let Some(db) = e.as_db_error() else {
        return connection_error(e);
    };
    if db.code().code() == "PGRST" {
        return raise_pgrst(db);
    }
    let status = status_for(db, authed);
    let opt = |s: Option<&str>| {
        s.map(|s| Value::String(s.to_owned()))
            .unwrap_or(Value::Null)
    };
    http::pgrst_error(
        status,
        db.code().code(),
        db.message(),
        opt(db.detail()),
        opt(db.hint()),
        None,
    )
}

/// `RAISE SQLSTATE 'PGRST' USING message = '{code,message,details?,hint?}', detail =
/// '{status,headers,status_text?}'`.
fn raise_pgrst(db: &DbError) -> Response {
    let msg: Option<Map<String, Value>> = serde_json::from_str(db.message()).ok();
    let detail: Option<Map<String, Value>> = db.detail().and_then(|d| serde_json::from_str(d).ok());
    let (Some(msg), Some(detail)) = (msg, detail) else {
        return http::pgrst_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "PGRST121",
            "Could not parse JSON in the \"RAISE SQLSTATE 'PGRST'\" error",
            Value::Null,
            Value::Null,
            None,
        );
    };
    let status = detail
        .get("status")
        .and_then(Value::as_u64)
        .and_then(|s| StatusCode::from_u16(s as u16).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::json!({
        "code": msg.get("code").cloned().unwrap_or(Value::Null),
        "message": msg.get("message").cloned().unwrap_or(Value::Null),
        "details": msg.get("details").cloned().unwrap_or(Value::Null),
        "hint": msg.get("hint").cloned().unwrap_or(Value::Null),
    });
    let mut r = http::json_response(status, &body);
    if let Some(Value::Object(h)) = detail.get("headers") {
        for (k, v) in h {
            if let (Ok(name), Some(Ok(value))) = (
                header::HeaderName::from_bytes(k.as_bytes()),
                v.as_str().map(HeaderValue::from_str),
            ) {
                r.headers_mut().insert(name, value);
            }
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc(params: &[(&str, bool)]) -> Proc {
        Proc {
            name: "f".into(),
            volatile: true,
            set: false,
            returns: Returns::Scalar,
            params: params
                .iter()
                .map(|(n, r)| Param {
                    name: (*n).into(),
                    type_name: "text".into(),
                    required: *r,
                    variadic: false,
                })
                .collect(),
        }
    }

    fn keys(k: &[&str]) -> BTreeSet<String> {
        k.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn plan_hs_key_set_rules() {
        let none = proc(&[]);
        assert!(none.matches(&keys(&[])));
        assert!(!none.matches(&keys(&["a"])));
        let req = proc(&[("a", true), ("b", true)]);
        assert!(req.matches(&keys(&["a", "b"])));
        assert!(!req.matches(&keys(&["a"])));
        assert!(!req.matches(&keys(&["a", "b", "c"])));
        let opt = proc(&[("a", false), ("b", false)]);
        assert!(opt.matches(&keys(&[])));
        assert!(opt.matches(&keys(&["b"])));
        assert!(!opt.matches(&keys(&["c"])));
        let both = proc(&[("a", true), ("b", false)]);
        assert!(both.matches(&keys(&["a"])));
        assert!(both.matches(&keys(&["a", "b"])));
        assert!(!both.matches(&keys(&["b"])));
        assert!(!both.matches(&keys(&["a", "z"])));
    }
}
