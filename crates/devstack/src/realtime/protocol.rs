//! Phoenix framing as realtime-js speaks it: vsn 1.0.0 JSON objects, vsn 2.0.0 JSON arrays,
//! and the 2.0.0 binary broadcast frames (kind 3 from clients, kind 4 to clients).

use serde_json::Value;

/// The serializer a socket negotiated with `vsn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Vsn {
    /// `1.0.0`: `{"topic","event","payload","ref","join_ref"}` objects.
    V1,
    /// `2.0.0`: `[join_ref, ref, topic, event, payload]` arrays plus binary broadcasts.
    V2,
}

/// A user broadcast pushed by a client as a binary kind-3 frame.
#[derive(Debug)]
pub(crate) struct BinaryPush {
    pub(crate) event: String,
    /// The payload: JSON text when `json`, else raw bytes.
    pub(crate) json: bool,
    pub(crate) data: Vec<u8>,
}

/// A decoded client message.
#[derive(Debug)]
pub(crate) struct ClientMsg {
    pub(crate) join_ref: Option<String>,
    pub(crate) reference: Option<String>,
    pub(crate) topic: String,
    pub(crate) event: String,
    pub(crate) payload: Value,
    pub(crate) binary: Option<BinaryPush>,
}

fn opt_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Decodes a text frame.
pub(crate) fn decode_text(vsn: Vsn, text: &str) -> Option<ClientMsg> {
    let v: Value = serde_json::from_str(text).ok()?;
    match (vsn, v) {
        (Vsn::V2, Value::Array(mut a)) if a.len() == 5 => {
            let payload = a.pop()?;
            let event = a.pop()?.as_str()?.to_owned();
            let topic = a.pop()?.as_str()?.to_owned();
            Some(ClientMsg {
                reference: opt_string(&a[1]),
                join_ref: opt_string(&a[0]),
                topic,
                event,
                payload,
                binary: None,
            })
        }
        (_, Value::Object(mut o)) => Some(ClientMsg {
            join_ref: o.get("join_ref").and_then(opt_string),
            reference: o.get("ref").and_then(opt_string),
            topic: o.get("topic")?.as_str()?.to_owned(),
            event: o.get("event")?.as_str()?.to_owned(),
            payload: o.remove("payload").unwrap_or(Value::Null),
            binary: None,
        }),
        _ => None,
    }
}

/// Decodes a binary kind-3 USER_BROADCAST_PUSH frame:
/// `[3, join_ref_len, ref_len, topic_len, event_len, meta_len, encoding]` + fields + payload.
pub(crate) fn decode_binary(data: &[u8]) -> Option<ClientMsg> {
    if data.len() < 7 || data[0] != 3 {
        return None;
    }
    let lens = [data[1], data[2], data[3], data[4], data[5]].map(usize::from);
    let json = data[6] == 1;
    let mut at: usize = 7;
    let mut fields = Vec::with_capacity(5);
    for len in lens {
        let end = at.checked_add(len)?;
        fields.push(std::str::from_utf8(data.get(at..end)?).ok()?.to_owned());
        at = end;
    }
    let payload = data.get(at..)?.to_vec();
    let non_empty = |s: &String| (!s.is_empty()).then(|| s.clone());
    Some(ClientMsg {
        join_ref: non_empty(&fields[0]),
        reference: non_empty(&fields[1]),
        topic: fields[2].clone(),
        event: "broadcast".to_owned(),
        payload: Value::Null,
        binary: Some(BinaryPush {
            event: fields[3].clone(),
            json,
            data: payload,
        }),
    })
}

/// A server text frame. `payload` is JSON text. V1 frames carry no `join_ref` (Phoenix's
/// `encode_v1_fields_only`).
pub(crate) fn encode(
    vsn: Vsn,
    join_ref: Option<&str>,
    reference: Option<&str>,
    topic: &str,
    event: &str,
    payload: &str,
) -> String {
    let s = |v: Option<&str>| v.map_or("null".to_owned(), |v| Value::from(v).to_string());
    match vsn {
        Vsn::V2 => format!(
            "[{},{},{},{},{payload}]",
            s(join_ref),
            s(reference),
            Value::from(topic),
            Value::from(event)
        ),
        Vsn::V1 => format!(
            "{{\"topic\":{},\"event\":{},\"payload\":{payload},\"ref\":{}}}",
            Value::from(topic),
            Value::from(event),
            s(reference)
        ),
    }
}

/// A kind-4 USER_BROADCAST frame:
/// `[4, topic_len, event_len, meta_len, encoding]` + topic + event + meta + payload.
/// `None` when a field exceeds 255 bytes (the caller falls back to a JSON frame).
pub(crate) fn encode_user_broadcast(
    topic: &str,
    event: &str,
    meta: Option<&str>,
    json: bool,
    payload: &[u8],
) -> Option<Vec<u8>> {
    let meta = meta.unwrap_or("");
    let (t, e, m) = (topic.len(), event.len(), meta.len());
    if t > 255 || e > 255 || m > 255 {
        return None;
    }
    let mut out = Vec::with_capacity(5 + t + e + m + payload.len());
    out.extend_from_slice(&[4, t as u8, e as u8, m as u8, u8::from(json)]);
    out.extend_from_slice(topic.as_bytes());
    out.extend_from_slice(event.as_bytes());
    out.extend_from_slice(meta.as_bytes());
    out.extend_from_slice(payload);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_arrays_round_trip() {
        let m = decode_text(Vsn::V2, r#"["1","2","realtime:a","phx_join",{"x":1}]"#).unwrap();
        assert_eq!(m.join_ref.as_deref(), Some("1"));
        assert_eq!(m.reference.as_deref(), Some("2"));
        assert_eq!(m.topic, "realtime:a");
        assert_eq!(m.payload["x"], 1);
        assert_eq!(
            encode(Vsn::V2, None, Some("3"), "phoenix", "phx_reply", "{}"),
            r#"[null,"3","phoenix","phx_reply",{}]"#
        );
    }

    #[test]
    fn v1_objects() {
        let m = decode_text(
            Vsn::V1,
            r#"{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"5"}"#,
        )
        .unwrap();
        assert_eq!(m.event, "heartbeat");
        let out: Value =
            serde_json::from_str(&encode(Vsn::V1, Some("1"), Some("5"), "t", "e", "{}")).unwrap();
        assert_eq!(out["ref"], "5");
        assert!(out.get("join_ref").is_none());
    }

    #[test]
    fn binary_frames() {
        // A kind-3 push as realtime-js encodes it.
        let mut f = vec![3, 1, 1, 4, 2, 0, 1];
        f.extend_from_slice(b"12topce1");
        f.extend_from_slice(br#"{"a":1}"#);
        let m = decode_binary(&f).unwrap();
        assert_eq!(m.topic, "topc");
        let b = m.binary.unwrap();
        assert_eq!(b.event, "e1");
        assert_eq!(b.data, br#"{"a":1}"#);
        let out = encode_user_broadcast("t", "ev", Some(r#"{"id":"x"}"#), true, b"{}").unwrap();
        assert_eq!(&out[..5], &[4, 1, 2, 10, 1]);
        assert!(encode_user_broadcast(&"x".repeat(256), "e", None, true, b"").is_none());
    }
}
