//! The realtime connection: Phoenix protocol 1.0.0 (JSON objects) over a websocket, one private
//! channel `realtime:project:<id>`, heartbeats, token refresh, and reconnects with backoff.
//!
//! Hand-written over tokio-tungstenite: no maintained Rust client speaks Supabase Realtime's
//! protocol (Phoenix channels plus its private-channel join config and `access_token` refresh).
//!
//! Backoff: after a lost connection the next attempt waits `min(30 s, 250 ms · 2^(n-1))` for the
//! n-th consecutive failure, scaled by a random factor in [0.5, 1] ("equal jitter"), so a fleet of
//! containers dropped at once does not reconnect in lockstep. A successful join resets n, so the
//! first retry after a drop comes within 125–250 ms.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

use crate::log::Logger;
use crate::metrics::Metrics;

/// What the connection tells the agent.
#[derive(Debug)]
pub(crate) enum RtEvent {
    /// The channel is joined (first time or again): catch up from the log.
    Joined,
    /// A broadcast payload (parsed JSON, not yet checked).
    Event(Value),
    /// The connection was lost (why); a reconnect follows.
    Down(String),
}

/// What the agent tells the connection.
#[derive(Debug)]
pub(crate) enum RtCommand {
    /// Send this new token on the joined channel (`access_token`).
    Token(String),
}

pub(crate) struct RtConfig {
    /// `ws://…/realtime/v1/websocket?apikey=…&vsn=1.0.0`.
    pub(crate) url: String,
    /// `realtime:project:<id>`.
    pub(crate) topic: String,
    pub(crate) token: Arc<RwLock<String>>,
    pub(crate) heartbeat: Duration,
}

pub(crate) fn websocket_url(supabase_url: &str, anon_key: &str) -> String {
    let ws = if let Some(rest) = supabase_url.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = supabase_url.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        supabase_url.to_owned()
    };
    match reqwest::Url::parse(&format!("{ws}/realtime/v1/websocket")) {
        Ok(mut url) => {
            url.query_pairs_mut()
                .append_pair("apikey", anon_key)
                .append_pair("vsn", "1.0.0");
            url.into()
        }
        // Configuration checked the URL already; the connect attempt reports this one.
        Err(_) => ws,
    }
}

/// The delay before reconnect attempt `failures` (1-based): core's backoff, as every consumer's.
pub(crate) fn backoff(failures: u32, jitter: f64) -> Duration {
    fs_sync_core::FollowerConfig::default()
        .backoff
        .delay(failures, jitter)
}

/// A cheap random number in [0, 1) for jitter (no cryptographic need).
pub(crate) fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

pub(crate) fn spawn(
    cfg: RtConfig,
    logger: Logger,
    metrics: Arc<Metrics>,
    events: mpsc::UnboundedSender<RtEvent>,
    mut commands: mpsc::UnboundedReceiver<RtCommand>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut failures = 0u32;
        let mut joined_before = false;
        loop {
            let end = session(
                &cfg,
                &logger,
                &metrics,
                &events,
                &mut commands,
                &mut stop,
                &mut joined_before,
            )
            .await;
            let (joined, reason) = match end {
                End::Stop => return,
                End::Lost { joined, reason } => (joined, reason),
            };
            if events.send(RtEvent::Down(reason.clone())).is_err() {
                return;
            }
            if joined {
                failures = 0;
            }
            failures += 1;
            let delay = backoff(failures, jitter());
            logger.warn(
                "realtime.down",
                "realtime connection lost; reconnecting",
                json!({"reason": reason, "attempt": failures, "retry_in_ms": delay.as_millis() as u64}),
            );
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stopped(&mut stop) => return,
            }
        }
    })
}

/// Resolves once the agent asks the connection to stop.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

enum End {
    Stop,
    Lost { joined: bool, reason: String },
}

