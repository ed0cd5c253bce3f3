//! A GraphQL WebSocket client speaking either subprotocol, for tests.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{Message, client::IntoClientRequest, http::HeaderValue},
};

use crate::{Session, client::Endpoint};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// `graphql-transport-ws`, the current one.
    TransportWs,
    /// `graphql-ws`, the legacy subscriptions-transport-ws.
    LegacyWs,
}

impl Protocol {
    pub const BOTH: [Protocol; 2] = [Protocol::TransportWs, Protocol::LegacyWs];

    fn name(self) -> &'static str {
        match self {
            Protocol::TransportWs => "graphql-transport-ws",
            Protocol::LegacyWs => "graphql-ws",
        }
    }
}

/// What the server did with the socket.
#[derive(Debug, PartialEq, Eq)]
pub enum Ending {
    Closed(Option<u16>),
    /// `connection_error` (legacy protocol): the server refused `connection_init`.
    Refused,
    StillOpen,
}

pub struct WsClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    protocol: Protocol,
}

const WAIT: Duration = Duration::from_secs(10);

impl WsClient {
    /// Opens a socket without sending anything yet.
    pub async fn open(server: &impl Endpoint, protocol: Protocol) -> Self {
        let mut request =
            format!("ws://{}/graphql/ws", server.addr()).into_client_request().expect("request");
        request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static(protocol.name()));
        let (socket, response) =
            tokio_tungstenite::connect_async(request).await.expect("WebSocket handshake");
        assert_eq!(
            response.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok()),
            Some(protocol.name())
        );
        Self { socket, protocol }
    }

    /// Opens a socket and completes `connection_init` (signed in as `session` when given).
    /// Err carries how the server ended the socket instead of acknowledging.
    pub async fn connect(
        server: &impl Endpoint,
        protocol: Protocol,
        session: Option<&Session>,
    ) -> Result<Self, Ending> {
        let payload = match session {
            Some(session) => json!({ "authorization": format!("Bearer {}", session.token) }),
            None => json!({}),
        };
        let mut client = Self::open(server, protocol).await;
        client.send(json!({ "type": "connection_init", "payload": payload })).await;
        match client.next_message(WAIT).await {
            Ok(message) if message["type"] == "connection_ack" => Ok(client),
            Ok(message) if message["type"] == "connection_error" => Err(Ending::Refused),
            Ok(other) => panic!("expected connection_ack, got {other}"),
            Err(ending) => Err(ending),
        }
    }

    pub async fn send(&mut self, message: Value) {
        assert!(self.try_send(message).await, "send on WebSocket");
    }

    /// Sends a message; false when the socket is gone.
    pub async fn try_send(&mut self, message: Value) -> bool {
        self.socket.send(Message::text(message.to_string())).await.is_ok()
    }

    /// Starts an operation (`subscribe`, or `start` on the legacy protocol).
    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        assert!(self.try_subscribe(id, query, variables).await, "send on WebSocket");
    }

    /// Starts an operation; false when the socket is gone.
    pub async fn try_subscribe(&mut self, id: &str, query: &str, variables: Value) -> bool {
        let kind = match self.protocol {
            Protocol::TransportWs => "subscribe",
            Protocol::LegacyWs => "start",
        };
        self.try_send(
            json!({ "id": id, "type": kind, "payload": { "query": query, "variables": variables } }),
        )
        .await
    }

    /// Waits until the server has handled every message sent before: it handles a socket's
    /// messages in order, so the answer to a query sent now comes after. Panics on any other
    /// operation's message meanwhile, which the caller did not expect.
    pub async fn processed(&mut self) {
        const ID: &str = "processed";
        self.subscribe(ID, "{ __typename }", json!({})).await;
        loop {
            let message = self.next_message(WAIT).await.expect("the query is answered");
            assert_eq!(message["id"], ID, "a message while waiting for the server: {message}");
            if message["type"] == "complete" {
                return;
            }
        }
    }

    /// The next result of operation `id`: its `payload` (with `data` and maybe `errors`).
    pub async fn next_result(&mut self, id: &str) -> Value {
        self.try_next_result(id, WAIT)
            .await
            .unwrap_or_else(|| panic!("no result for operation {id} within {WAIT:?}"))
    }

    /// The next result of operation `id` within `within`, or None; error messages count as
    /// results (with `errors`).
    pub async fn try_next_result(&mut self, id: &str, within: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let message = self.next_message(left).await.ok()?;
            if message["id"] != id {
                continue;
            }
            match message["type"].as_str() {
                Some("next" | "data") => return Some(message["payload"].clone()),
                Some("error") => return Some(json!({ "errors": message["payload"] })),
                _ => continue,
            }
        }
    }

    /// Every result of operation `id` that arrives within `within`.
    pub async fn results_within(&mut self, id: &str, within: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + within;
        let mut results = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.try_next_result(id, left).await {
                Some(result) => results.push(result),
                None => return results,
            }
        }
    }

    /// How the server ends the socket within `within` (messages before that are skipped).
    pub async fn ending(&mut self, within: Duration) -> Ending {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if let Err(ending) = self.next_message(left).await {
                return ending;
            }
        }
    }

    /// Closes the socket from the client side, as a browser tab does when it goes away.
    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
        // Wait for the server's answer, so the server has seen the close when this returns.
        let _ = self.ending(WAIT).await;
    }

    /// The next protocol message other than keep-alives, or how the socket ended.
    pub async fn next_message(&mut self, within: Duration) -> Result<Value, Ending> {
        Ok(serde_json::from_str(&self.next_text(within).await?).expect("JSON message"))
    }

    /// The next protocol message other than keep-alives as its text, which keeps what a
    /// `Value` loses: the order of an object's keys.
    pub async fn next_text(&mut self, within: Duration) -> Result<String, Ending> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let text = self.next_text_or_keepalive(left).await?;
            let message: Value = serde_json::from_str(&text).expect("JSON message");
            if !matches!(message["type"].as_str(), Some("ka" | "ping" | "pong")) {
                return Ok(text);
            }
        }
    }

    /// The next protocol message of any kind, or how the socket ended.
    pub async fn next_message_or_keepalive(&mut self, within: Duration) -> Result<Value, Ending> {
        Ok(serde_json::from_str(&self.next_text_or_keepalive(within).await?).expect("JSON message"))
    }

    async fn next_text_or_keepalive(&mut self, within: Duration) -> Result<String, Ending> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let frame = match tokio::time::timeout(left, self.socket.next()).await {
                Err(_) => return Err(Ending::StillOpen),
                Ok(None | Some(Err(_))) => return Err(Ending::Closed(None)),
                Ok(Some(Ok(frame))) => frame,
            };
            match frame {
                Message::Text(text) => return Ok(text.to_string()),
                Message::Close(frame) => {
                    return Err(Ending::Closed(frame.map(|f| u16::from(f.code))));
                }
                _ => continue,
            }
        }
    }
}
