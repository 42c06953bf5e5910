//! /realtime/v1/websocket: Phoenix framing (1.0.0 and 2.0.0 with binary broadcasts), private
//! channel authorization, delivery of committed messages, token refresh and expiry, faults.

mod common;

use std::time::Duration;

use common::{now, stack};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A decoded server frame: (join_ref, ref, topic, event, payload); kind-4 frames become
/// `broadcast` with `{type, event, payload, meta}` as realtime-js rebuilds them.
#[derive(Debug)]
struct Frame {
    reference: Option<String>,
    topic: String,
    event: String,
    payload: Value,
    binary: bool,
}

struct Client {
    ws: Ws,
    v2: bool,
    next_ref: u64,
}

impl Client {
    async fn connect(s: &common::Stack, v2: bool) -> Client {
        let url = format!(
            "{}/realtime/v1/websocket?apikey={}&vsn={}",
            s.dev.info().api_url.replacen("http", "ws", 1),
            s.anon(),
            if v2 { "2.0.0" } else { "1.0.0" }
        );
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        Client {
            ws,
            v2,
            next_ref: 1,
        }
    }

    async fn send(
        &mut self,
        join_ref: Option<&str>,
        topic: &str,
        event: &str,
        payload: Value,
    ) -> String {
        let r = self.next_ref.to_string();
        self.next_ref += 1;
        let text = if self.v2 {
            json!([join_ref, r, topic, event, payload]).to_string()
        } else {
            json!({"join_ref": join_ref, "ref": r, "topic": topic, "event": event, "payload": payload}).to_string()
        };
        self.ws.send(Message::Text(text.into())).await.unwrap();
        r
    }