async fn session(
    cfg: &RtConfig,
    logger: &Logger,
    metrics: &Metrics,
    events: &mpsc::UnboundedSender<RtEvent>,
    commands: &mut mpsc::UnboundedReceiver<RtCommand>,
    stop: &mut watch::Receiver<bool>,
    joined_before: &mut bool,
) -> End {
    let lost = |joined: bool, reason: String| End::Lost { joined, reason };
    let connect = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(cfg.url.as_str()),
    );
    let mut ws = tokio::select! {
        r = connect => match r {
            Ok(Ok((ws, _))) => ws,
            Ok(Err(e)) => return lost(false, format!("connect: {e}")),
            Err(_) => return lost(false, "connect: timed out after 10 s".into()),
        },
        _ = stopped(stop) => return End::Stop,
    };
    let mut next_ref = 1u64;
    let join_ref = next_ref.to_string();
    next_ref += 1;
    let join = json!({
        "topic": cfg.topic,
        "event": "phx_join",
        "payload": {
            "config": {
                "broadcast": {"ack": false, "self": false},
                "presence": {"key": "", "enabled": false},
                "postgres_changes": [],
                "private": true,
            },
            "access_token": cfg.token.read().expect("token lock").clone(),
        },
        "ref": join_ref,
        "join_ref": join_ref,
    });
    if let Err(e) = ws.send(Message::Text(join.to_string().into())).await {
        return lost(false, format!("sending phx_join: {e}"));
    }
    let mut joined = false;
    let join_deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut heartbeat =
        tokio::time::interval_at(tokio::time::Instant::now() + cfg.heartbeat, cfg.heartbeat);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pending_heartbeat: Option<String> = None;
    loop {
        tokio::select! {
            msg = ws.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(frame))) => {
                        return lost(joined, format!("closed by the server{}",
                            frame.map(|f| format!(": {} {}", f.code, f.reason)).unwrap_or_default()));
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return lost(joined, format!("websocket: {e}")),
                    None => return lost(joined, "connection closed".into()),
                };
                let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else {
                    continue;
                };
                let event = v["event"].as_str().unwrap_or("");
                let reference = v["ref"].as_str();
                match event {
                    "phx_reply" if reference == Some(join_ref.as_str()) && !joined => {
                        if v["payload"]["status"] == "ok" {
                            joined = true;
                            if *joined_before {
                                Metrics::inc(&metrics.reconnects);
                            }
                            *joined_before = true;
                            logger.info("realtime.joined", "joined the project's realtime channel",
                                json!({"topic": cfg.topic}));
                            if events.send(RtEvent::Joined).is_err() {
                                return End::Stop;
                            }
                        } else {
                            let reason = &v["payload"]["response"]["reason"];
                            let reason = reason.as_str().map(str::to_owned)
                                .unwrap_or_else(|| v["payload"]["response"].to_string());
                            return lost(false, format!("join refused: {reason}"));
                        }
                    }
                    "phx_reply" if reference.is_some() && reference == pending_heartbeat.as_deref() => {
                        pending_heartbeat = None;
                    }
                    "broadcast" if v["topic"] == cfg.topic.as_str() => {
                        let payload = v["payload"]["payload"].clone();
                        if payload.is_object() && events.send(RtEvent::Event(payload)).is_err() {
                            return End::Stop;
                        }
                    }
                    "phx_error" | "phx_close" if v["topic"] == cfg.topic.as_str() => {
                        return lost(joined, format!("channel {event}"));
                    }
                    "system" if v["payload"]["status"] == "error" => {
                        let m = v["payload"]["message"].as_str().unwrap_or("").to_owned();
                        return lost(joined, format!("channel error: {m}"));
                    }
                    _ => {}
                }
            }
            _ = heartbeat.tick() => {
                if pending_heartbeat.is_some() {
                    return lost(joined, "no heartbeat reply".into());
                }
                let r = next_ref.to_string();
                next_ref += 1;
                let hb = json!({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": r});
                if let Err(e) = ws.send(Message::Text(hb.to_string().into())).await {
                    return lost(joined, format!("sending heartbeat: {e}"));
                }
                pending_heartbeat = Some(r);
            }
            _ = tokio::time::sleep_until(join_deadline), if !joined => {
                return lost(false, "no join reply within 10 s".into());
            }
            cmd = commands.recv() => {
                match cmd {
                    Some(RtCommand::Token(token)) => {
                        // A channel not joined yet uses the new token at its next join.
                        if joined {
                            let r = next_ref.to_string();
                            next_ref += 1;
                            let m = json!({"topic": cfg.topic, "event": "access_token",
                                           "payload": {"access_token": token},
                                           "ref": r, "join_ref": join_ref});
                            if let Err(e) = ws.send(Message::Text(m.to_string().into())).await {
                                return lost(joined, format!("sending access_token: {e}"));
                            }
                        }
                    }
                    None => return End::Stop,
                }
            }
            _ = stopped(stop) => {
                let _ = ws.close(None).await;
                return End::Stop;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        assert_eq!(backoff(1, 1.0), Duration::from_millis(250));
        assert_eq!(backoff(1, 0.0), Duration::from_millis(125));
        assert_eq!(backoff(3, 1.0), Duration::from_millis(1000));
        assert_eq!(backoff(20, 1.0), Duration::from_secs(30));
        assert_eq!(backoff(20, 0.0), Duration::from_secs(15));
        let j = jitter();
        assert!((0.0..1.0).contains(&j));
    }

    #[test]
    fn builds_the_socket_url() {
        assert_eq!(
            websocket_url("http://127.0.0.1:5", "a.b+c"),
            "ws://127.0.0.1:5/realtime/v1/websocket?apikey=a.b%2Bc&vsn=1.0.0"
        );
        assert!(websocket_url("https://x.supabase.co", "k")
            .starts_with("wss://x.supabase.co/realtime/v1/websocket?"));
    }
}
