//! `/realtime/v1/websocket`: Phoenix channels as Supabase Realtime serves them.
//!
//! - Joins verify the channel's JWT (the join's `access_token`, else the socket's `apikey`),
//!   which must carry `role` and `exp`. A private join runs Realtime's read check: in a
//!   transaction, as the superuser, insert probe rows into `realtime.messages` for the topic,
//!   then with the joiner's role, claims and `realtime.topic` set, select them back; visible
//!   means allowed; roll back.
//! - Delivery: a trigger (`supabase/local-base/35_realtime_notify.sql`) NOTIFYs each committed
//!   `realtime.messages` row (the message itself when it fits NOTIFY's limit, else its id, whose
//!   row the listener loads); the listener fans them out in notification (= commit) order to
//!   channels joined on the message's topic in the same namespace (private messages reach
//!   private channels only, and the reverse).
//! - Faults: drop every socket abruptly; hold (then deliver in order) or drop messages.

mod protocol;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_postgres::{AsyncMessage, Config, NoTls};

use crate::http;
use crate::jwt::{self, Claims, JwtError};
use crate::pool::PoolError;
use crate::App;
use protocol::{ClientMsg, Vsn};

/// A committed `realtime.messages` row.
pub(crate) struct DbMessage {
    id: String,
    topic: String,
    event: String,
    private: bool,
    /// JSON text, or None for a binary payload.
    payload: Option<String>,
    binary: Option<Vec<u8>>,
}

/// A broadcast pushed by a client, relayed to the topic's other subscribers.
struct RelayMsg {
    event: String,
    /// JSON text of the user payload (JSON pushes and JSON-encoded binary pushes).
    json: Option<String>,
    binary: Option<Vec<u8>>,
    /// It arrived as a binary push: V2 subscribers get a kind-4 frame.
    via_binary: bool,
    from: u64,
    include_sender: bool,
}

enum Outbound {
    Db(u64, Arc<DbMessage>),
    Relay(u64, Arc<RelayMsg>),
}

enum Control {
    /// Close with a 1001 close frame (server shutdown).
    Close,
    /// Drop the connection without a close frame (fault injection).
    Drop,
}

#[derive(Clone)]
struct Sub {
    id: u64,
    tx: mpsc::Sender<Outbound>,
}

/// The delivery switch, and counts that let a test wait for the stack to have handled a message
/// instead of sleeping (`GET /admin/v1/faults`).
struct Delivery {
    mode: Mode,
    /// Messages fanned out to their topic's subscribers since the start.
    delivered: u64,
    /// Messages lost to the drop fault since the start.
    dropped: u64,
}

enum Mode {
    Live,
    Held(VecDeque<Arc<DbMessage>>),
    Dropping(u64),
}

