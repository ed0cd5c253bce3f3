//! `GET /graphql/ws`: GraphQL over WebSocket, both `graphql-transport-ws` and legacy
//! `graphql-ws`. The token travels in the `connection_init` payload, because browsers cannot
//! set headers on a WebSocket.
//!
//! The protocol itself is async-graphql's; this loop around it adds what a public endpoint
//! needs: a deadline for `connection_init`, the close codes the protocol specifies, closing
//! a signed-in socket as soon as its session ends (on any instance), a bound on how long a
//! client may leave a message unread, a bound on the operations one socket may run at once,
//! and counting signed-in sockets for presence.
//!
//! Memory per connection is bounded without a queue of its own: the loop sends one message
//! at a time, and while a send waits the subscriptions are not polled, so their responses
//! wait in the bounded buffer of their shared execution (see `graphql::SubscriptionExecutor`);
//! a socket that falls too far behind is told so and its subscription ends, instead of
//! growing anything here.

use std::{
    collections::HashSet,
    future::Future,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    str::FromStr,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    task::Poll,
    time::Duration,
};

use async_graphql::{
    Data,
    http::{ALL_WEBSOCKET_PROTOCOLS, WebSocket as GraphQLWebSocket, WebSocketProtocols, WsMessage},
};
use axum::{
    extract::{
        ConnectInfo, State, WebSocketUpgrade,
        ws::{CloseFrame, Message, WebSocket},
    },
    http::{HeaderMap, StatusCode, header::SEC_WEBSOCKET_PROTOCOL},
    response::{IntoResponse, Response},
};
use futures_util::{FutureExt, SinkExt, StreamExt, future, stream::SplitSink};
use serde::Deserialize;
use tokio::sync::{
    Notify,
    broadcast::{Receiver, error::RecvError},
};
use tracing::Instrument;

use super::{HttpState, bearer_token};
use crate::{
    app::AppState,
    auth::{Viewer, service as auth},
    events::{Delivery, SessionsRevoked},
    graphql::RequestContext,
    presence::{
        model::Timings,
        service::{self as presence, OpenSocket},
    },
};

/// graphql-transport-ws close codes.
const FORBIDDEN: u16 = 4403;
/// RFC 6455 "going away": the server is shutting down.
const GOING_AWAY: u16 = 1001;
const INIT_TIMEOUT: u16 = 4408;
/// The protocol's "too many" code (it closes a repeated `connection_init` with it), used
/// here for a `subscribe` beyond the per-connection limit.
const TOO_MANY_OPERATIONS: u16 = 4429;

/// A client that leaves a message unread this long is cut off: its socket would otherwise
/// hold the connection's resources (and delay closing it on revocation) forever.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a close frame may take to go out before the connection is simply dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_millis(500);
/// Allocated for every socket for its whole life. Client messages are a few hundred bytes
/// (`subscribe`, `ping`); a larger one is read in several steps. (A heap profile of 2,000
/// subscribers: 4 KiB here was a fifth of what each costs.)
const READ_BUFFER_BYTES: usize = 1024;

pub(super) async fn upgrade(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Some(protocol) = requested_protocol(&headers) else {
        return (
            StatusCode::BAD_REQUEST,
            "Sec-WebSocket-Protocol must name graphql-transport-ws or graphql-ws.",
        )
            .into_response();
    };
    // The socket outlives this request; its log lines keep the request's span (and id).
    let span = tracing::Span::current();
    let max_message = state.app.config.max_body_bytes;
    upgrade
        // Most sockets sit idle holding a presence subscription; tungstenite's default 128 KiB
        // read buffer, allocated up front, would be most of what each one costs. Client
        // messages are small; a larger one is read in several steps.
        .read_buffer_size(READ_BUFFER_BYTES)
        // Each message is flushed as it is sent (see `serve`); nothing to gather.
        .write_buffer_size(0)
        // A message may be as large as an HTTP body, not tungstenite's default 64 MiB.
        .max_message_size(max_message)
        .max_frame_size(max_message)
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| serve(state, socket, protocol, peer.ip()).instrument(span))
}

fn requested_protocol(headers: &HeaderMap) -> Option<WebSocketProtocols> {
    headers
        .get(SEC_WEBSOCKET_PROTOCOL)?
        .to_str()
        .ok()?
        .split(',')
        .find_map(|name| WebSocketProtocols::from_str(name.trim()).ok())
}

/// What the connection learned in `connection_init`, read by the loop in `serve`.
#[derive(Default)]
struct Handshake {
    accepted: AtomicBool,
    refused: AtomicBool,
    /// Set when a token was accepted.
    signed_in: OnceLock<SignedIn>,
}

struct SignedIn {
    viewer: Viewer,
    token: String,
    socket: OpenSocket,
}

