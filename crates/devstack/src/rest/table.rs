//! `/rest/v1/<table>`: PostgREST's table and view endpoints (GET, HEAD, POST, PATCH, DELETE) on
//! the relations of schema `public`, answered as PostgREST 13 answers them, without resource
//! embedding.
//!
//! The query string and `Prefer` are parsed by PostgREST's grammar (`QueryParams.hs`,
//! `Preferences.hs`); the relation's columns come from the catalog on every request, since
//! migrations may alter tables while the stack runs; the statement is built the way
//! `QueryBuilder.hs` builds it: the JSON body turned into typed rows by `json_to_recordset`, the
//! mutation in a `pgrst_source` CTE, the response aggregated by `json_agg` in the same statement.
//! Identifiers are quoted, and every value from the request is a bound text parameter cast to
//! its column's type (PostgREST binds untyped literals, which PostgreSQL types the same way).
//! One transaction per request, in the caller's role with the settings RPC calls get, so grants,
//! RLS and triggers decide what happens.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::HeaderName;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio_postgres::types::ToSql;

use super::{
    authenticate, check_profile, connect, ident, invalid_body, not_singular, release, respond,
    set_request_settings, Failure, SCHEMA,
};
use crate::http::{self, Caller};
use crate::pool::Conn;
use crate::App;

pub(crate) async fn table(
    State(app): State<Arc<App>>,
    method: Method,
    Path(table): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let caller = match authenticate(&app, &headers, query.as_deref()) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let result = handle(
        &app,
        &method,
        &table,
        query.as_deref().unwrap_or(""),
        &headers,
        &body,
        &caller,
    )
    .await;
    respond(result, &method, &caller.role)
}

async fn handle(
    app: &App,
    method: &Method,
    table: &str,
    query: &str,
    headers: &HeaderMap,
    body: &Bytes,
    caller: &Caller,
) -> Result<Response, Failure> {
    let action = Action::of(method)?;
    check_profile(headers, action == Action::Read)?;
    let params = QueryParams::parse(query)?;
    let prefs = Prefs::parse(headers)?;
    let media = Media::negotiate(headers)?;
    // RFC 9110 ignores Range on anything but GET, and so does PostgREST.
    let range_header = if *method == Method::GET {
        headers.get(header::RANGE).and_then(|v| v.to_str().ok())
    } else {
        None
    };
    let range = Range::new(params.limit, params.offset, range_header)?;
    let payload = match action {
        Action::Insert | Action::Update => {
            Some(Payload::parse(headers, body, params.columns.as_deref())?)
        }
        Action::Read | Action::Delete => None,
    };
    let request = Request {
        method,
        action,
        table,
        headers,
        caller,
        params,
        prefs,
        media,
        range,
        payload,
    };
    let mut conn = connect(app).await?;
    let result = run(app, &mut conn, &request).await;
    release(conn, &result);
    result
}

/// One parsed request.
struct Request<'a> {
    method: &'a Method,
    action: Action,
    table: &'a str,
    headers: &'a HeaderMap,
    caller: &'a Caller,
    params: QueryParams,
    prefs: Prefs,
    media: Media,
    range: Range,
    payload: Option<Payload>,
}

async fn run(app: &App, conn: &mut Conn, req: &Request<'_>) -> Result<Response, Failure> {
    let rel = match Relation::load(conn, req.table).await? {
        Some(rel) => rel,
        None => return Err(table_not_found(conn, req.table).await?),
    };
    if let Some(payload) = &req.payload {
        if let Some(missing) = payload.columns.iter().find(|c| rel.column(c).is_none()) {
            return Err(pgrst(
                StatusCode::BAD_REQUEST,
                "PGRST204",
                &format!(
                    "Could not find the '{missing}' column of '{}' in the schema cache",
                    rel.name
                ),
                None,
                None,
            ));
        }
    }
    let mut sql = Sql::default();
    let text = match req.action {
        Action::Read => read_sql(req, &rel, &mut sql),
        _ => write_sql(req, &rel, &mut sql),
    };

    let tx = conn
        .build_transaction()
        .read_only(req.action == Action::Read)
        .start()
        .await?;
    set_request_settings(
        &tx,
        app,
        req.caller,
        req.method,
        format!("/{}", req.table),
        req.headers,
    )
    .await?;
    let params: Vec<&(dyn ToSql + Sync)> = sql
        .params
        .iter()
        .map(|p| p as &(dyn ToSql + Sync))
        .collect();
    let row = tx.query_one(text.as_str(), &params).await?;
    let body: Option<String> = row.get(0);
    let count: i64 = row.get(1);
    let extra: Option<i64> = row.get(2);
    // Refusals after the statement leave the transaction uncommitted: dropping it rolls back.
    if req.media.singular && count != 1 {
        return Err(not_singular(count));
    }
    if let (Some(max), true, Action::Update | Action::Delete) =
        (req.prefs.max_affected, req.prefs.strict(), req.action)
    {
        if count > max {
            return Err(pgrst(
                StatusCode::BAD_REQUEST,
                "PGRST124",
                "Query result exceeds max-affected preference constraint",
                Some(format!("The query affects {count} rows")),
                None,
            ));
        }
    }
    tx.commit().await?;
    match req.action {
        Action::Read => read_response(req, body.unwrap_or_default(), count, extra),
        _ => Ok(write_response(req, &rel, body, count, extra)),
    }
}

/// What the HTTP method asks of the relation.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Action {
    Read,
    Insert,
    Update,
    Delete,
}