/// Subscriptions, connections and the delivery switch.
pub(crate) struct Hub {
    subs: RwLock<HashMap<(bool, String), Vec<Sub>>>,
    conns: Mutex<HashMap<u64, mpsc::UnboundedSender<Control>>>,
    delivery: Mutex<Delivery>,
    next: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Hub {
    pub(crate) fn new() -> Hub {
        Hub {
            subs: RwLock::new(HashMap::new()),
            conns: Mutex::new(HashMap::new()),
            delivery: Mutex::new(Delivery {
                mode: Mode::Live,
                delivered: 0,
                dropped: 0,
            }),
            next: AtomicU64::new(1),
        }
    }

    fn next_id(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    fn subscribe(&self, private: bool, topic: &str, tx: mpsc::Sender<Outbound>) -> u64 {
        let id = self.next_id();
        self.subs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry((private, topic.to_owned()))
            .or_default()
            .push(Sub { id, tx });
        id
    }

    fn unsubscribe(&self, private: bool, topic: &str, id: u64) {
        let mut subs = self.subs.write().unwrap_or_else(|e| e.into_inner());
        let key = (private, topic.to_owned());
        if let Some(list) = subs.get_mut(&key) {
            list.retain(|s| s.id != id);
            if list.is_empty() {
                subs.remove(&key);
            }
        }
    }

    /// Hands a committed message to its subscribers, or holds/drops it while paused.
    fn deliver(&self, msg: Arc<DbMessage>) {
        let mut d = lock(&self.delivery);
        match &mut d.mode {
            Mode::Live => {
                self.fan_out(&msg);
                d.delivered += 1;
            }
            Mode::Held(q) => q.push_back(msg),
            Mode::Dropping(n) => {
                *n += 1;
                d.dropped += 1;
            }
        }
    }

    fn fan_out(&self, msg: &Arc<DbMessage>) {
        let subs = self.subs.read().unwrap_or_else(|e| e.into_inner());
        if let Some(list) = subs.get(&(msg.private, msg.topic.clone())) {
            for s in list {
                if s.tx.try_send(Outbound::Db(s.id, msg.clone())).is_err() {
                    eprintln!(
                        "{}",
                        json!({"warning": "realtime subscriber queue full; message dropped", "topic": msg.topic})
                    );
                }
            }
        }
    }

    fn relay(&self, private: bool, topic: &str, msg: Arc<RelayMsg>) {
        let subs = self.subs.read().unwrap_or_else(|e| e.into_inner());
        if let Some(list) = subs.get(&(private, topic.to_owned())) {
            for s in list {
                if s.id == msg.from && !msg.include_sender {
                    continue;
                }
                let _ = s.tx.try_send(Outbound::Relay(s.id, msg.clone()));
            }
        }
    }

    /// Pauses delivery: `hold` keeps messages for [`Hub::resume`], otherwise they are dropped.
    pub(crate) fn pause(&self, hold: bool) {
        let mut d = lock(&self.delivery);
        if matches!(d.mode, Mode::Live) {
            d.mode = if hold {
                Mode::Held(VecDeque::new())
            } else {
                Mode::Dropping(0)
            };
        }
    }

    /// Resumes delivery; held messages go out first, in order. Returns (delivered, dropped).
    pub(crate) fn resume(&self) -> (usize, u64) {
        let mut d = lock(&self.delivery);
        match std::mem::replace(&mut d.mode, Mode::Live) {
            Mode::Live => (0, 0),
            Mode::Held(q) => {
                let n = q.len();
                for m in q {
                    self.fan_out(&m);
                }
                d.delivered += n as u64;
                (n, 0)
            }
            Mode::Dropping(n) => (0, n),
        }
    }

    /// `{mode, delivered, dropped, held}`: the mode (`live`, `hold` or `drop`), the counts
    /// since the start, and the messages held now.
    pub(crate) fn delivery_status(&self) -> Value {
        let d = lock(&self.delivery);
        let (mode, held) = match &d.mode {
            Mode::Live => ("live", 0),
            Mode::Held(q) => ("hold", q.len()),
            Mode::Dropping(_) => ("drop", 0),
        };
        json!({"mode": mode, "delivered": d.delivered, "dropped": d.dropped, "held": held})
    }

    /// Drops every websocket abruptly (no close frame). Returns how many.
    pub(crate) fn drop_all(&self) -> usize {
        let conns = lock(&self.conns);
        for c in conns.values() {
            let _ = c.send(Control::Drop);
        }
        conns.len()
    }

    /// Closes every websocket with a close frame.
    pub(crate) fn close_all(&self) {
        for c in lock(&self.conns).values() {
            let _ = c.send(Control::Close);
        }
    }
}

/// Creates the `realtime.messages` partitions from yesterday to three days ahead, as Realtime's
/// janitor does for a hosted project: once before the stack serves (an error fails the start),
/// then every hour, so a stack left running across midnight keeps storing broadcasts.
pub(crate) async fn spawn_janitor(
    pool: crate::pool::Pool,
    mut shutdown: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, crate::Error> {
    async fn run(pool: &crate::pool::Pool) -> Result<(), String> {
        let conn = pool.get().await.map_err(|e| e.to_string())?;
        conn.batch_execute("select realtime.fsync_dev_create_partitions()")
            .await
            .map_err(|e| fs_sync_pg::db_message(&e))
    }
    run(&pool)
        .await
        .map_err(|e| crate::Error::Config(format!("creating realtime.messages partitions: {e}")))?;
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
            if let Err(e) = run(&pool).await {
                eprintln!("{}", json!({"error": format!("realtime partitions: {e}")}));
            }
        }
    }))
}