    async fn next(&mut self, within: Duration) -> Option<Frame> {
        loop {
            let m = tokio::time::timeout(within, self.ws.next())
                .await
                .ok()??
                .ok()?;
            match m {
                Message::Text(t) => {
                    let v: Value = serde_json::from_str(t.as_str()).unwrap();
                    return Some(if self.v2 {
                        Frame {
                            reference: v[1].as_str().map(str::to_owned),
                            topic: v[2].as_str().unwrap().to_owned(),
                            event: v[3].as_str().unwrap().to_owned(),
                            payload: v[4].clone(),
                            binary: false,
                        }
                    } else {
                        assert!(
                            v.get("join_ref").is_none(),
                            "v1 server frames carry no join_ref"
                        );
                        Frame {
                            reference: v["ref"].as_str().map(str::to_owned),
                            topic: v["topic"].as_str().unwrap().to_owned(),
                            event: v["event"].as_str().unwrap().to_owned(),
                            payload: v["payload"].clone(),
                            binary: false,
                        }
                    });
                }
                Message::Binary(b) => {
                    assert!(self.v2, "binary frames only for vsn 2.0.0");
                    assert_eq!(b[0], 4, "realtime-js decodes only kind 4");
                    let (t, e, m) = (b[1] as usize, b[2] as usize, b[3] as usize);
                    let json_payload = b[4] == 1;
                    let mut at = 5;
                    let topic = String::from_utf8(b[at..at + t].to_vec()).unwrap();
                    at += t;
                    let event = String::from_utf8(b[at..at + e].to_vec()).unwrap();
                    at += e;
                    let meta: Value = if m == 0 {
                        Value::Null
                    } else {
                        serde_json::from_slice(&b[at..at + m]).unwrap()
                    };
                    at += m;
                    assert!(json_payload);
                    let payload: Value = serde_json::from_slice(&b[at..]).unwrap();
                    return Some(Frame {
                        reference: None,
                        topic,
                        event: "broadcast".into(),
                        payload: json!({"type": "broadcast", "event": event, "payload": payload, "meta": meta}),
                        binary: true,
                    });
                }
                Message::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// The reply to `reference`, skipping other frames.
    async fn reply(&mut self, reference: &str) -> Value {
        loop {
            let f = self.next(Duration::from_secs(10)).await.expect("a reply");
            if f.event == "phx_reply" && f.reference.as_deref() == Some(reference) {
                return f.payload;
            }
        }
    }

    async fn join(&mut self, topic: &str, private: bool, token: Option<&str>) -> Value {
        let mut payload = json!({"config": {"broadcast": {"ack": false, "self": false},
                                            "presence": {"key": "", "enabled": false},
                                            "postgres_changes": [], "private": private}});
        if let Some(t) = token {
            payload["access_token"] = json!(t);
        }
        let r = self
            .send(Some("1"), &format!("realtime:{topic}"), "phx_join", payload)
            .await;
        self.reply(&r).await
    }

    async fn broadcast(&mut self) -> Frame {
        loop {
            let f = self
                .next(Duration::from_secs(10))
                .await
                .expect("a broadcast");
            if f.event == "broadcast" {
                return f;
            }
        }
    }
}

async fn save(s: &common::Stack, token: &str, project: &str, path: &str, content: &str) -> Value {
    let r = s
        .rpc(
            "upsert_project_file",
            Some(token),
            json!({"project_uuid": project, "p_file_path": path, "p_content": content}),
        )
        .await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn private_channels_receive_commits_in_both_protocols() {
    let s = stack().await;
    let (owner, token) = s.user().await;
    let (_, stranger) = s.user().await;
    let project = s.project(&owner).await;
    let topic = format!("project:{project}");

    let mut v2 = Client::connect(&s, true).await;
    let mut v1 = Client::connect(&s, false).await;
    let mut public = Client::connect(&s, true).await;
    assert_eq!(v2.join(&topic, true, Some(&token)).await["status"], "ok");
    assert_eq!(v1.join(&topic, true, Some(&token)).await["status"], "ok");
    // The public namespace is separate: private messages never reach it.
    assert_eq!(public.join(&topic, false, None).await["status"], "ok");

    // A non-member is refused with Realtime's reason.
    let mut outsider = Client::connect(&s, true).await;
    let reply = outsider.join(&topic, true, Some(&stranger)).await;
    assert_eq!(reply["status"], "error");
    assert_eq!(
        reply["response"]["reason"],
        format!(
            "Unauthorized: You do not have permissions to read from this Channel topic: {topic}"
        )
    );
    // So is anon (the socket's key) on a private channel.
    let reply = outsider.join(&topic, true, None).await;
    assert_eq!(reply["status"], "error");

    // Heartbeats.
    let r = v2.send(None, "phoenix", "heartbeat", json!({})).await;
    assert_eq!(v2.reply(&r).await, json!({"status": "ok", "response": {}}));

    let written = save(&s, &token, &project, "src/a.ts", "export {}\n").await;
    let f = v2.broadcast().await;
    assert!(f.binary, "v2 broadcasts are kind-4 binary frames");
    assert_eq!(f.topic, format!("realtime:{topic}"));
    assert_eq!(f.payload["event"], "file:update");
    assert_eq!(f.payload["payload"]["seq"], written["seq"]);
    assert_eq!(f.payload["payload"]["content"], "export {}\n");
    let id = f.payload["meta"]["id"].as_str().unwrap().to_owned();

    let f = v1.broadcast().await;
    assert!(!f.binary);
    assert_eq!(f.payload["type"], "broadcast");
    assert_eq!(f.payload["event"], "file:update");
    assert_eq!(f.payload["payload"]["file_path"], "src/a.ts");
    assert_eq!(f.payload["meta"]["id"], id.as_str());

    assert!(public.next(Duration::from_millis(300)).await.is_none());

    // Commit order under concurrency: seq arrives strictly increasing, for messages small enough
    // to travel inside the notification and for those too large for it (loaded by id) alike.
    let content = |i: usize| {
        if i % 2 == 1 {
            "y".repeat(20_000)
        } else {
            "x".to_owned()
        }
    };
    let mut writes = Vec::new();
    for i in 0..10 {
        let s2 = &s;
        let (t, p) = (token.clone(), project.clone());
        let c = content(i);
        writes.push(async move { save(s2, &t, &p, &format!("f{i}.txt"), &c).await });
    }
    futures_util::future::join_all(writes).await;
    let mut last = 1;
    for _ in 0..10 {
        let f = v2.broadcast().await;
        let seq = f.payload["payload"]["seq"].as_i64().unwrap();
        assert_eq!(seq, last + 1);
        last = seq;
        let path = f.payload["payload"]["file_path"].as_str().unwrap();
        let i: usize = path[1..path.len() - 4].parse().unwrap();
        assert_eq!(
            f.payload["payload"]["content"],
            content(i).as_str(),
            "{path}"
        );
    }

    // Leaving stops delivery.
    let r = v2
        .send(
            Some("1"),
            &format!("realtime:{topic}"),
            "phx_leave",
            json!({}),
        )
        .await;
    assert_eq!(v2.reply(&r).await["status"], "ok");
    save(&s, &token, &project, "after-leave.txt", "x").await;
    assert!(v2.next(Duration::from_millis(300)).await.is_none());

    s.dev.shutdown().await;
}

#[tokio::test]
async fn token_refresh_and_expiry_close_the_channel() {
    let s = stack().await;
    let (owner, token) = s.user().await;
    let (stranger_id, _) = s.user().await;
    let project = s.project(&owner).await;
    let topic = format!("project:{project}");

    let mut c = Client::connect(&s, true).await;
    assert_eq!(c.join(&topic, true, Some(&token)).await["status"], "ok");

    // A fresh token for the same user keeps the channel working.
    let fresh = s
        .admin(
            "/admin/v1/token",
            json!({"user_id": owner, "expires_in": 600}),
        )
        .await;
    c.send(
        Some("1"),
        &format!("realtime:{topic}"),
        "access_token",
        json!({"access_token": fresh["access_token"]}),
    )
    .await;
    save(&s, &token, &project, "a.txt", "1").await;
    assert_eq!(c.broadcast().await.payload["payload"]["seq"], 1);

    // A token of someone who may not read: system error, then phx_close.
    let other = s
        .admin("/admin/v1/token", json!({"user_id": stranger_id}))
        .await;
    c.send(
        Some("1"),
        &format!("realtime:{topic}"),
        "access_token",
        json!({"access_token": other["access_token"]}),
    )
    .await;
    let f = c.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(f.event, "system");
    assert_eq!(f.payload["status"], "error");
    assert_eq!(f.payload["extension"], "system");
    assert_eq!(f.payload["channel"], topic.as_str());
    assert_eq!(
        f.payload["message"],
        format!("You no longer have permission to read from this Channel topic: {topic}")
    );
    assert_eq!(
        c.next(Duration::from_secs(5)).await.unwrap().event,
        "phx_close"
    );

    // Expiry: a token that expires in 2 s closes the channel when it does.
    let short = s.sign(json!({"sub": owner, "role": "authenticated", "exp": now() + 2}));
    assert_eq!(c.join(&topic, true, Some(&short)).await["status"], "ok");
    let f = c.next(Duration::from_secs(6)).await.unwrap();
    assert_eq!(f.event, "system");
    assert!(f.payload["message"]
        .as_str()
        .unwrap()
        .starts_with("Token has expired"));
    assert_eq!(
        c.next(Duration::from_secs(5)).await.unwrap().event,
        "phx_close"
    );

    // An expired token or one without exp is refused at join.
    let expired = s.sign(json!({"sub": owner, "role": "authenticated", "exp": now() - 10}));
    let reply = c.join(&topic, true, Some(&expired)).await;
    assert!(reply["response"]["reason"]
        .as_str()
        .unwrap()
        .starts_with("InvalidJWTToken: Token has expired"));
    let no_exp = s.sign(json!({"sub": owner, "role": "authenticated"}));
    let reply = c.join(&topic, true, Some(&no_exp)).await;
    assert_eq!(
        reply["response"]["reason"],
        "InvalidJWTToken: Fields `role` and `exp` are required in JWT"
    );

    s.dev.shutdown().await;
}

#[tokio::test]
async fn faults_hold_drop_and_disconnect() {
    let s = stack().await;
    let (owner, token) = s.user().await;
    let project = s.project(&owner).await;
    let topic = format!("project:{project}");
    let mut c = Client::connect(&s, true).await;
    assert_eq!(c.join(&topic, true, Some(&token)).await["status"], "ok");

    assert_eq!(
        s.faults().await,
        json!({"mode": "live", "delivered": 0, "dropped": 0, "held": 0})
    );

    // Held: nothing arrives while paused; resume delivers in commit order.
    s.admin("/admin/v1/faults/pause-delivery", json!({})).await;
    save(&s, &token, &project, "a.txt", "1").await;
    save(&s, &token, &project, "b.txt", "2").await;
    let held = s
        .faults_until("two held messages", |f| f["held"] == 2)
        .await;
    assert_eq!(held["mode"], "hold");
    assert!(c.next(Duration::from_millis(300)).await.is_none());
    let resumed = s.admin("/admin/v1/faults/resume-delivery", json!({})).await;
    assert_eq!(resumed["delivered"], 2);
    assert_eq!(c.broadcast().await.payload["payload"]["seq"], 1);
    assert_eq!(c.broadcast().await.payload["payload"]["seq"], 2);
    assert_eq!(
        s.faults().await,
        json!({"mode": "live", "delivered": 2, "dropped": 0, "held": 0})
    );

    // Dropped: the message is lost (the log still has it). The counter says when the stack has
    // dropped it, so resuming cannot race the fan-out.
    s.admin("/admin/v1/faults/pause-delivery", json!({"mode": "drop"}))
        .await;
    save(&s, &token, &project, "c.txt", "3").await;
    let dropping = s
        .faults_until("the dropped message", |f| f["dropped"] == 1)
        .await;
    assert_eq!(dropping["mode"], "drop");
    let resumed = s.admin("/admin/v1/faults/resume-delivery", json!({})).await;
    assert_eq!(resumed["dropped"], 1);
    save(&s, &token, &project, "d.txt", "4").await;
    assert_eq!(c.broadcast().await.payload["payload"]["seq"], 4);
    assert_eq!(
        s.faults().await,
        json!({"mode": "live", "delivered": 3, "dropped": 1, "held": 0})
    );

    // Drop every socket: the client sees the connection end without a close frame.
    let dropped = s.admin("/admin/v1/faults/drop-websockets", json!({})).await;
    assert_eq!(dropped["dropped"], 1);
    let end = tokio::time::timeout(Duration::from_secs(5), c.ws.next())
        .await
        .unwrap();
    assert!(
        matches!(end, None | Some(Err(_))),
        "an abrupt end, not a close frame: {end:?}"
    );

    s.dev.shutdown().await;
}

#[tokio::test]
async fn client_broadcasts_relay_on_public_and_need_write_on_private() {
    let s = stack().await;
    let (owner, token) = s.user().await;
    let project = s.project(&owner).await;

    // Public room: a v2 binary push (kind 3, as realtime-js sends it) reaches a v2 peer as a
    // kind-4 frame and a v1 peer as a JSON broadcast; the sender (self: false) gets nothing.
    let mut sender = Client::connect(&s, true).await;
    let mut peer2 = Client::connect(&s, true).await;
    let mut peer1 = Client::connect(&s, false).await;
    for c in [&mut sender, &mut peer2, &mut peer1] {
        assert_eq!(c.join("room:1", false, None).await["status"], "ok");
    }
    let topic = b"realtime:room:1";
    let mut frame = vec![3, 1, 2, topic.len() as u8, 4, 0, 1];
    frame.extend_from_slice(b"1");
    frame.extend_from_slice(b"99");
    frame.extend_from_slice(topic);
    frame.extend_from_slice(b"ping");
    frame.extend_from_slice(br#"{"n":1}"#);
    sender.ws.send(Message::Binary(frame.into())).await.unwrap();
    let f = peer2.broadcast().await;
    assert!(f.binary);
    assert_eq!(f.payload["event"], "ping");
    assert_eq!(f.payload["payload"], json!({"n": 1}));
    let f = peer1.broadcast().await;
    assert_eq!(
        f.payload,
        json!({"type": "broadcast", "event": "ping", "payload": {"n": 1}})
    );
    assert!(sender.next(Duration::from_millis(200)).await.is_none());

    // A JSON push is relayed as a JSON broadcast.
    sender
        .send(
            Some("1"),
            "realtime:room:1",
            "broadcast",
            json!({"type": "broadcast", "event": "pong", "payload": {"n": 2}}),
        )
        .await;
    let f = peer2.broadcast().await;
    assert!(!f.binary);
    assert_eq!(f.payload["payload"], json!({"n": 2}));

    // Private project topic: fs-sync's only INSERT policy on realtime.messages is for
    // project:<id>:edits, so a member's broadcast on project:<id> fails Realtime's write check
    // and is dropped silently.
    let topic = format!("project:{project}");
    let mut a = Client::connect(&s, true).await;
    let mut b = Client::connect(&s, true).await;
    assert_eq!(a.join(&topic, true, Some(&token)).await["status"], "ok");
    assert_eq!(b.join(&topic, true, Some(&token)).await["status"], "ok");
    a.send(
        Some("1"),
        &format!("realtime:{topic}"),
        "broadcast",
        json!({"type": "broadcast", "event": "file:update", "payload": {"forged": true}}),
    )
    .await;
    assert!(b.next(Duration::from_millis(300)).await.is_none());

    s.dev.shutdown().await;
}

/// A stack started on a database whose `realtime.messages` partitions are gone (as on one left
/// from days ago) makes today's and the next days' before it serves, as Realtime's janitor does;
/// without them every broadcast would be lost with only a WARNING.
#[tokio::test]
async fn the_stack_creates_the_days_partitions() {
    let db = fs_sync_pg::TestDb::new().await.unwrap();
    let missing =
        "select count(*) from fsync.realtime_partition_status() where partition_name is null";
    let superuser = fs_sync_pg::connect(&db.superuser_url().parse().unwrap())
        .await
        .unwrap();
    superuser
        .batch_execute(
            "do $$
             declare t regclass;
             begin
               for t in select inhrelid::regclass from pg_inherits
                         where inhparent = 'realtime.messages'::regclass loop
                 execute format('drop table %s', t);
               end loop;
             end $$",
        )
        .await
        .unwrap();
    let count = |row: tokio_postgres::Row| row.get::<_, i64>(0);
    assert_eq!(count(db.admin().query_one(missing, &[]).await.unwrap()), 2);
    let dev = fs_sync_dev::DevStack::start(fs_sync_dev::Options {
        port: 0,
        database: fs_sync_dev::DatabaseSource::Existing(db.superuser_url()),
        request_log: false,
        ..fs_sync_dev::Options::default()
    })
    .await
    .unwrap();
    assert_eq!(count(db.admin().query_one(missing, &[]).await.unwrap()), 0);
    dev.shutdown().await;
}