impl Action {
    fn of(method: &Method) -> Result<Action, Failure> {
        match *method {
            Method::GET | Method::HEAD => Ok(Action::Read),
            Method::POST => Ok(Action::Insert),
            Method::PATCH => Ok(Action::Update),
            Method::DELETE => Ok(Action::Delete),
            Method::PUT => Err(not_implemented(
                "fs-sync-dev does not support PUT (single-row upsert) on tables; POST with Prefer: resolution=merge-duplicates upserts",
            )),
            _ => Err(pgrst(
                StatusCode::METHOD_NOT_ALLOWED,
                "PGRST117",
                &format!("Unsupported HTTP method: {method}"),
                None,
                None,
            )),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The relation

/// A column as the catalog describes it.
#[derive(Debug)]
struct Column {
    name: String,
    /// With its modifier (`character varying(10)`): the type body values are read as.
    typ: String,
    /// Without it: the type filter values are cast to, as an untyped literal would be (a
    /// modifier would round or truncate the value before comparing).
    base: String,
    /// The default expression, for `Prefer: missing=default`.
    default: Option<String>,
    pk: bool,
}

#[derive(Debug)]
struct Relation {
    name: String,
    columns: Vec<Column>,
}

/// Tables, views, materialized views, foreign and partitioned tables: what PostgREST exposes.
const RELATION: &str = "
select a.attname::text,
       format_type(a.atttypid, a.atttypmod),
       format_type(a.atttypid, null),
       case when a.attgenerated = '' then pg_get_expr(d.adbin, d.adrelid) end,
       coalesce(a.attnum = any(i.indkey), false)
  from pg_class c
  join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
  left join pg_attrdef d on d.adrelid = c.oid and d.adnum = a.attnum
  left join pg_index i on i.indrelid = c.oid and i.indisprimary
 where c.relnamespace = 'public'::regnamespace and c.relname = $1
   and c.relkind in ('r', 'v', 'm', 'f', 'p')
 order by a.attnum";

const RELATION_NAMES: &str = "
select relname::text from pg_class
 where relnamespace = 'public'::regnamespace and relkind in ('r', 'v', 'm', 'f', 'p')";

impl Relation {
    async fn load(conn: &Conn, name: &str) -> Result<Option<Relation>, tokio_postgres::Error> {
        let stmt = conn.prepare_cached(RELATION).await?;
        let rows = conn.query(&stmt, &[&name]).await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let columns = rows
            .iter()
            .map(|r| Column {
                name: r.get(0),
                typ: r.get(1),
                base: r.get(2),
                default: r.get(3),
                pk: r.get(4),
            })
            .collect();
        Ok(Some(Relation {
            name: name.to_owned(),
            columns,
        }))
    }

    fn qualified(&self) -> String {
        format!("{}.{}", ident(SCHEMA), ident(&self.name))
    }

    fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    fn pk(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|c| c.pk)
    }
}

/// 404 PGRST205, with PostgREST's "Perhaps you meant" hint.
async fn table_not_found(conn: &Conn, name: &str) -> Result<Failure, tokio_postgres::Error> {
    let stmt = conn.prepare_cached(RELATION_NAMES).await?;
    let names: Vec<String> = conn
        .query(&stmt, &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    Ok(pgrst(
        StatusCode::NOT_FOUND,
        "PGRST205",
        &format!("Could not find the table '{SCHEMA}.{name}' in the schema cache"),
        None,
        closest(name, &names).map(|t| format!("Perhaps you meant the table '{SCHEMA}.{t}'")),
    ))
}

/// The candidate most like `name` (edit distance relative to the longer name, at least 1/3
/// alike), as PostgREST's fuzzy match suggests one.
fn closest<'a>(name: &str, candidates: &'a [String]) -> Option<&'a str> {
    let similarity = |c: &str| {
        let (a, b): (Vec<char>, Vec<char>) = (name.chars().collect(), c.chars().collect());
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.iter().enumerate() {
            let mut prev = row[0];
            row[0] = i + 1;
            for (j, cb) in b.iter().enumerate() {
                let substitution = prev + usize::from(ca != cb);
                prev = row[j + 1];
                row[j + 1] = substitution.min(prev + 1).min(row[j] + 1);
            }
        }
        1.0 - row[b.len()] as f64 / a.len().max(b.len()).max(1) as f64
    };
    candidates
        .iter()
        .map(|c| (similarity(c), c.as_str()))
        .filter(|(s, _)| *s >= 1.0 / 3.0)
        .max_by(|x, y| x.0.total_cmp(&y.0))
        .map(|(_, c)| c)
}

// ---------------------------------------------------------------------------------------------
// The query string

#[derive(Debug, Default)]
struct QueryParams {
    /// Empty: every column.
    select: Vec<SelectItem>,
    /// ANDed: the filters and the `and`/`or` trees.
    conditions: Vec<Cond>,
    order: Vec<OrderTerm>,
    limit: Option<i64>,
    offset: Option<i64>,
    columns: Option<Vec<String>>,
    on_conflict: Option<Vec<String>>,
}

#[derive(Debug, PartialEq)]
enum SelectItem {
    Star,
    Field {
        column: String,
        alias: Option<String>,
        cast: Option<String>,
    },
}

#[derive(Debug, PartialEq)]
enum Cond {
    Filter(Filter),
    Tree {
        negate: bool,
        or: bool,
        children: Vec<Cond>,
    },
}

#[derive(Debug, PartialEq)]
struct Filter {
    column: String,
    negate: bool,
    op: Op,
}

#[derive(Debug, PartialEq)]
enum Op {
    /// `column <sql> value`.
    Compare {
        sql: &'static str,
        value: String,
    },
    /// `column <sql> ANY|ALL(value)`, the value an array literal.
    Quantified {
        sql: &'static str,
        quant: &'static str,
        value: String,
    },
    /// `column IS <keyword>`: IS takes no parameter.
    Is(&'static str),
    In(Vec<String>),
}

#[derive(Debug, PartialEq)]
struct OrderTerm {
    column: String,
    desc: Option<bool>,
    nulls_first: Option<bool>,
}

impl QueryParams {
    fn parse(query: &str) -> Result<QueryParams, Failure> {
        let mut q = QueryParams::default();
        let (mut select, mut order, mut columns, mut on_conflict) = (None, None, None, None);
        for (k, v) in http::query_pairs(query) {
            match k.as_str() {
                // The gateway's credential: Supabase's Kong strips it before PostgREST.
                "apikey" => {}
                "select" => {
                    select.get_or_insert(v);
                }
                "order" => {
                    order.get_or_insert(v);
                }
                "columns" => {
                    columns.get_or_insert(v);
                }
                "on_conflict" => {
                    on_conflict.get_or_insert(v);
                }
                // An unparsable number is ignored, as PostgREST's readMaybe does.
                "limit" => q.limit = q.limit.or_else(|| v.parse().ok()),
                "offset" => q.offset = q.offset.or_else(|| v.parse().ok()),
                "and" | "or" | "not.and" | "not.or" => {
                    let input = format!("{k}{v}");
                    let tree = logic_tree(&mut Cursor::new(&input))
                        .map_err(|e| e.failure("logic tree", &v))?;
                    q.conditions.push(tree);
                }
                _ => {
                    let column = filter_key(&k)?;
                    let (negate, op) = op_expr(&mut Cursor::new(&v), false)
                        .map_err(|e| e.failure("filter", &v))?;
                    q.conditions
                        .push(Cond::Filter(Filter { column, negate, op }));
                }
            }
        }
        if let Some(s) = select {
            q.select = select_items(&mut Cursor::new(&s))
                .map_err(|e| e.failure("select parameter", &s))?;
        }
        if let Some(o) = order {
            q.order = order_terms(&mut Cursor::new(&o)).map_err(|e| e.failure("order", &o))?;
        }
        if let Some(c) = columns {
            q.columns = Some(
                field_list(&mut Cursor::new(&c)).map_err(|e| e.failure("columns parameter", &c))?,
            );
        }
        if let Some(c) = on_conflict {
            q.on_conflict = Some(
                field_list(&mut Cursor::new(&c))
                    .map_err(|e| e.failure("on_conflict parameter", &c))?,
            );
        }
        Ok(q)
    }
}

/// Why a query-string value does not parse.
#[derive(Debug, PartialEq)]
enum Syntax {
    /// PostgREST's parse error: where, and what was expected.
    At { column: usize, details: String },
    /// A path into an embedded resource (`rel.col`, `rel(col)`): there are none here.
    NotEmbedded(String),
    /// Valid PostgREST that fs-sync-dev does not implement.
    Unsupported(String),
}

impl Syntax {
    fn failure(self, what: &str, input: &str) -> Failure {
        match self {
            Syntax::At { column, details } => pgrst(
                StatusCode::BAD_REQUEST,
                "PGRST100",
                &format!("\"failed to parse {what} ({input})\" (line 1, column {column})"),
                Some(details),
                None,
            ),
            Syntax::NotEmbedded(resource) => not_embedded(&resource),
            Syntax::Unsupported(details) => not_implemented(&details),
        }
    }
}

/// A position in a query-string value.
struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a str) -> Cursor<'a> {
        Cursor { s, pos: 0 }
    }

    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn eat(&mut self, prefix: &str) -> bool {
        let found = self.rest().starts_with(prefix);
        if found {
            self.pos += prefix.len();
        }
        found
    }

    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let rest = self.rest();
        let n = rest.find(|c: char| !keep(c)).unwrap_or(rest.len());
        self.pos += n;
        &rest[..n]
    }

    fn skip_spaces(&mut self) {
        self.take_while(|c| c == ' ' || c == '\t');
    }

    fn expect(&mut self, token: &str, expecting: &str) -> Result<(), Syntax> {
        if self.eat(token) {
            Ok(())
        } else {
            Err(self.unexpected(expecting))
        }
    }

    /// A parse error here, worded as Parsec words it.
    fn unexpected(&self, expecting: &str) -> Syntax {
        let found = match self.peek() {
            Some(c) => format!("unexpected {:?}", c.to_string()),
            None => "unexpected end of input".to_owned(),
        };
        Syntax::At {
            column: self.s[..self.pos].chars().count() + 1,
            details: format!("{found} expecting {expecting}"),
        }
    }
}

/// A field name: double-quoted (backslash escapes), or identifier characters, `$`, spaces and
/// dashes (a dash before `>` starts a JSON path, which is not supported here).
fn field_name(cur: &mut Cursor<'_>) -> Result<String, Syntax> {
    cur.skip_spaces();
    let name = if cur.peek() == Some('"') {
        quoted(cur)?
    } else {
        let start = cur.pos;
        loop {
            cur.take_while(|c| c.is_alphanumeric() || matches!(c, '_' | '$' | ' '));
            if cur.rest().starts_with('-') && !cur.rest().starts_with("->") {
                cur.pos += 1;
            } else {
                break;
            }
        }
        let name = cur.s[start..cur.pos].trim();
        if name.is_empty() {
            cur.pos = start;
            return Err(cur.unexpected("field name (* or [a..z0..9_$])"));
        }
        name.to_owned()
    };
    if cur.rest().starts_with("->") {
        return Err(Syntax::Unsupported(format!(
            "fs-sync-dev does not support JSON paths ({name}->…)"
        )));
    }
    cur.skip_spaces();
    Ok(name)
}