type Sink = SplitSink<WebSocket, Message>;

/// The operations a client started and the server has not completed yet. Each costs a
/// stream and, for subscriptions, a place among the subscribers every event is executed
/// for; without a bound one socket could start any number.
struct Operations {
    running: Mutex<HashSet<String>>,
    limit: usize,
    exceeded: Notify,
}

impl Operations {
    fn new(limit: usize) -> Self {
        Self { running: Mutex::default(), limit, exceeded: Notify::new() }
    }

    /// Whether a client message may go on to async-graphql: not a `subscribe` (`start` on the
    /// legacy protocol) beyond the limit, which instead makes `exceeded` fire.
    fn admit(&self, message: &[u8]) -> bool {
        #[derive(Deserialize)]
        struct Started {
            #[serde(rename = "type")]
            kind: String,
            id: Option<String>,
        }
        let Ok(Started { kind, id: Some(id) }) = serde_json::from_slice(message) else {
            return true;
        };
        if kind != "subscribe" && kind != "start" {
            return true;
        }
        let mut running = self.running.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // The same id again replaces its operation (async-graphql's rule), so it takes no place.
        if running.len() < self.limit || running.contains(&id) {
            running.insert(id);
            true
        } else {
            self.exceeded.notify_one();
            false
        }
    }

    /// Frees the place of an operation the server reports complete (ended by itself or
    /// stopped by the client: async-graphql sends `complete` for both).
    fn note_sent(&self, text: &str) {
        #[derive(Deserialize)]
        struct Completed {
            id: String,
        }
        // Every server message is `{"type":…` first; most are not `complete`, and are not parsed.
        if text.starts_with(r#"{"type":"complete""#)
            && let Ok(Completed { id }) = serde_json::from_str(text)
        {
            self.running.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(&id);
        }
    }
}

async fn serve(state: HttpState, socket: WebSocket, protocol: WebSocketProtocols, peer: IpAddr) {
    let _open = state.app.metrics.websocket_opened();
    let (mut sink, incoming) = socket.split();
    let operations = Arc::new(Operations::new(state.app.config.ws_max_subscriptions));
    let admitted = operations.clone();
    let incoming = incoming
        .take_while(|frame| future::ready(frame.is_ok()))
        .filter_map(|frame| {
            future::ready(match frame {
                Ok(frame @ (Message::Text(_) | Message::Binary(_))) => Some(frame.into_data()),
                _ => None,
            })
        })
        .filter(move |message| future::ready(admitted.admit(message)));
    let too_many = operations.exceeded.notified();
    tokio::pin!(too_many);
    // Subscribed before the token is checked, so a revocation committed after the check
    // cannot slip by.
    let mut revocations = Some(state.app.bus.session_feed());

    let handshake = Arc::new(Handshake::default());
    let on_init = {
        let handshake = handshake.clone();
        let app = state.app.clone();
        move |payload: serde_json::Value| async move {
            match sign_in(&app, &payload).await {
                Ok(signed_in) => {
                    let mut data = Data::default();
                    let viewer = signed_in.as_ref().map(|s| s.viewer.clone());
                    data.insert(RequestContext::new(&app, viewer).with_client_address(peer));
                    if let Some(signed_in) = signed_in {
                        let _ = handshake.signed_in.set(signed_in);
                    }
                    handshake.accepted.store(true, Ordering::SeqCst);
                    Ok(data)
                }
                Err(error) => {
                    handshake.refused.store(true, Ordering::SeqCst);
                    Err(error)
                }
            }
        }
    };
    let outgoing =
        GraphQLWebSocket::new(state.subscriptions.clone(), incoming, protocol).on_connection_init(on_init);
    futures_util::pin_mut!(outgoing);

    let init_deadline = tokio::time::sleep(state.app.config.ws_init_timeout);
    tokio::pin!(init_deadline);
    // Resolves when this socket's session ends; never for a signed-out socket.
    let mut revoked: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(future::pending());
    let stopping = state.app.stopping.clone();
    let stopping = stopping.raised();
    tokio::pin!(stopping);
    loop {
        // Once the handshake is done, a signed-in socket watches for the end of its session;
        // a signed-out one lets go of the feed.
        if handshake.accepted.load(Ordering::SeqCst)
            && let Some(feed) = revocations.take()
            && let Some(signed_in) = handshake.signed_in.get()
        {
            revoked = Box::pin(session_ends(
                state.app.clone(),
                feed,
                signed_in.viewer.clone(),
                signed_in.token.clone(),
            ));
        }
        let message = tokio::select! {
            // The outgoing stream first, and when it has a message the rest are not polled: a
            // fan-out wakes every socket once per event, and polling the rare branches too (the
            // revocation feed is one lock shared by all sockets) cost each delivery. They are
            // still polled whenever the stream has nothing, and revocation at every send.
            biased;
            message = outgoing.next() => match message {
                Some(message) => message,
                None => break,
            },
            () = &mut init_deadline, if !handshake.accepted.load(Ordering::SeqCst) => {
                WsMessage::Close(INIT_TIMEOUT, "Connection initialisation timeout".into())
            }
            () = &mut revoked => WsMessage::Close(FORBIDDEN, "Session ended; sign in again.".into()),
            () = &mut stopping => WsMessage::Close(GOING_AWAY, "The server is shutting down; reconnect.".into()),
            () = &mut too_many => WsMessage::Close(
                TOO_MANY_OPERATIONS,
                format!("At most {} operations may run at once on one connection.", operations.limit),
            ),
        };
        let frame = match message {
            WsMessage::Text(text) => {
                operations.note_sent(&text);
                Message::Text(text.into())
            }
            WsMessage::Close(code, reason) => {
                // async-graphql closes a refused handshake with 1002; the protocol says 4403.
                let code = if handshake.refused.load(Ordering::SeqCst) { FORBIDDEN } else { code };
                close(&mut sink, code, reason).await;
                break;
            }
        };
        let sent = tokio::select! {
            sent = send(&mut sink, frame) => sent,
            () = &mut revoked => {
                close(&mut sink, FORBIDDEN, "Session ended; sign in again.".into()).await;
                break;
            }
        };
        if !sent {
            break;
        }
    }

    if let Some(signed_in) = handshake.signed_in.get() {
        let timings = Timings::from_config(&state.app.config);
        if let Err(error) = presence::socket_closed(&state.app.db, timings, &signed_in.socket).await {
            tracing::warn!(%error, "could not record a closed socket; the instance sweep will");
        }
    }
}

/// Sends `frame`, waiting at most `SEND_TIMEOUT` for the client to make room; false when it
/// did not go out. The timer is armed only when the send has to wait: almost every send
/// completes at once, and a timer armed and cancelled for each would cost every socket of a
/// fan-out a trip through the timer wheel.
async fn send(sink: &mut Sink, frame: Message) -> bool {
    let mut sending = sink.send(frame);
    if let Poll::Ready(sent) = future::poll_fn(|cx| Poll::Ready(sending.poll_unpin(cx))).await {
        return sent.is_ok();
    }
    matches!(tokio::time::timeout(SEND_TIMEOUT, sending).await, Ok(Ok(())))
}

async fn close(sink: &mut Sink, code: u16, reason: String) {
    let frame = Message::Close(Some(CloseFrame { code, reason: reason.into() }));
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.send(frame)).await;
}

