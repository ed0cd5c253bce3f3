//! The two GraphQL-over-WebSocket subprotocols, as messages: `graphql-transport-ws`
//! (<https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md>) and the legacy
//! `graphql-ws` of subscriptions-transport-ws. They differ in a few names; the rest of the
//! connection does not need to know which one it speaks.

use async_graphql::http::ClientMessage;

use crate::api::ResponseJson;

/// Close codes of graphql-transport-ws, used for both subprotocols.
pub mod close {
    /// RFC 6455 "going away": the server is shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// RFC 6455 "internal error": the token could not be checked; the client may retry.
    pub const UNAVAILABLE: u16 = 1011;
    /// RFC 6455 "message too big": a frame or message over `--max-body-bytes`.
    pub const TOO_BIG: u16 = 1009;
    /// A message that is not one of the protocol's.
    pub const BAD_REQUEST: u16 = 4400;
    /// `subscribe` before the connection was acknowledged.
    pub const UNAUTHORIZED: u16 = 4401;
    /// A refused token, or a session that ended.
    pub const FORBIDDEN: u16 = 4403;
    pub const INIT_TIMEOUT: u16 = 4408;
    /// `subscribe` with the id of an operation that is still running.
    pub const DUPLICATE_ID: u16 = 4409;
    /// A second `connection_init`; also used for a `subscribe` beyond the per-connection limit.
    pub const TOO_MANY: u16 = 4429;
}

pub const ACKNOWLEDGED: &str = r#"{"type":"connection_ack"}"#;
pub const PONG: &str = r#"{"type":"pong"}"#;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// `graphql-transport-ws`.
    Transport,
    /// `graphql-ws` (subscriptions-transport-ws).
    Legacy,
}

impl Protocol {
    /// As the client names it in `Sec-WebSocket-Protocol`, and the server in its answer.
    pub fn name(self) -> &'static str {
        match self {
            Self::Transport => "graphql-transport-ws",
            Self::Legacy => "graphql-ws",
        }
    }

    pub fn named(name: &str) -> Option<Self> {
        [Self::Transport, Self::Legacy].into_iter().find(|protocol| protocol.name() == name.trim())
    }

    /// A result of operation `id`. Written around the response's text, which shared
    /// subscriptions serialise once for all their sockets.
    pub fn result(self, id: &str, response: &ResponseJson) -> String {
        let head = match self {
            Self::Transport => r#"{"type":"next","id":"#,
            Self::Legacy => r#"{"type":"data","id":"#,
        };
        with_id(head, id, &[r#","payload":"#, response.as_str(), "}"])
    }

    /// Operation `id` ended by itself (a subscription's source ended, a query answered).
    pub fn complete(self, id: &str) -> String {
        with_id(r#"{"type":"complete","id":"#, id, &["}"])
    }

    /// How the legacy protocol refuses `connection_init` before closing; graphql-transport-ws
    /// says it with the close frame alone.
    pub fn refusal(self, reason: &str) -> Option<String> {
        match self {
            Self::Transport => None,
            Self::Legacy => Some(
                serde_json::json!({ "type": "connection_error", "payload": { "message": reason } })
                    .to_string(),
            ),
        }
    }
}

/// A client message; Err says why it is not one (the connection then closes with 4400).
pub fn parse(message: &[u8]) -> Result<ClientMessage, String> {
    serde_json::from_slice(message).map_err(|error| format!("Invalid message: {error}"))
}

/// `head`, `id` as a JSON string, then `tail`, in one allocation of exactly the message's
/// length. A fan-out writes one of these per socket and event: `format!` grew its buffer
/// in steps, and a `String` with spare capacity costs one more allocation when it becomes
/// the frame's bytes (a profile of 10,000 subscribers: 13% of the server's time in malloc).
fn with_id(head: &str, id: &str, tail: &[&str]) -> String {
    // Ids are short and plain in practice; serde_json escapes any other.
    let plain = id.bytes().all(|byte| byte >= 0x20 && byte != b'"' && byte != b'\\');
    let escaped = (!plain).then(|| serde_json::Value::from(id).to_string());
    let id_length = escaped.as_ref().map_or(id.len() + 2, String::len);
    let tail_length: usize = tail.iter().map(|part| part.len()).sum();
    let mut message = String::with_capacity(head.len() + id_length + tail_length);
    message.push_str(head);
    match &escaped {
        Some(escaped) => message.push_str(escaped),
        None => {
            message.push('"');
            message.push_str(id);
            message.push('"');
        }
    }
    tail.iter().for_each(|part| message.push_str(part));
    message
}

#[cfg(test)]
mod tests {
    use async_graphql::Response;
    use serde_json::{Value, json};

    use super::*;

    #[test]
    fn messages_are_exact_json_whatever_the_id() {
        let response = ResponseJson::of(&Response::new(async_graphql::Value::from("ok")));
        for id in ["1", "", "a\"b\\c", "line\nbreak\u{1}", "é✓"] {
            for (protocol, kind) in [(Protocol::Transport, "next"), (Protocol::Legacy, "data")] {
                let message = protocol.result(id, &response);
                assert_eq!(message.len(), message.capacity(), "{id:?}: sized exactly");
                let parsed: Value = serde_json::from_str(&message).expect("valid JSON");
                assert_eq!(parsed, json!({ "type": kind, "id": id, "payload": { "data": "ok" } }));
            }
            let parsed: Value = serde_json::from_str(&Protocol::Transport.complete(id)).expect("valid JSON");
            assert_eq!(parsed, json!({ "type": "complete", "id": id }));
        }
    }
}