fn quoted(cur: &mut Cursor<'_>) -> Result<String, Syntax> {
    cur.expect("\"", "\"\\\"\"")?;
    let mut out = String::new();
    loop {
        match cur.peek() {
            None => return Err(cur.unexpected("\"\\\"\"")),
            Some('"') => {
                cur.pos += 1;
                return Ok(out);
            }
            Some('\\') => {
                cur.pos += 1;
                let Some(c) = cur.peek() else {
                    return Err(cur.unexpected("any character"));
                };
                out.push(c);
                cur.pos += c.len_utf8();
            }
            Some(c) => {
                out.push(c);
                cur.pos += c.len_utf8();
            }
        }
    }
}

/// A filter's key: a column of the relation itself (`a.b` would filter an embedded `a`).
fn filter_key(key: &str) -> Result<String, Failure> {
    let mut cur = Cursor::new(key);
    let column = field_name(&mut cur).map_err(|e| e.failure("tree path", key))?;
    if cur.peek() == Some('.') {
        return Err(not_embedded(&column));
    }
    if cur.peek().is_some() {
        return Err(cur.unexpected("delimiter (.)").failure("tree path", key));
    }
    Ok(column)
}

fn field_list(cur: &mut Cursor<'_>) -> Result<Vec<String>, Syntax> {
    let mut fields = vec![field_name(cur)?];
    while cur.eat(",") {
        fields.push(field_name(cur)?);
    }
    match cur.peek() {
        None => Ok(fields),
        Some(_) => Err(cur.unexpected("\",\"")),
    }
}

/// `[not.]operator.value` (PostgREST's `pOpExpr`). Inside a logic tree a value ends at `,` or
/// `)`; at the top level it is the rest of the string.
fn op_expr(cur: &mut Cursor<'_>, in_tree: bool) -> Result<(bool, Op), Syntax> {
    const DOT: &str = "delimiter (.)";
    let negate = cur.eat("not.");
    let start = cur.pos;
    let name = cur.take_while(|c| c.is_ascii_lowercase());
    let op = match name {
        "in" => {
            cur.expect(".", DOT)?;
            Op::In(list(cur)?)
        }
        "is" => {
            cur.expect(".", DOT)?;
            let at = cur.pos;
            let value = cur.take_while(|c| c.is_ascii_alphabetic() || c == '_');
            Op::Is(match value.to_ascii_lowercase().as_str() {
                "null" => "NULL",
                "not_null" => "NOT NULL",
                "true" => "TRUE",
                "false" => "FALSE",
                "unknown" => "UNKNOWN",
                _ => {
                    cur.pos = at;
                    return Err(cur.unexpected("isVal: (null, not_null, true, false, unknown)"));
                }
            })
        }
        "isdistinct" => {
            cur.expect(".", DOT)?;
            Op::Compare {
                sql: "IS DISTINCT FROM",
                value: single_value(cur, in_tree)?,
            }
        }
        "fts" | "plfts" | "phfts" | "wfts" => {
            return Err(Syntax::Unsupported(
                "fs-sync-dev does not support full-text search filters".into(),
            ))
        }
        _ => {
            let quantifiable = match name {
                "eq" => Some("="),
                "gt" => Some(">"),
                "gte" => Some(">="),
                "lt" => Some("<"),
                "lte" => Some("<="),
                "like" => Some("LIKE"),
                "ilike" => Some("ILIKE"),
                "match" => Some("~"),
                "imatch" => Some("~*"),
                _ => None,
            };
            let simple = match name {
                "neq" => Some("<>"),
                "cs" => Some("@>"),
                "cd" => Some("<@"),
                "ov" => Some("&&"),
                "sl" => Some("<<"),
                "sr" => Some(">>"),
                "nxr" => Some("&<"),
                "nxl" => Some("&>"),
                "adj" => Some("-|-"),
                _ => None,
            };
            if let Some(sql) = quantifiable {
                let quant = if cur.eat("(any)") {
                    Some("ANY")
                } else if cur.eat("(all)") {
                    Some("ALL")
                } else {
                    None
                };
                cur.expect(".", DOT)?;
                let mut value = single_value(cur, in_tree)?;
                if matches!(name, "like" | "ilike") {
                    // PostgREST's URL-friendly wildcard.
                    value = value.replace('*', "%");
                }
                match quant {
                    Some(quant) => Op::Quantified { sql, quant, value },
                    None => Op::Compare { sql, value },
                }
            } else if let Some(sql) = simple {
                cur.expect(".", DOT)?;
                Op::Compare {
                    sql,
                    value: single_value(cur, in_tree)?,
                }
            } else {
                cur.pos = start;
                return Err(cur.unexpected("\"not\" or operator (eq, gt, ...)"));
            }
        }
    };
    Ok((negate, op))
}

fn single_value(cur: &mut Cursor<'_>, in_tree: bool) -> Result<String, Syntax> {
    if !in_tree {
        let value = cur.rest().to_owned();
        cur.pos = cur.s.len();
        return Ok(value);
    }
    let start = cur.pos;
    if cur.peek() == Some('"') {
        if let Ok(v) = quoted(cur) {
            if matches!(cur.peek(), None | Some(',') | Some(')')) {
                return Ok(v);
            }
        }
        cur.pos = start;
    }
    // A PostgreSQL array literal may hold commas.
    if let Some(inner) = cur.rest().strip_prefix('{') {
        if let Some(end) = inner
            .find(['{', '}'])
            .filter(|&i| inner[i..].starts_with('}'))
        {
            let literal = &cur.rest()[..end + 2];
            cur.pos += literal.len();
            return Ok(literal.to_owned());
        }
    }
    Ok(cur.take_while(|c| c != ',' && c != ')').to_owned())
}

/// `(a,b,"c,d")`.
fn list(cur: &mut Cursor<'_>) -> Result<Vec<String>, Syntax> {
    cur.skip_spaces();
    cur.expect("(", "\"(\"")?;
    cur.skip_spaces();
    let mut items = Vec::new();
    loop {
        let start = cur.pos;
        let quoted_item = if cur.peek() == Some('"') {
            quoted(cur)
                .ok()
                .filter(|_| matches!(cur.peek(), Some(',') | Some(')')))
        } else {
            None
        };
        let item = match quoted_item {
            Some(v) => v,
            None => {
                cur.pos = start;
                cur.take_while(|c| c != ',' && c != ')').to_owned()
            }
        };
        items.push(item);
        if !cur.eat(",") {
            break;
        }
    }
    cur.expect(")", "\",\" or \")\"")?;
    Ok(items)
}

/// `and(…)`, `or(…)`, `not.and(…)`, `not.or(…)` holding filters `col.op.value` and trees.
fn logic_tree(cur: &mut Cursor<'_>) -> Result<Cond, Syntax> {
    let start = cur.pos;
    let as_filter = field_name(cur).and_then(|column| {
        cur.expect(".", "delimiter (.)")?;
        let (negate, op) = op_expr(cur, true)?;
        Ok(Filter { column, negate, op })
    });
    let filter_error = match as_filter {
        Ok(f) => return Ok(Cond::Filter(f)),
        Err(e @ (Syntax::Unsupported(_) | Syntax::NotEmbedded(_))) => return Err(e),
        Err(e) => e,
    };
    let filter_end = cur.pos;
    cur.pos = start;
    let negate = cur.eat("not.");
    let or = if cur.eat("and") {
        false
    } else if cur.eat("or") {
        true
    } else {
        // Report the alternative that got further, as Parsec does.
        return Err(if filter_end > cur.pos {
            filter_error
        } else {
            cur.unexpected("logic operator (and, or)")
        });
    };
    cur.skip_spaces();
    cur.expect("(", "\"(\"")?;
    let mut children = Vec::new();
    loop {
        cur.skip_spaces();
        children.push(logic_tree(cur)?);
        cur.skip_spaces();
        if !cur.eat(",") {
            break;
        }
    }
    cur.expect(")", "\",\" or \")\"")?;
    Ok(Cond::Tree {
        negate,
        or,
        children,
    })
}