/// Waits until the session of `viewer` ends. When revocations may have been missed (this
/// socket fell behind, or the instance lost notifications) the token is checked again.
async fn session_ends(
    app: AppState,
    mut revocations: Receiver<Delivery<SessionsRevoked>>,
    viewer: Viewer,
    token: String,
) {
    loop {
        let ended = match revocations.recv().await {
            Ok(Delivery::Event(revoked)) => revoked.ends(viewer.agent_id, viewer.session_id),
            Ok(Delivery::Resync) | Err(RecvError::Lagged(_)) => {
                // A database error is not a revocation: keep the socket.
                matches!(auth::authenticate(&app.db, &token).await, Ok(None))
            }
            // The bus is gone (the server is stopping): nothing will end the session now.
            Err(RecvError::Closed) => return future::pending().await,
        };
        if ended {
            return;
        }
    }
}

/// The viewer named by the payload's `authorization` (none when absent; an invalid token
/// refuses the connection), with its socket counted for presence.
async fn sign_in(app: &AppState, payload: &serde_json::Value) -> async_graphql::Result<Option<SignedIn>> {
    let Some(token) = authorization_in(payload) else {
        return Ok(None);
    };
    let unavailable = |error: sea_orm::DbErr| {
        tracing::error!(%error, "authenticating a socket failed");
        async_graphql::Error::new("The server could not check the token; try again.")
    };
    let viewer = auth::authenticate(&app.db, token)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| async_graphql::Error::new("The token is not valid; sign in again."))?;
    let socket = presence::socket_opened(&app.db, &app.instance, &viewer).await.map_err(unavailable)?;
    Ok(Some(SignedIn { viewer, token: token.to_owned(), socket }))
}

/// The bearer token of `{"authorization": "Bearer …"}`, the key matched case-insensitively
/// (GraphiQL sends its headers editor's `Authorization` as is).
fn authorization_in(payload: &serde_json::Value) -> Option<&str> {
    payload
        .as_object()?
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case("authorization"))
        .and_then(|(_, value)| value.as_str())
        .and_then(bearer_token)
}