/// Starts the LISTEN loop that feeds committed messages to the hub; reconnects if the
/// connection drops.
pub(crate) async fn spawn_listener(
    config: Config,
    hub: Arc<Hub>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, crate::Error> {
    // Connect once up front so a misconfigured database fails the start.
    let first = listen(&config).await?;
    Ok(tokio::spawn(async move {
        let mut conn = Some(first);
        loop {
            let (client, rx) = match conn.take() {
                Some(c) => c,
                None => match listen(&config).await {
                    Ok(c) => c,
                    Err(e) => {
                        eprintln!("{}", json!({"error": format!("realtime listener: {e}")}));
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_millis(500)) => continue,
                            _ = shutdown.wait_for(|s| *s) => return,
                        }
                    }
                },
            };
            tokio::select! {
                _ = pump(&client, rx, &hub) => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }))
}

type Listening = (tokio_postgres::Client, mpsc::UnboundedReceiver<String>);

async fn listen(config: &Config) -> Result<Listening, tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(m) = messages.next().await {
            match m {
                Ok(AsyncMessage::Notification(n)) => {
                    if tx.send(n.payload().to_owned()).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    client.batch_execute("listen fsync_realtime").await?;
    Ok((client, rx))
}

/// What a notification carries: the message itself, or (too large for NOTIFY, or binary) its id.
enum Notified {
    Message(DbMessage),
    Id(String),
}

impl Notified {
    fn parse(payload: String) -> Notified {
        #[derive(serde::Deserialize)]
        struct Inline<'a> {
            id: String,
            topic: String,
            event: String,
            private: bool,
            #[serde(borrow)]
            payload: Option<&'a serde_json::value::RawValue>,
        }
        match serde_json::from_str::<Inline<'_>>(&payload) {
            Ok(m) => Notified::Message(DbMessage {
                id: m.id,
                topic: m.topic,
                event: m.event,
                private: m.private,
                payload: m.payload.map(|p| p.get().to_owned()),
                binary: None,
            }),
            Err(_) => Notified::Id(payload),
        }
    }
}

/// Delivers notified messages in notification order, loading in batches those sent by id.
async fn pump(client: &tokio_postgres::Client, mut rx: mpsc::UnboundedReceiver<String>, hub: &Hub) {
    let Ok(stmt) = client
        .prepare(
            "select id::text, topic, coalesce(event, ''), coalesce(private, false), payload::text, binary_payload
               from realtime.messages where id = any($1::uuid[])",
        )
        .await
    else {
        return;
    };
    while let Some(first) = rx.recv().await {
        let mut batch = vec![Notified::parse(first)];
        while batch.len() < 500 {
            match rx.try_recv() {
                Ok(payload) => batch.push(Notified::parse(payload)),
                Err(_) => break,
            }
        }
        let uuids: Vec<uuid::Uuid> = batch
            .iter()
            .filter_map(|n| match n {
                Notified::Id(id) => id.parse().ok(),
                Notified::Message(_) => None,
            })
            .collect();
        let mut by_id: HashMap<String, DbMessage> = HashMap::new();
        if !uuids.is_empty() {
            let rows = match client.query(&stmt, &[&uuids]).await {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("{}", json!({"error": format!("realtime fetch: {e}")}));
                    if client.is_closed() {
                        return;
                    }
                    continue;
                }
            };
            by_id = rows
                .into_iter()
                .map(|r| {
                    let m = DbMessage {
                        id: r.get(0),
                        topic: r.get(1),
                        event: r.get(2),
                        private: r.get(3),
                        payload: r.get(4),
                        binary: r.get(5),
                    };
                    (m.id.clone(), m)
                })
                .collect();
        }
        for n in batch {
            let m = match n {
                Notified::Message(m) => Some(m),
                Notified::Id(id) => by_id.remove(&id),
            };
            if let Some(m) = m {
                hub.deliver(Arc::new(m));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The websocket
// ---------------------------------------------------------------------------------------------

/// GET `/realtime/v1/websocket?apikey=…&vsn=…`.
pub(crate) async fn websocket(
    State(app): State<Arc<App>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let q = query.as_deref();
    // The gateway's key check (query parameter or header), as on the REST routes.
    let key = match http::api_key(&headers, q) {
        Some(k) => k,
        None => {
            return http::gateway_refusal(&http::AuthError::NoApiKey).expect("a refusal");
        }
    };
    if key != app.info.anon_key && key != app.info.service_role_key {
        return http::gateway_refusal(&http::AuthError::BadApiKey).expect("a refusal");
    }
    let vsn = match http::query_param(q, "vsn").as_deref() {
        None | Some("1.0.0") => Vsn::V1,
        Some("2.0.0") => Vsn::V2,
        Some(other) => {
            return http::json_response(
                StatusCode::BAD_REQUEST,
                &json!({"error": format!("The client's requested transport version \"{other}\" does not match server's version requirements of \"~> 1.0.0\" or \"~> 2.0.0\"")}),
            )
        }
    };
    // Realtime reads the socket token from x-api-key first, then the apikey parameter.
    let socket_token = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or(key);
    if let Err(msg) = confirm_token(&app, &socket_token) {
        return http::json_response(StatusCode::UNAUTHORIZED, &json!({"error": msg}));
    }
    let mut x_headers = serde_json::Map::new();
    for (k, v) in &headers {
        if k.as_str().starts_with("x-") {
            if let Ok(v) = v.to_str() {
                x_headers.insert(k.as_str().to_owned(), Value::String(v.to_owned()));
            }
        }
    }
    let x_headers = Value::Object(x_headers).to_string();
    let mut r = upgrade.on_upgrade(move |socket| async move {
        let (conn, rx) = Connection::new(app, vsn, socket_token, x_headers);
        run(conn, rx, socket).await;
    });
    r.extensions_mut()
        .insert(http::LogRole("realtime".to_owned()));
    r
}

/// Realtime's token check for a channel: signature, `role` and `exp` present, not expired.
/// The error is the join-reply reason (`<Code>: <message>`).
fn confirm_token(app: &App, token: &str) -> Result<(Claims, i64), String> {
    let claims = jwt::decode(token, &app.info.jwt_secret).map_err(|e| match e {
        JwtError::Signature => "JwtSignatureError: Failed to validate JWT signature".to_owned(),
        JwtError::Algorithm(_) => {
            "JwtSignerError: Failed to generate JWT signer, check your JWT secret or JWKS configuration"
                .to_owned()
        }
        _ => "MalformedJWT: The token provided is not a valid JWT".to_owned(),
    })?;
    let exp = match (
        claims.get("role"),
        claims.get("exp").and_then(Value::as_i64),
    ) {
        (Some(_), Some(exp)) => exp,
        _ => return Err("InvalidJWTToken: Fields `role` and `exp` are required in JWT".to_owned()),
    };
    let now = jwt::now();
    if exp <= now {
        return Err(format!(
            "InvalidJWTToken: Token has expired {} seconds ago",
            now - exp
        ));
    }
    Ok((claims, exp))
}

/// The message part of a `<Code>: <message>` reason (what `system` errors carry).
fn message_of(reason: &str) -> String {
    reason
        .split_once(": ")
        .map(|(_, m)| m.to_owned())
        .unwrap_or_else(|| reason.to_owned())
}

struct Channel {
    join_ref: Option<String>,
    sub: u64,
    private: bool,
    sub_topic: String,
    token: String,
    exp: i64,
    read: bool,
    write: Option<bool>,
    self_broadcast: bool,
    ack: bool,
}

struct Connection {
    app: Arc<App>,
    id: u64,
    vsn: Vsn,
    socket_token: String,
    x_headers: String,
    channels: HashMap<String, Channel>,
    tx: mpsc::Sender<Outbound>,
}

/// What the loop should do after handling an event.
enum Flow {
    Continue,
    Stop,
}

impl Connection {
    fn new(
        app: Arc<App>,
        vsn: Vsn,
        socket_token: String,
        x_headers: String,
    ) -> (Connection, mpsc::Receiver<Outbound>) {
        let (tx, rx) = mpsc::channel(4096);
        let id = app.hub.next_id();
        (
            Connection {
                app,
                id,
                vsn,
                socket_token,
                x_headers,
                channels: HashMap::new(),
                tx,
            },
            rx,
        )
    }
}

/// Serves one socket until it closes, is dropped, idles out or the server stops.
async fn run(mut conn: Connection, mut rx: mpsc::Receiver<Outbound>, socket: WebSocket) {
    {
        let (ctl_tx, mut ctl_rx) = mpsc::unbounded_channel();
        lock(&conn.app.hub.conns).insert(conn.id, ctl_tx);
        let mut socket = socket;
        let mut shutdown = conn.app.shutdown.clone();
        let idle = Duration::from_secs(60);
        let mut last_seen = Instant::now();
        let mut graceful = *shutdown.borrow();
        while !graceful {
            let next_exp = conn
                .channels
                .values()
                .map(|c| c.exp)
                .min()
                .map(|exp| {
                    // The wall-clock moment itself, not whole seconds from now: every connection
                    // holding the same token closes its channels at the same moment.
                    let at = UNIX_EPOCH + Duration::from_secs(exp.max(0) as u64);
                    let left = at.duration_since(SystemTime::now()).unwrap_or_default();
                    Instant::now() + left + Duration::from_millis(50)
                })
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            let flow = tokio::select! {
                biased;
                c = ctl_rx.recv() => match c {
                    Some(Control::Drop) | None => Flow::Stop,
                    Some(Control::Close) => { graceful = true; Flow::Continue }
                },
                _ = async { let _ = shutdown.wait_for(|s| *s).await; } => { graceful = true; Flow::Continue }
                m = socket.recv() => match m {
                    Some(Ok(m)) => { last_seen = Instant::now(); conn.on_client(&mut socket, m).await }
                    _ => Flow::Stop,
                },
                Some(out) = rx.recv() => conn.on_outbound(&mut socket, out).await,
                _ = tokio::time::sleep_until(next_exp) => conn.expire(&mut socket).await,
                _ = tokio::time::sleep_until(last_seen + idle) => Flow::Stop,
            };
            if matches!(flow, Flow::Stop) {
                break;
            }
        }
        if graceful {
            let _ = socket
                .send(Message::Close(Some(CloseFrame {
                    code: 1001,
                    reason: "server shutting down".into(),
                })))
                .await;
        }
        for ch in conn.channels.values() {
            conn.app.hub.unsubscribe(ch.private, &ch.sub_topic, ch.sub);
        }
        lock(&conn.app.hub.conns).remove(&conn.id);
    }
}

impl Connection {
    async fn send_text(&self, socket: &mut WebSocket, text: String) -> Flow {
        match socket.send(Message::Text(text.into())).await {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::Stop,
        }
    }

    async fn push(
        &self,
        socket: &mut WebSocket,
        join_ref: Option<&str>,
        reference: Option<&str>,
        topic: &str,
        event: &str,
        payload: &Value,
    ) -> Flow {
        let text = protocol::encode(
            self.vsn,
            join_ref,
            reference,
            topic,
            event,
            &payload.to_string(),
        );
        self.send_text(socket, text).await
    }

    async fn reply(
        &self,
        socket: &mut WebSocket,
        m: &ClientMsg,
        status: &str,
        response: Value,
    ) -> Flow {
        self.push(
            socket,
            m.join_ref.as_deref(),
            m.reference.as_deref(),
            &m.topic,
            "phx_reply",
            &json!({"status": status, "response": response}),
        )
        .await
    }

    async fn on_client(&mut self, socket: &mut WebSocket, message: Message) -> Flow {
        let msg = match message {
            Message::Text(t) => protocol::decode_text(self.vsn, t.as_str()),
            Message::Binary(b) if self.vsn == Vsn::V2 => protocol::decode_binary(&b),
            Message::Close(_) => return Flow::Stop,
            _ => return Flow::Continue,
        };
        let Some(msg) = msg else {
            return Flow::Continue;
        };
        if msg.topic == "phoenix" && msg.event == "heartbeat" {
            return self.reply(socket, &msg, "ok", json!({})).await;
        }
        if msg.event == "phx_join" {
            return self.join(socket, msg).await;
        }
        if !self.channels.contains_key(&msg.topic) {
            return self
                .reply(socket, &msg, "error", json!({"reason": "unmatched topic"}))
                .await;
        }
        match msg.event.as_str() {
            "phx_leave" => {
                if let Some(ch) = self.channels.remove(&msg.topic) {
                    self.app.hub.unsubscribe(ch.private, &ch.sub_topic, ch.sub);
                }
                self.reply(socket, &msg, "ok", json!({})).await
            }
            "access_token" => self.refresh_token(socket, msg).await,
            "broadcast" => self.client_broadcast(socket, msg).await,
            // Presence is accepted but not tracked or fanned out (fs-sync does not use it).
            "presence" => self.reply(socket, &msg, "ok", json!({})).await,
            _ => Flow::Continue,
        }
    }

    async fn join(&mut self, socket: &mut WebSocket, msg: ClientMsg) -> Flow {
        let Some(sub_topic) = msg.topic.strip_prefix("realtime:").map(str::to_owned) else {
            return self
                .reply(socket, &msg, "error", json!({"reason": "unmatched topic"}))
                .await;
        };
        if sub_topic.is_empty() {
            return self
                .reply(
                    socket,
                    &msg,
                    "error",
                    json!({"reason": "TopicNameRequired: You must provide a topic name"}),
                )
                .await;
        }
        let config = msg.payload.get("config").cloned().unwrap_or(Value::Null);
        let private = config
            .get("private")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let flag = |path: &[&str]| {
            let mut v = &config;
            for p in path {
                v = match v.get(p) {
                    Some(x) => x,
                    None => return false,
                };
            }
            v.as_bool().unwrap_or(false)
        };
        let self_broadcast = flag(&["broadcast", "self"]);
        let ack = flag(&["broadcast", "ack"]);
        let presence = flag(&["presence", "enabled"]);
        let token = msg
            .payload
            .get("access_token")
            .or_else(|| msg.payload.get("user_token"))
            .and_then(Value::as_str)
            .filter(|t| !t.starts_with("sb_"))
            .map(str::to_owned)
            .unwrap_or_else(|| self.socket_token.clone());

        // A second join of the same topic replaces the first, as Phoenix does.
        if let Some(old) = self.channels.remove(&msg.topic) {
            self.app
                .hub
                .unsubscribe(old.private, &old.sub_topic, old.sub);
            let j = old.join_ref.as_deref();
            if let Flow::Stop = self
                .push(socket, j, j, &msg.topic, "phx_close", &json!({}))
                .await
            {
                return Flow::Stop;
            }
        }

        let (claims, exp) = match confirm_token(&self.app, &token) {
            Ok(c) => c,
            Err(reason) => {
                return self
                    .reply(socket, &msg, "error", json!({"reason": reason}))
                    .await
            }
        };
        let read = if private {
            match authorize_read(&self.app, &claims, &sub_topic, presence, &self.x_headers).await {
                Ok(true) => true,
                Ok(false) | Err(_) => {
                    return self
                        .reply(
                            socket,
                            &msg,
                            "error",
                            json!({"reason": format!("Unauthorized: You do not have permissions to read from this Channel topic: {sub_topic}")}),
                        )
                        .await
                }
            }
        } else {
            true
        };
        let sub = self.app.hub.subscribe(private, &sub_topic, self.tx.clone());
        self.channels.insert(
            msg.topic.clone(),
            Channel {
                join_ref: msg.join_ref.clone(),
                sub,
                private,
                sub_topic: sub_topic.clone(),
                token,
                exp,
                read,
                write: None,
                self_broadcast,
                ack,
            },
        );
        // Postgres Changes are not served here; echo the bindings so the client subscribes,
        // then say so on the channel.
        let changes: Vec<Value> = config
            .get("postgres_changes")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, mut c)| {
                if let Value::Object(o) = &mut c {
                    o.insert("id".into(), json!(i + 1));
                }
                c
            })
            .collect();
        let has_changes = !changes.is_empty();
        if let Flow::Stop = self
            .reply(socket, &msg, "ok", json!({"postgres_changes": changes}))
            .await
        {
            return Flow::Stop;
        }
        let j = msg.join_ref.as_deref();
        if presence {
            if let Flow::Stop = self
                .push(socket, j, None, &msg.topic, "presence_state", &json!({}))
                .await
            {
                return Flow::Stop;
            }
        }
        if has_changes {
            let payload = json!({"extension": "postgres_changes", "status": "error",
                "message": "fs-sync-dev does not serve Postgres Changes", "channel": sub_topic});
            return self
                .push(socket, j, None, &msg.topic, "system", &payload)
                .await;
        }
        Flow::Continue
    }

    /// Sends `system` {status: error} and `phx_close`, and forgets the channel (Realtime's
    /// `shutdown_response`).
    async fn shut_channel(&mut self, socket: &mut WebSocket, topic: &str, message: &str) -> Flow {
        let Some(ch) = self.channels.remove(topic) else {
            return Flow::Continue;
        };
        self.app.hub.unsubscribe(ch.private, &ch.sub_topic, ch.sub);
        let j = ch.join_ref.as_deref();
        let payload = json!({"extension": "system", "status": "error", "message": message, "channel": ch.sub_topic});
        if let Flow::Stop = self.push(socket, j, None, topic, "system", &payload).await {
            return Flow::Stop;
        }
        self.push(socket, j, j, topic, "phx_close", &json!({}))
            .await
    }

    async fn refresh_token(&mut self, socket: &mut WebSocket, msg: ClientMsg) -> Flow {
        let Some(token) = msg.payload.get("access_token").and_then(Value::as_str) else {
            return Flow::Continue;
        };
        let ch = self
            .channels
            .get(&msg.topic)
            .expect("checked by the caller");
        if token.starts_with("sb_") || token == ch.token {
            return Flow::Continue;
        }
        let token = token.to_owned();
        let (claims, exp) = match confirm_token(&self.app, &token) {
            Ok(c) => c,
            Err(reason) => {
                return self
                    .shut_channel(socket, &msg.topic, &message_of(&reason))
                    .await
            }
        };
        let (private, sub_topic, was_read) = (ch.private, ch.sub_topic.clone(), ch.read);
        let read = if private {
            authorize_read(&self.app, &claims, &sub_topic, false, &self.x_headers)
                .await
                .unwrap_or(false)
        } else {
            true
        };
        if was_read && !read {
            let m = format!(
                "You no longer have permission to read from this Channel topic: {sub_topic}"
            );
            return self.shut_channel(socket, &msg.topic, &m).await;
        }
        if let Some(ch) = self.channels.get_mut(&msg.topic) {
            ch.token = token;
            ch.exp = exp;
            ch.read = read;
            ch.write = None;
        }
        Flow::Continue
    }

    async fn client_broadcast(&mut self, socket: &mut WebSocket, msg: ClientMsg) -> Flow {
        let ch = self
            .channels
            .get(&msg.topic)
            .expect("checked by the caller");
        let (private, sub_topic, sub, include_sender, ack) = (
            ch.private,
            ch.sub_topic.clone(),
            ch.sub,
            ch.self_broadcast,
            ch.ack,
        );
        if private {
            let write = match ch.write {
                Some(w) => w,
                None => {
                    let claims =
                        jwt::decode(&ch.token, &self.app.info.jwt_secret).unwrap_or_default();
                    let w = authorize_write(&self.app, &claims, &sub_topic, &self.x_headers)
                        .await
                        .unwrap_or(false);
                    if let Some(ch) = self.channels.get_mut(&msg.topic) {
                        ch.write = Some(w);
                    }
                    w
                }
            };
            if !write {
                // Realtime drops a broadcast without write permission silently.
                return Flow::Continue;
            }
        }
        let reply_to = ClientMsg {
            join_ref: msg.join_ref.clone(),
            reference: msg.reference.clone(),
            topic: msg.topic.clone(),
            event: msg.event.clone(),
            payload: Value::Null,
            binary: None,
        };
        let relay = match msg.binary {
            Some(b) => RelayMsg {
                event: b.event,
                json: b
                    .json
                    .then(|| String::from_utf8_lossy(&b.data).into_owned()),
                binary: (!b.json).then_some(b.data),
                via_binary: true,
                from: sub,
                include_sender,
            },
            None => {
                let event = msg
                    .payload
                    .get("event")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                let inner = msg.payload.get("payload").cloned().unwrap_or(json!({}));
                RelayMsg {
                    event,
                    json: Some(inner.to_string()),
                    binary: None,
                    via_binary: false,
                    from: sub,
                    include_sender,
                }
            }
        };
        self.app.hub.relay(private, &sub_topic, Arc::new(relay));
        if ack {
            return self.reply(socket, &reply_to, "ok", json!({})).await;
        }
        Flow::Continue
    }

    async fn on_outbound(&mut self, socket: &mut WebSocket, out: Outbound) -> Flow {
        match out {
            Outbound::Db(sub, m) => {
                let Some(topic) = self.topic_of(sub) else {
                    return Flow::Continue;
                };
                let meta = json!({"id": m.id}).to_string();
                if self.vsn == Vsn::V2 {
                    let (json, bytes) = match (&m.payload, &m.binary) {
                        (Some(p), _) => (true, p.as_bytes()),
                        (None, Some(b)) => (false, b.as_slice()),
                        (None, None) => (true, "null".as_bytes()),
                    };
                    if let Some(frame) =
                        protocol::encode_user_broadcast(&topic, &m.event, Some(&meta), json, bytes)
                    {
                        return match socket.send(Message::Binary(frame.into())).await {
                            Ok(()) => Flow::Continue,
                            Err(_) => Flow::Stop,
                        };
                    }
                }
                let Some(payload) = &m.payload else {
                    // V1 sockets cannot represent binary payloads.
                    return Flow::Continue;
                };
                let body = format!(
                    "{{\"type\":\"broadcast\",\"event\":{},\"payload\":{payload},\"meta\":{meta}}}",
                    Value::from(m.event.as_str())
                );
                let text = protocol::encode(self.vsn, None, None, &topic, "broadcast", &body);
                self.send_text(socket, text).await
            }
            Outbound::Relay(sub, m) => {
                let Some(topic) = self.topic_of(sub) else {
                    return Flow::Continue;
                };
                if self.vsn == Vsn::V2 && m.via_binary {
                    let (json, bytes) = match (&m.json, &m.binary) {
                        (Some(j), _) => (true, j.as_bytes()),
                        (None, Some(b)) => (false, b.as_slice()),
                        (None, None) => (true, "{}".as_bytes()),
                    };
                    if let Some(frame) =
                        protocol::encode_user_broadcast(&topic, &m.event, None, json, bytes)
                    {
                        return match socket.send(Message::Binary(frame.into())).await {
                            Ok(()) => Flow::Continue,
                            Err(_) => Flow::Stop,
                        };
                    }
                }
                let Some(payload) = &m.json else {
                    return Flow::Continue;
                };
                let body = format!(
                    "{{\"type\":\"broadcast\",\"event\":{},\"payload\":{payload}}}",
                    Value::from(m.event.as_str())
                );
                let text = protocol::encode(self.vsn, None, None, &topic, "broadcast", &body);
                self.send_text(socket, text).await
            }
        }
    }

    fn topic_of(&self, sub: u64) -> Option<String> {
        self.channels
            .iter()
            .find(|(_, c)| c.sub == sub && c.read)
            .map(|(t, _)| t.clone())
    }

    async fn expire(&mut self, socket: &mut WebSocket) -> Flow {
        let now = jwt::now();
        let expired: Vec<(String, i64)> = self
            .channels
            .iter()
            .filter(|(_, c)| c.exp <= now)
            .map(|(t, c)| (t.clone(), c.exp))
            .collect();
        for (topic, exp) in expired {
            let m = format!("Token has expired {} seconds ago", now - exp);
            if let Flow::Stop = self.shut_channel(socket, &topic, &m).await {
                return Flow::Stop;
            }
        }
        Flow::Continue
    }
}

/// The settings Realtime sets for a policy check, transaction-locally.
async fn set_policy_context(
    tx: &tokio_postgres::Transaction<'_>,
    claims: &Claims,
    topic: &str,
    x_headers: &str,
) -> Result<(), tokio_postgres::Error> {
    let role = claims
        .get("role")
        .and_then(Value::as_str)
        .unwrap_or("anon")
        .to_owned();
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let names = vec![
        "role",
        "realtime.topic",
        "request.jwt.claims",
        "request.jwt.claim.sub",
        "request.jwt.claim.role",
        "request.headers",
    ];
    let values = vec![
        role.clone(),
        topic.to_owned(),
        Value::Object(claims.clone()).to_string(),
        sub,
        role,
        x_headers.to_owned(),
    ];
    tx.query(
        "select set_config(k, v, true) from unnest($1::text[], $2::text[]) with ordinality as s(k, v, n) order by s.n",
        &[&names, &values],
    )
    .await?;
    Ok(())
}

/// Realtime's read check: probe rows inserted as the superuser, selected back as the joiner.
async fn authorize_read(
    app: &App,
    claims: &Claims,
    topic: &str,
    presence: bool,
    x_headers: &str,
) -> Result<bool, PoolError> {
    let mut conn = app.admin_pool.get().await?;
    let tx = conn.transaction().await?;
    let extensions: Vec<&str> = if presence {
        vec!["broadcast", "presence"]
    } else {
        vec!["broadcast"]
    };
    let ids: Vec<uuid::Uuid> = tx
        .query(
            "insert into realtime.messages (topic, extension, private)
             select $1, e, true from unnest($2::text[]) as e
             returning id",
            &[&topic, &extensions],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    set_policy_context(&tx, claims, topic, x_headers).await?;
    let visible = tx
        .query(
            "select id from realtime.messages where id = any($1::uuid[])",
            &[&ids],
        )
        .await;
    tx.rollback().await?;
    Ok(!visible?.is_empty())
}

/// Realtime's write check: an insert under the user's role, rolled back.
async fn authorize_write(
    app: &App,
    claims: &Claims,
    topic: &str,
    x_headers: &str,
) -> Result<bool, PoolError> {
    let mut conn = app.admin_pool.get().await?;
    let tx = conn.transaction().await?;
    set_policy_context(&tx, claims, topic, x_headers).await?;
    let inserted = tx
        .execute(
            "insert into realtime.messages (topic, extension, private) values ($1, 'broadcast', true)",
            &[&topic],
        )
        .await;
    let _ = tx.rollback().await;
    match inserted {
        Ok(_) => Ok(true),
        Err(e) if e.as_db_error().is_some_and(|d| d.code().code() == "42501") => Ok(false),
        Err(e) => Err(e.into()),
    }
}