/// `*`, `col`, `alias:col`, `col::type`; embedding, spreads, JSON paths and aggregates are
/// refused as unsupported.
fn select_items(cur: &mut Cursor<'_>) -> Result<Vec<SelectItem>, Syntax> {
    let mut items = Vec::new();
    cur.skip_spaces();
    if cur.peek().is_none() {
        return Ok(items);
    }
    loop {
        cur.skip_spaces();
        if cur.rest().starts_with("...") {
            return Err(embedding(cur.rest()));
        }
        let item = if cur.eat("*") {
            SelectItem::Star
        } else {
            let mut column = field_name(cur)?;
            let mut alias = None;
            if cur.rest().starts_with(':') && !cur.rest().starts_with("::") {
                cur.pos += 1;
                alias = Some(column);
                column = field_name(cur)?;
            }
            if matches!(cur.peek(), Some('(' | '!')) {
                return Err(embedding(&column));
            }
            let cast = if cur.eat("::") {
                let at = cur.pos;
                let cast = cur
                    .take_while(|c| c.is_alphanumeric() || matches!(c, '_' | '$' | ' '))
                    .trim();
                if cast.is_empty() {
                    cur.pos = at;
                    return Err(cur.unexpected("type name"));
                }
                Some(cast.to_owned())
            } else {
                None
            };
            if cur.peek() == Some('.') {
                return Err(Syntax::Unsupported(format!(
                    "fs-sync-dev does not support aggregate functions (select={})",
                    cur.s
                )));
            }
            SelectItem::Field {
                column,
                alias,
                cast,
            }
        };
        items.push(item);
        cur.skip_spaces();
        if !cur.eat(",") {
            break;
        }
    }
    match cur.peek() {
        None => Ok(items),
        Some(_) => Err(cur.unexpected("\",\" or end of input")),
    }
}

fn embedding(what: &str) -> Syntax {
    Syntax::Unsupported(format!(
        "fs-sync-dev does not support resource embedding ({what}): select columns of one table or view, or use a view or an RPC"
    ))
}

/// `col[.asc|.desc][.nullsfirst|.nullslast],…`.
fn order_terms(cur: &mut Cursor<'_>) -> Result<Vec<OrderTerm>, Syntax> {
    let mut terms = Vec::new();
    loop {
        let column = field_name(cur)?;
        if cur.peek() == Some('(') {
            return Err(Syntax::NotEmbedded(column));
        }
        let desc = if cur.eat(".asc") {
            Some(false)
        } else if cur.eat(".desc") {
            Some(true)
        } else {
            None
        };
        let nulls_first = if cur.eat(".nullsfirst") {
            Some(true)
        } else if cur.eat(".nullslast") {
            Some(false)
        } else {
            None
        };
        cur.skip_spaces();
        terms.push(OrderTerm {
            column,
            desc,
            nulls_first,
        });
        if cur.peek().is_none() {
            return Ok(terms);
        }
        if !cur.eat(",") {
            return Err(
                cur.unexpected("\",\" or \".asc\", \".desc\", \".nullsfirst\", \".nullslast\"")
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Headers: Prefer, Accept, Range, the body

#[derive(Clone, Copy, Debug, PartialEq)]
enum Return {
    Minimal,
    Representation,
    HeadersOnly,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Resolution {
    Merge,
    Ignore,
}

/// `Prefer`, the first of each kind winning (RFC 7240); each kept as its token for
/// `Preference-Applied`.
#[derive(Debug, Default)]
struct Prefs {
    ret: Option<(Return, &'static str)>,
    resolution: Option<(Resolution, &'static str)>,
    count: Option<&'static str>,
    missing: Option<&'static str>,
    handling: Option<&'static str>,
    max_affected: Option<i64>,
}

impl Prefs {
    fn parse(headers: &HeaderMap) -> Result<Prefs, Failure> {
        let mut p = Prefs::default();
        let mut invalid = Vec::new();
        let tokens = headers
            .get_all("prefer")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty());
        for token in tokens {
            match token {
                "return=minimal" => {
                    p.ret.get_or_insert((Return::Minimal, "return=minimal"));
                }
                "return=representation" => {
                    p.ret
                        .get_or_insert((Return::Representation, "return=representation"));
                }
                "return=headers-only" => {
                    p.ret
                        .get_or_insert((Return::HeadersOnly, "return=headers-only"));
                }
                "resolution=merge-duplicates" => {
                    p.resolution
                        .get_or_insert((Resolution::Merge, "resolution=merge-duplicates"));
                }
                "resolution=ignore-duplicates" => {
                    p.resolution
                        .get_or_insert((Resolution::Ignore, "resolution=ignore-duplicates"));
                }
                // Planned and estimated counts are exact here: a local database is small.
                "count=exact" => {
                    p.count.get_or_insert("count=exact");
                }
                "count=planned" => {
                    p.count.get_or_insert("count=planned");
                }
                "count=estimated" => {
                    p.count.get_or_insert("count=estimated");
                }
                "missing=default" => {
                    p.missing.get_or_insert("missing=default");
                }
                "missing=null" => {
                    p.missing.get_or_insert("missing=null");
                }
                "handling=strict" => {
                    p.handling.get_or_insert("handling=strict");
                }
                "handling=lenient" => {
                    p.handling.get_or_insert("handling=lenient");
                }
                // Honoured only when db-tx-end allows it, which Supabase's configuration does not.
                "tx=commit" | "tx=rollback" => {}
                other => match other.strip_prefix("max-affected=") {
                    Some(n) => {
                        if let Ok(n) = n.parse() {
                            p.max_affected.get_or_insert(n);
                        }
                    }
                    None => invalid.push(other),
                },
            }
        }
        if p.strict() && !invalid.is_empty() {
            return Err(pgrst(
                StatusCode::BAD_REQUEST,
                "PGRST122",
                "Invalid preferences given with handling=strict",
                Some(format!("Invalid preferences: {}", invalid.join(", "))),
                None,
            ));
        }
        Ok(p)
    }

    fn strict(&self) -> bool {
        self.handling == Some("handling=strict")
    }

    fn ret(&self) -> Option<Return> {
        self.ret.map(|(r, _)| r)
    }

    fn resolution(&self) -> Option<Resolution> {
        self.resolution.map(|(r, _)| r)
    }

    /// `Preference-Applied`: what PostgREST reports for this action.
    fn applied(&self, action: Action, resolution_applies: bool) -> Option<String> {
        let write = action != Action::Read;
        let mut v: Vec<String> = Vec::new();
        let mut push = |t: Option<&str>| v.extend(t.map(str::to_owned));
        if action == Action::Insert && resolution_applies {
            push(self.resolution.map(|(_, t)| t));
        }
        if matches!(action, Action::Insert | Action::Update) {
            push(self.missing);
        }
        if write {
            push(self.ret.map(|(_, t)| t));
        }
        push(self.count);
        push(self.handling);
        if matches!(action, Action::Update | Action::Delete) && self.strict() {
            v.extend(self.max_affected.map(|n| format!("max-affected={n}")));
        }
        (!v.is_empty()).then(|| v.join(", "))
    }
}

/// The response's media type: a JSON array, or one object (`.single()`); `nulls=stripped`
/// drops null members.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Media {
    singular: bool,
    strip: bool,
}

impl Media {
    fn negotiate(headers: &HeaderMap) -> Result<Media, Failure> {
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .trim();
        if accept.is_empty() {
            return Ok(Media {
                singular: false,
                strip: false,
            });
        }
        let mut offered = Vec::new();
        for part in accept.split(',') {
            let mut pieces = part.split(';').map(str::trim);
            let mime = pieces.next().unwrap_or("").to_ascii_lowercase();
            let strip = pieces.any(|p| p.eq_ignore_ascii_case("nulls=stripped"));
            let media = |singular| Media { singular, strip };
            match mime.as_str() {
                "*/*" | "application/*" | "application/json" => {
                    return Ok(Media {
                        singular: false,
                        strip: false,
                    })
                }
                "application/vnd.pgrst.array+json" => return Ok(media(false)),
                "application/vnd.pgrst.object+json" => return Ok(media(true)),
                _ => offered.push(mime),
            }
        }
        Err(pgrst(
            StatusCode::NOT_ACCEPTABLE,
            "PGRST107",
            &format!(
                "None of these media types are available: {}",
                offered.join(", ")
            ),
            Some("fs-sync-dev answers table requests with JSON only".into()),
            None,
        ))
    }

    fn content_type(self) -> &'static str {
        match (self.singular, self.strip) {
            (false, false) => "application/json; charset=utf-8",
            (false, true) => "application/vnd.pgrst.array+json;nulls=stripped; charset=utf-8",
            (true, false) => "application/vnd.pgrst.object+json; charset=utf-8",
            (true, true) => "application/vnd.pgrst.object+json;nulls=stripped; charset=utf-8",
        }
    }

    /// The body's aggregate over `_postgrest_t`.
    fn aggregate(self) -> &'static str {
        match (self.singular, self.strip) {
            (false, false) => "coalesce(json_agg(_postgrest_t), '[]')::text",
            (false, true) => "coalesce(json_strip_nulls(json_agg(_postgrest_t)), '[]')::text",
            (true, false) => "coalesce(json_agg(_postgrest_t) -> 0, 'null')::text",
            (true, true) => "coalesce(json_strip_nulls(json_agg(_postgrest_t) -> 0), 'null')::text",
        }
    }
}

/// The rows a read returns: from `offset`, at most `limit`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Range {
    offset: i64,
    limit: Option<i64>,
}

impl Range {
    /// `limit`/`offset` intersected with a `Range: a-b` header (PostgREST's `getRanges`).
    fn new(
        limit: Option<i64>,
        offset: Option<i64>,
        header: Option<&str>,
    ) -> Result<Range, Failure> {
        let offset = offset.unwrap_or(0);
        if limit == Some(0) {
            return Ok(Range {
                offset,
                limit: Some(0),
            });
        }
        let mut lower = offset;
        let mut upper = limit.map(|l| offset + l - 1);
        let mut header_empty = false;
        if let Some((l, u)) = header.and_then(range_header) {
            header_empty = u.is_some_and(|u| u < l);
            lower = lower.max(l);
            upper = match (upper, u) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        match upper {
            Some(u) if u < lower => Err(pgrst(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "PGRST103",
                "Requested range not satisfiable",
                Some(if header_empty {
                    "The lower boundary must be lower than or equal to the upper boundary in the Range header.".into()
                } else {
                    "Limit should be greater than or equal to zero.".into()
                }),
                None,
            )),
            _ => Ok(Range {
                offset: lower,
                limit: upper.map(|u| u - lower + 1),
            }),
        }
    }

    fn sql(&self, sql: &mut Sql) -> String {
        if self.offset == 0 && self.limit.is_none() {
            return String::new();
        }
        let limit = match self.limit {
            Some(n) => format!("{}::int8", sql.param(n.to_string())),
            None => "ALL".to_owned(),
        };
        format!(
            " LIMIT {limit} OFFSET {}::int8",
            sql.param(self.offset.to_string())
        )
    }
}

/// `a-b` or `a-` (no unit), else the header is ignored.
fn range_header(value: &str) -> Option<(i64, Option<i64>)> {
    let (l, u) = value.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(l) || !(u.is_empty() || digits(u)) {
        return None;
    }
    Some((
        l.parse().ok()?,
        if u.is_empty() {
            None
        } else {
            Some(u.parse().ok()?)
        },
    ))
}

/// A POST or PATCH body: its rows as one JSON array, and the columns it writes.
#[derive(Debug)]
struct Payload {
    rows: String,
    columns: BTreeSet<String>,
}

impl Payload {
    fn parse(
        headers: &HeaderMap,
        body: &[u8],
        columns: Option<&[String]>,
    ) -> Result<Payload, Failure> {
        let mime = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|m| m.trim().to_ascii_lowercase());
        if let Some(m) = mime.filter(|m| m != "application/json") {
            return Err(pgrst(
                StatusCode::BAD_REQUEST,
                "PGRST102",
                &format!("Content-Type not acceptable: {m}"),
                None,
                None,
            ));
        }
        let value: Value = serde_json::from_slice(body).map_err(|_| invalid_body())?;
        let raw = std::str::from_utf8(body).map_err(|_| invalid_body())?;
        // Anything but an object or an array inserts nothing, as in PostgREST.
        let rows = match &value {
            Value::Object(_) => format!("[{raw}]"),
            Value::Array(_) => raw.to_owned(),
            _ => "[]".to_owned(),
        };
        let columns = match (columns, &value) {
            (Some(cols), _) => cols.iter().cloned().collect(),
            (None, Value::Object(o)) => o.keys().cloned().collect(),
            (None, Value::Array(a)) => {
                let keys = |v: &Value| -> Option<BTreeSet<String>> {
                    v.as_object().map(|o| o.keys().cloned().collect())
                };
                match a.first() {
                    None => BTreeSet::new(),
                    Some(first) => {
                        let first = keys(first);
                        if first.is_none() || a.iter().any(|v| keys(v) != first) {
                            return Err(pgrst(
                                StatusCode::BAD_REQUEST,
                                "PGRST102",
                                "All object keys must match",
                                None,
                                None,
                            ));
                        }
                        first.unwrap_or_default()
                    }
                }
            }
            (None, _) => BTreeSet::new(),
        };
        Ok(Payload { rows, columns })
    }
}

// ---------------------------------------------------------------------------------------------
// SQL

/// The statement's parameters: all text, each cast where it is used.
#[derive(Default)]
struct Sql {
    params: Vec<String>,
}

impl Sql {
    fn param(&mut self, value: String) -> String {
        self.params.push(value);
        format!("${}::text", self.params.len())
    }

    /// A value of `column`'s type (or an array of them). An unknown column is left for
    /// PostgreSQL to report, as PostgREST does.
    fn typed(&mut self, value: String, column: Option<&Column>, array: bool) -> String {
        let p = self.param(value);
        match column {
            Some(c) => format!("{p}::{}{}", c.base, if array { "[]" } else { "" }),
            None => p,
        }
    }
}

/// `{"a","b"}`: values as an array literal, every element quoted (PostgREST's
/// `pgBuildArrayLiteral`).
fn array_literal(values: &[String]) -> String {
    let elements: Vec<String> = values
        .iter()
        .map(|v| format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("{{{}}}", elements.join(","))
}

/// A SQL string literal of a catalog-provided name.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl Cond {
    fn sql(&self, sql: &mut Sql, rel: &Relation, qual: &str) -> String {
        match self {
            Cond::Filter(f) => f.sql(sql, rel, qual),
            Cond::Tree {
                negate,
                or,
                children,
            } => {
                let parts: Vec<String> = children.iter().map(|c| c.sql(sql, rel, qual)).collect();
                format!(
                    "{}({})",
                    if *negate { "NOT " } else { "" },
                    parts.join(if *or { " OR " } else { " AND " })
                )
            }
        }
    }
}

impl Filter {
    fn sql(&self, sql: &mut Sql, rel: &Relation, qual: &str) -> String {
        let col = format!("{qual}.{}", ident(&self.column));
        let column = rel.column(&self.column);
        let expr = match &self.op {
            Op::Compare { sql: op, value } => {
                format!("{col} {op} {}", sql.typed(value.clone(), column, false))
            }
            Op::Quantified {
                sql: op,
                quant,
                value,
            } => format!(
                "{col} {op} {quant}({})",
                sql.typed(value.clone(), column, true)
            ),
            Op::Is(keyword) => format!("{col} IS {keyword}"),
            // `in.()`: no value can match.
            Op::In(values) if values.len() == 1 && values[0].is_empty() => {
                format!("{col} = ANY('{{}}')")
            }
            Op::In(values) => format!(
                "{col} = ANY({})",
                sql.typed(array_literal(values), column, true)
            ),
        };
        if self.negate {
            format!("NOT {expr}")
        } else {
            expr
        }
    }
}

fn where_sql(conds: &[Cond], sql: &mut Sql, rel: &Relation, qual: &str) -> String {
    if conds.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = conds.iter().map(|c| c.sql(sql, rel, qual)).collect();
    format!(" WHERE {}", parts.join(" AND "))
}

fn select_sql(items: &[SelectItem], qual: &str) -> String {
    if items.is_empty() {
        return format!("{qual}.*");
    }
    let parts: Vec<String> = items
        .iter()
        .map(|item| match item {
            SelectItem::Star => format!("{qual}.*"),
            SelectItem::Field {
                column,
                alias,
                cast,
            } => {
                let mut s = format!("{qual}.{}", ident(column));
                if let Some(cast) = cast {
                    // The type is letters, digits, `_`, `$` and spaces only (parsed so), and
                    // cannot leave the CAST's parentheses; quoting it would break `int`, `bigint`.
                    s = format!("CAST({s} AS {cast})");
                }
                if let Some(alias) = alias {
                    s = format!("{s} AS {}", ident(alias));
                }
                s
            }
        })
        .collect();
    parts.join(", ")
}

fn order_sql(terms: &[OrderTerm], qual: &str) -> String {
    if terms.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = terms
        .iter()
        .map(|t| {
            let mut s = format!("{qual}.{}", ident(&t.column));
            match t.desc {
                Some(true) => s.push_str(" DESC"),
                Some(false) => s.push_str(" ASC"),
                None => {}
            }
            match t.nulls_first {
                Some(true) => s.push_str(" NULLS FIRST"),
                Some(false) => s.push_str(" NULLS LAST"),
                None => {}
            }
            s
        })
        .collect();
    format!(" ORDER BY {}", parts.join(", "))
}

/// GET/HEAD: the rows, their count and, with `count=`, the total of the filtered relation.
fn read_sql(req: &Request<'_>, rel: &Relation, sql: &mut Sql) -> String {
    let q = rel.qualified();
    let filter = where_sql(&req.params.conditions, sql, rel, &q);
    let total = if req.prefs.count.is_some() {
        format!("(SELECT count(*) FROM {q}{filter})")
    } else {
        "NULL::int8".to_owned()
    };
    let range = req.range.sql(sql);
    format!(
        "SELECT {}, count(*), {total} FROM (SELECT {} FROM {q}{filter}{}{range}) _postgrest_t",
        req.media.aggregate(),
        select_sql(&req.params.select, &q),
        order_sql(&req.params.order, &q),
    )
}

/// Counts rows an upsert inserts (+1 per row offered, -1 per conflict updated), as PostgREST
/// does to answer 200 rather than 201 when an upsert only updated.
const INSERTED_PLUS: &str = "set_config('pgrst.inserted', (coalesce(nullif(current_setting('pgrst.inserted', true), '')::int, 0) + 1)::text, true) <> '0'";
const INSERTED_MINUS: &str = "set_config('pgrst.inserted', (coalesce(nullif(current_setting('pgrst.inserted', true), '')::int, 0) - 1)::text, true) <> '-1'";

/// What a write's response carries.
enum Shape {
    /// Nothing but counts.
    Minimal,
    /// The rows (return=representation).
    Rows,
    /// The primary key of the inserted row, for `Location` (return=headers-only).
    Location,
}

impl Request<'_> {
    fn shape(&self, rel: &Relation) -> Shape {
        match self.prefs.ret() {
            Some(Return::Representation) => Shape::Rows,
            Some(Return::HeadersOnly)
                if self.action == Action::Insert && rel.pk().next().is_some() =>
            {
                Shape::Location
            }
            _ => Shape::Minimal,
        }
    }

    fn merges(&self) -> bool {
        self.action == Action::Insert && self.prefs.resolution() == Some(Resolution::Merge)
    }
}

/// POST/PATCH/DELETE: the mutation in `pgrst_source`, then what the response needs of its rows.
fn write_sql(req: &Request<'_>, rel: &Relation, sql: &mut Sql) -> String {
    let q = rel.qualified();
    let alias = ident(&rel.name);
    let shape = req.shape(rel);
    // RETURNING only what the response reads: a minimal insert then needs no SELECT privilege
    // (nor passes SELECT policies), as in PostgREST.
    let returned: Vec<String> = match req.prefs.ret() {
        Some(Return::Representation | Return::HeadersOnly) => {
            let select = &req.params.select;
            if select.is_empty() || select.contains(&SelectItem::Star) {
                vec![format!("{q}.*")]
            } else {
                let mut cols: Vec<&str> = Vec::new();
                let named = select.iter().filter_map(|i| match i {
                    SelectItem::Field { column, .. } => Some(column.as_str()),
                    SelectItem::Star => None,
                });
                for c in named.chain(rel.pk().map(|c| c.name.as_str())) {
                    if !cols.contains(&c) {
                        cols.push(c);
                    }
                }
                cols.iter().map(|c| format!("{q}.{}", ident(c))).collect()
            }
        }
        _ => vec!["1".to_owned()],
    };
    let returning = format!("RETURNING {}", returned.join(", "));
    let columns: Vec<&Column> = req
        .payload
        .iter()
        .flat_map(|p| p.columns.iter())
        .filter_map(|c| rel.column(c))
        .collect();
    let missing_default = req.prefs.missing == Some("missing=default");

    let mutation = match req.action {
        Action::Insert => {
            let rows = req
                .payload
                .as_ref()
                .map_or_else(String::new, |p| p.rows.clone());
            let (from, values) = body_source(sql, &columns, rows, missing_default, false);
            let names: Vec<String> = columns.iter().map(|c| ident(&c.name)).collect();
            let target = if names.is_empty() {
                String::new()
            } else {
                format!("({})", names.join(", "))
            };
            let counter = if req.merges() {
                format!(" WHERE {INSERTED_PLUS}")
            } else {
                String::new()
            };
            let conflict: Vec<String> = match &req.params.on_conflict {
                Some(cols) => cols.iter().map(|c| ident(c)).collect(),
                None => rel.pk().map(|c| ident(&c.name)).collect(),
            };
            let on_conflict = match req.prefs.resolution() {
                Some(_) if conflict.is_empty() => String::new(),
                None => String::new(),
                Some(Resolution::Ignore) => {
                    format!(" ON CONFLICT({}) DO NOTHING", conflict.join(", "))
                }
                Some(Resolution::Merge) if names.is_empty() => {
                    format!(" ON CONFLICT({}) DO NOTHING", conflict.join(", "))
                }
                Some(Resolution::Merge) => {
                    let set: Vec<String> = names
                        .iter()
                        .map(|n| format!("{n} = EXCLUDED.{n}"))
                        .collect();
                    format!(
                        " ON CONFLICT({}) DO UPDATE SET {} WHERE {INSERTED_MINUS}",
                        conflict.join(", "),
                        set.join(", ")
                    )
                }
            };
            format!(
                "INSERT INTO {q}{target} SELECT {values} {from}{counter}{on_conflict} {returning}"
            )
        }
        Action::Update if columns.is_empty() => {
            // Nothing to set: PostgREST selects no rows (`UPDATE … SET` needs a column).
            format!("SELECT {} FROM {q} WHERE false", returned.join(", "))
        }
        Action::Update => {
            let rows = req
                .payload
                .as_ref()
                .map_or_else(String::new, |p| p.rows.clone());
            let (from, _) = body_source(sql, &columns, rows, missing_default, true);
            let set: Vec<String> = columns
                .iter()
                .map(|c| format!("{0} = pgrst_body.{0}", ident(&c.name)))
                .collect();
            let filter = where_sql(&req.params.conditions, sql, rel, &q);
            format!(
                "UPDATE {q} SET {} {from}{filter} {returning}",
                set.join(", ")
            )
        }
        Action::Delete | Action::Read => {
            let filter = where_sql(&req.params.conditions, sql, rel, &q);
            format!("DELETE FROM {q}{filter} {returning}")
        }
    };
    let (body, source) = match shape {
        Shape::Minimal => ("NULL::text", "SELECT * FROM pgrst_source".to_owned()),
        Shape::Rows => (
            req.media.aggregate(),
            format!(
                "SELECT {} FROM pgrst_source AS {alias}{}",
                select_sql(&req.params.select, &alias),
                order_sql(&req.params.order, &alias)
            ),
        ),
        Shape::Location => {
            let pk: Vec<String> = rel
                .pk()
                .map(|c| format!("{alias}.{}", ident(&c.name)))
                .collect();
            (
                "coalesce(json_agg(_postgrest_t), '[]')::text",
                format!("SELECT {} FROM pgrst_source AS {alias}", pk.join(", ")),
            )
        }
    };
    let inserted = if req.merges() {
        "nullif(current_setting('pgrst.inserted', true), '')::int8"
    } else {
        "NULL::int8"
    };
    format!("WITH pgrst_source AS ({mutation}) SELECT {body}, count(*), {inserted} FROM ({source}) _postgrest_t")
}

/// The body's rows typed as `columns` (PostgREST's `fromJsonBodyF`): the `FROM` clause naming
/// them `pgrst_body`, and the list selecting them. With `defaults`, a member a row lacks takes
/// the column's default (`Prefer: missing=default`).
fn body_source(
    sql: &mut Sql,
    columns: &[&Column],
    rows: String,
    defaults: bool,
    limit_one: bool,
) -> (String, String) {
    let p = sql.param(rows);
    if columns.is_empty() {
        // `{}` or `[{}, {}]`: one row of defaults per object.
        return (
            format!("FROM json_array_elements({p}::json) pgrst_body"),
            String::new(),
        );
    }
    let names: Vec<String> = columns.iter().map(|c| ident(&c.name)).collect();
    let typed: Vec<String> = columns
        .iter()
        .map(|c| format!("{} {}", ident(&c.name), c.typ))
        .collect();
    let limit = if limit_one { " LIMIT 1" } else { "" };
    let from = if defaults {
        // Default expressions come from the catalog, as PostgREST splices them.
        let defs: Vec<String> = columns
            .iter()
            .filter_map(|c| {
                c.default
                    .as_ref()
                    .map(|d| format!("{}, {d}", literal(&c.name)))
            })
            .collect();
        format!(
            "FROM (SELECT {p}::jsonb AS json_data) pgrst_payload, \
             LATERAL (SELECT jsonb_agg(jsonb_build_object({}) || elem) AS val FROM jsonb_array_elements(pgrst_payload.json_data) elem) pgrst_json_defs, \
             LATERAL (SELECT {} FROM jsonb_to_recordset(pgrst_json_defs.val) AS _({}){limit}) pgrst_body",
            defs.join(", "),
            names.join(", "),
            typed.join(", ")
        )
    } else {
        format!(
            "FROM (SELECT {p}::json AS json_data) pgrst_payload, \
             LATERAL (SELECT {} FROM json_to_recordset(pgrst_payload.json_data) AS _({}){limit}) pgrst_body",
            names.join(", "),
            typed.join(", ")
        )
    };
    let values: Vec<String> = names.iter().map(|n| format!("pgrst_body.{n}")).collect();
    (from, values.join(", "))
}

// ---------------------------------------------------------------------------------------------
// Responses

/// `Content-Range` (PostgREST's `contentRangeH`).
fn content_range(lower: i64, upper: i64, total: Option<i64>) -> String {
    let range = if total != Some(0) && lower <= upper {
        format!("{lower}-{upper}")
    } else {
        "*".to_owned()
    };
    let total = total.map_or_else(|| "*".to_owned(), |t| t.to_string());
    format!("{range}/{total}")
}

fn read_response(
    req: &Request<'_>,
    body: String,
    count: i64,
    total: Option<i64>,
) -> Result<Response, Failure> {
    let lower = req.range.offset;
    let upper = lower + count - 1;
    let range = content_range(lower, upper, total);
    let status = match total {
        Some(t) if lower > t => {
            let mut r = pgrst_response(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "PGRST103",
                "Requested range not satisfiable",
                Some(format!(
                    "An offset of {lower} was requested, but there are only {t} rows."
                )),
                None,
            );
            set_header(&mut r, header::CONTENT_RANGE, &range);
            return Err(Failure::Response(r));
        }
        Some(t) if 1 + upper - lower < t => StatusCode::PARTIAL_CONTENT,
        _ => StatusCode::OK,
    };
    let mut r = (
        status,
        [(header::CONTENT_TYPE, req.media.content_type())],
        body,
    )
        .into_response();
    set_header(&mut r, header::CONTENT_RANGE, &range);
    if let Some(applied) = req.prefs.applied(Action::Read, false) {
        set_header(&mut r, PREFERENCE_APPLIED, &applied);
    }
    Ok(r)
}

const PREFERENCE_APPLIED: HeaderName = HeaderName::from_static("preference-applied");

fn write_response(
    req: &Request<'_>,
    rel: &Relation,
    body: Option<String>,
    count: i64,
    inserted: Option<i64>,
) -> Response {
    let total = req.prefs.count.map(|_| count);
    let shape = req.shape(rel);
    let representation = matches!(shape, Shape::Rows);
    let (status, range) = match req.action {
        Action::Insert => {
            let status = if req.merges() && inserted.unwrap_or(0) <= 0 {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            (status, content_range(1, 0, total))
        }
        Action::Update => (
            if representation {
                StatusCode::OK
            } else {
                StatusCode::NO_CONTENT
            },
            content_range(0, count - 1, total),
        ),
        Action::Delete | Action::Read => (
            if representation {
                StatusCode::OK
            } else {
                StatusCode::NO_CONTENT
            },
            content_range(1, 0, total),
        ),
    };
    let mut r = if representation {
        (
            status,
            [(header::CONTENT_TYPE, req.media.content_type())],
            body.clone().unwrap_or_default(),
        )
            .into_response()
    } else {
        http::empty(status)
    };
    set_header(&mut r, header::CONTENT_RANGE, &range);
    if matches!(shape, Shape::Location) && count == 1 {
        if let Some(location) = body.as_deref().and_then(|b| location(&rel.name, b)) {
            set_header(&mut r, header::LOCATION, &location);
        }
    }
    let resolution_applies = rel.pk().next().is_some() || req.params.on_conflict.is_some();
    if let Some(applied) = req.prefs.applied(req.action, resolution_applies) {
        set_header(&mut r, PREFERENCE_APPLIED, &applied);
    }
    r
}

/// `/<table>?pk=eq.value&…` for the one inserted row.
fn location(table: &str, rows: &str) -> Option<String> {
    let rows: Value = serde_json::from_str(rows).ok()?;
    let row = rows.get(0)?.as_object()?;
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in row {
        let filter = match v {
            Value::Null => "is.null".to_owned(),
            Value::String(s) => format!("eq.{s}"),
            other => format!("eq.{other}"),
        };
        query.append_pair(k, &filter);
    }
    Some(format!("/{table}?{}", query.finish()))
}

fn set_header(r: &mut Response, name: HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
}

fn pgrst_response(
    status: StatusCode,
    code: &str,
    message: &str,
    details: Option<String>,
    hint: Option<String>,
) -> Response {
    let text = |s: Option<String>| s.map_or(Value::Null, Value::String);
    http::pgrst_error(status, code, message, text(details), text(hint), None)
}

fn pgrst(
    status: StatusCode,
    code: &str,
    message: &str,
    details: Option<String>,
    hint: Option<String>,
) -> Failure {
    Failure::Response(pgrst_response(status, code, message, details, hint))
}

/// PostgREST's answer for a path into an embedded resource: there are none without embedding.
fn not_embedded(resource: &str) -> Failure {
    pgrst(
        StatusCode::BAD_REQUEST,
        "PGRST108",
        &format!("'{resource}' is not an embedded resource in this request"),
        None,
        Some(format!(
            "Verify that '{resource}' is included in the 'select' query parameter."
        )),
    )
}

/// 400 PGRST127: valid PostgREST that fs-sync-dev does not implement.
fn not_implemented(details: &str) -> Failure {
    pgrst(
        StatusCode::BAD_REQUEST,
        "PGRST127",
        "Feature not implemented",
        Some(details.to_owned()),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(key: &str, value: &str) -> Result<Filter, Syntax> {
        let (negate, op) = op_expr(&mut Cursor::new(value), false)?;
        Ok(Filter {
            column: key.into(),
            negate,
            op,
        })
    }

    fn compare(sql: &'static str, value: &str) -> Op {
        Op::Compare {
            sql,
            value: value.into(),
        }
    }

    #[test]
    fn filters() {
        assert_eq!(filter("a", "eq.1").unwrap().op, compare("=", "1"));
        assert_eq!(filter("a", "eq.").unwrap().op, compare("=", ""));
        assert_eq!(filter("a", "eq.x.y,z").unwrap().op, compare("=", "x.y,z"));
        assert_eq!(
            filter("a", "like.src/*").unwrap().op,
            compare("LIKE", "src/%")
        );
        assert_eq!(
            filter("a", "isdistinct.1").unwrap().op,
            compare("IS DISTINCT FROM", "1")
        );
        let f = filter("a", "not.is.NULL").unwrap();
        assert!(f.negate);
        assert_eq!(f.op, Op::Is("NULL"));
        assert_eq!(filter("a", "is.not_null").unwrap().op, Op::Is("NOT NULL"));
        assert_eq!(
            filter("a", r#"in.(a, b,"c,d","e\"f")"#).unwrap().op,
            Op::In(vec!["a".into(), " b".into(), "c,d".into(), "e\"f".into()])
        );
        assert_eq!(
            filter("a", "in.()").unwrap().op,
            Op::In(vec![String::new()])
        );
        assert_eq!(
            filter("a", "like(any).{a*,b}").unwrap().op,
            Op::Quantified {
                sql: "LIKE",
                quant: "ANY",
                value: "{a%,b}".into()
            }
        );
        assert_eq!(
            filter("a", "xx.1").unwrap_err(),
            Syntax::At {
                column: 1,
                details: "unexpected \"x\" expecting \"not\" or operator (eq, gt, ...)".into()
            }
        );
        assert_eq!(
            filter("a", "is.maybe").unwrap_err(),
            Syntax::At {
                column: 4,
                details: "unexpected \"m\" expecting isVal: (null, not_null, true, false, unknown)"
                    .into()
            }
        );
        assert!(matches!(filter("a", "in.(1,2"), Err(Syntax::At { .. })));
        assert!(matches!(
            filter("a", "eq1"),
            Err(Syntax::At { column: 3, .. })
        ));
        assert!(matches!(filter("a", "fts.x"), Err(Syntax::Unsupported(_))));
    }

    #[test]
    fn logic_trees() {
        let tree = logic_tree(&mut Cursor::new(
            "or(a.eq.1,not.and(b.in.(1,2),c.is.null),d.eq.\"x,y\")",
        ))
        .unwrap();
        let Cond::Tree {
            negate: false,
            or: true,
            children,
        } = tree
        else {
            panic!("{tree:?}")
        };
        assert_eq!(children.len(), 3);
        assert!(
            matches!(&children[1], Cond::Tree { negate: true, or: false, children } if children.len() == 2)
        );
        assert!(
            matches!(&children[2], Cond::Filter(Filter { op: Op::Compare { value, .. }, .. }) if value == "x,y")
        );
        assert!(matches!(
            logic_tree(&mut Cursor::new("or(a.eq.1")),
            Err(Syntax::At { .. })
        ));
        assert!(matches!(
            logic_tree(&mut Cursor::new("or(a.zz.1)")),
            Err(Syntax::At { .. })
        ));
    }

    #[test]
    fn select_order_and_keys() {
        let items =
            select_items(&mut Cursor::new("file_path, v:version::text,\"odd col\",*")).unwrap();
        assert_eq!(
            items,
            vec![
                SelectItem::Field {
                    column: "file_path".into(),
                    alias: None,
                    cast: None
                },
                SelectItem::Field {
                    column: "version".into(),
                    alias: Some("v".into()),
                    cast: Some("text".into())
                },
                SelectItem::Field {
                    column: "odd col".into(),
                    alias: None,
                    cast: None
                },
                SelectItem::Star,
            ]
        );
        assert!(select_items(&mut Cursor::new("")).unwrap().is_empty());
        for embedded in [
            "*,owner(*)",
            "...owner(name)",
            "owner!inner(id)",
            "data->a",
            "id.sum()",
        ] {
            assert!(
                matches!(
                    select_items(&mut Cursor::new(embedded)),
                    Err(Syntax::Unsupported(_))
                ),
                "{embedded}"
            );
        }
        assert_eq!(
            order_terms(&mut Cursor::new("a,b.desc.nullslast,c.nullsfirst")).unwrap(),
            vec![
                OrderTerm {
                    column: "a".into(),
                    desc: None,
                    nulls_first: None
                },
                OrderTerm {
                    column: "b".into(),
                    desc: Some(true),
                    nulls_first: Some(false)
                },
                OrderTerm {
                    column: "c".into(),
                    desc: None,
                    nulls_first: Some(true)
                },
            ]
        );
        assert!(matches!(
            order_terms(&mut Cursor::new("a.up")),
            Err(Syntax::At { .. })
        ));
        assert_eq!(
            order_terms(&mut Cursor::new("rel(a)")),
            Err(Syntax::NotEmbedded("rel".into()))
        );
        assert_eq!(
            field_list(&mut Cursor::new("\"a\",b, c")).unwrap(),
            vec!["a", "b", "c"]
        );
        assert!(filter_key("a.b").is_err());
        assert_eq!(filter_key("file-path").ok().as_deref(), Some("file-path"));
    }

    #[test]
    fn ranges() {
        let r = |l, o, h| Range::new(l, o, h).ok();
        assert_eq!(
            r(None, None, None),
            Some(Range {
                offset: 0,
                limit: None
            })
        );
        assert_eq!(
            r(Some(10), Some(5), None),
            Some(Range {
                offset: 5,
                limit: Some(10)
            })
        );
        assert_eq!(
            r(None, None, Some("2-4")),
            Some(Range {
                offset: 2,
                limit: Some(3)
            })
        );
        assert_eq!(
            r(Some(2), None, Some("1-")),
            Some(Range {
                offset: 1,
                limit: Some(1)
            })
        );
        assert_eq!(
            r(None, None, Some("items=0-4")),
            Some(Range {
                offset: 0,
                limit: None
            })
        );
        assert_eq!(
            r(Some(0), Some(3), None),
            Some(Range {
                offset: 3,
                limit: Some(0)
            })
        );
        assert_eq!(r(Some(-1), None, None), None);
        assert_eq!(r(None, None, Some("4-2")), None);
        assert_eq!(content_range(0, 2, None), "0-2/*");
        assert_eq!(content_range(0, -1, None), "*/*");
        assert_eq!(content_range(0, -1, Some(0)), "*/0");
        assert_eq!(content_range(1, 0, Some(3)), "*/3");
        assert_eq!(content_range(5, 6, Some(9)), "5-6/9");
    }

    #[test]
    fn sql_pieces() {
        assert_eq!(
            array_literal(&["a".into(), "b,\"c\\".into()]),
            r#"{"a","b,\"c\\"}"#
        );
        let rel = Relation {
            name: "t".into(),
            columns: vec![Column {
                name: "n".into(),
                typ: "numeric(4,1)".into(),
                base: "numeric".into(),
                default: None,
                pk: true,
            }],
        };
        let mut sql = Sql::default();
        let f = Filter {
            column: "n".into(),
            negate: true,
            op: Op::In(vec!["1".into(), "2".into()]),
        };
        assert_eq!(
            f.sql(&mut sql, &rel, "\"t\""),
            "NOT \"t\".\"n\" = ANY($1::text::numeric[])"
        );
        let f = Filter {
            column: "x".into(),
            negate: false,
            op: compare("=", "1"),
        };
        assert_eq!(f.sql(&mut sql, &rel, "\"t\""), "\"t\".\"x\" = $2::text");
        assert_eq!(sql.params, vec!["{\"1\",\"2\"}", "1"]);
        let names = vec![
            "project_files".to_owned(),
            "projects".to_owned(),
            "profiles".to_owned(),
        ];
        assert_eq!(closest("project_file", &names), Some("project_files"));
        assert_eq!(closest("zzz", &names), None);
    }

    #[test]
    fn preferences() {
        let mut h = HeaderMap::new();
        h.append(
            "prefer",
            HeaderValue::from_static("resolution=merge-duplicates, return=representation"),
        );
        h.append(
            "prefer",
            HeaderValue::from_static("count=exact,return=minimal, missing=default, bogus"),
        );
        let p = Prefs::parse(&h).ok().unwrap();
        assert_eq!(p.ret(), Some(Return::Representation));
        assert_eq!(p.resolution(), Some(Resolution::Merge));
        assert_eq!(
            p.applied(Action::Insert, true).as_deref(),
            Some(
                "resolution=merge-duplicates, missing=default, return=representation, count=exact"
            )
        );
        assert_eq!(
            p.applied(Action::Read, true).as_deref(),
            Some("count=exact")
        );
        h.append("prefer", HeaderValue::from_static("handling=strict"));
        assert!(Prefs::parse(&h).is_err());
    }
}
