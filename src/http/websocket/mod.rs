//! `GET /graphql/ws`: GraphQL over WebSocket, both `graphql-transport-ws` and legacy
//! `graphql-ws`. The token travels in the `connection_init` payload, because browsers cannot
//! set headers on a WebSocket.
//!
//! The protocol is ours rather than async-graphql's `WebSocket`: with thousands of sockets
//! holding the same presence subscription, async-graphql's loop re-read the socket and
//! re-serialised the response for each of them (BENCHMARKS.md). Here a shared subscription's
//! response is serialised once and written to every idle socket by the execution's own task
//! (`outbox`); the socket's task runs only for what the client sends, the operations run
//! for it alone, and frames the kernel could not take at once. The handshake is ours too
//! (`handshake`), because the fan-out needs the TCP socket itself.
//!
//! This module is the socket's timing: a deadline for `connection_init`, closing a
//! signed-in socket as soon as its session ends (on any instance), closing on shutdown, and
//! a bound on how long a client may leave a message unread. `connection` answers the
//! messages; `protocol` writes them.
//!
//! Memory per connection is bounded: the loop sends its own messages one at a time, and while
//! a send waits the operations it runs alone are not polled; a shared execution's frames wait
//! in the outbox up to `api::UNREAD_LIMIT`, after which the client is told it fell behind
//! and that subscription ends.

mod connection;
mod handshake;
mod outbox;
mod protocol;
mod when_woken;

use std::{
    io,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::Arc,
    task::Poll,
    time::Duration,
};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{HeaderMap, StatusCode, header::SEC_WEBSOCKET_PROTOCOL},
    response::{IntoResponse, Response},
};
use futures_util::{FutureExt, SinkExt, StreamExt, future, stream};
use tokio::time::Sleep;
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        self, Message,
        protocol::{CloseFrame, Role, WebSocketConfig, frame::coding::CloseCode},
    },
};
use tracing::Instrument;

use self::{
    connection::{Connection, Reply},
    outbox::{Outbox, SocketIo},
    protocol::{Protocol, close},
    when_woken::WhenWoken,
};
use super::HttpState;
use crate::{
    auth::{
        events::SessionNotice,
        model::SessionLifetime,
        watch::{SessionChange, SessionChanges, WatchedSession, session_changes},
    },
    events::{Mark, Route},
    presence::{model::Timings, service as presence},
};

const SESSION_ENDED: &str = "Session ended; sign in again.";
/// How long a close frame may take to go out before the connection is simply dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_millis(500);
/// Allocated for every socket for its whole life. Client messages are a few hundred bytes
/// (`subscribe`, `ping`); a larger one is read in several steps. (A heap profile of 2,000
/// subscribers: 4 KiB here was a fifth of what each costs.)
const READ_BUFFER_BYTES: usize = 1024;

type WebSocket = WebSocketStream<SocketIo>;

pub(super) async fn upgrade(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
) -> Response {
    let accepted = match handshake::accept(&mut request) {
        Ok(accepted) => accepted,
        Err(refusal) => return refusal.into_response(),
    };
    let Some(protocol) = requested_protocol(request.headers()) else {
        return (
            StatusCode::BAD_REQUEST,
            "Sec-WebSocket-Protocol must name graphql-transport-ws or graphql-ws.",
        )
            .into_response();
    };
    // The socket outlives this request; its log lines keep the request's span (and id).
    let span = tracing::Span::current();
    let max_message = state.app.config.max_body_bytes;
    let config = WebSocketConfig::default()
        // Most sockets sit idle holding a presence subscription; tungstenite's default 128 KiB
        // read buffer, allocated up front, would be most of what each one costs. Client
        // messages are small; a larger one is read in several steps.
        .read_buffer_size(READ_BUFFER_BYTES)
        // Each message is flushed as it is sent (see `serve`); nothing to gather.
        .write_buffer_size(0)
        // A message may be as large as an HTTP body, not tungstenite's default 64 MiB.
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message));
    let response = accepted.response(protocol);
    // The socket's future lives as long as the socket, so each part of its life is boxed on
    // its own: nested inline, the compiler laid them out side by side (8 KiB a socket, half
    // of what an idle one cost).
    tokio::spawn(
        async move {
            let Some((socket, outbox)) = Box::pin(open(accepted, config)).await else { return };
            Box::pin(serve(state, socket, outbox, protocol, peer.ip())).await;
        }
        .instrument(span),
    );
    response
}

/// The upgraded connection as a WebSocket, and its outbox; None if the client went away.
async fn open(accepted: handshake::Accepted, config: WebSocketConfig) -> Option<(WebSocket, Arc<Outbox>)> {
    let (stream, already_read) = accepted.upgraded().await?;
    let outbox = Outbox::new(stream);
    let io = SocketIo(outbox.clone());
    let socket = WebSocketStream::from_partially_read(io, already_read, Role::Server, Some(config)).await;
    Some((socket, outbox))
}

fn requested_protocol(headers: &HeaderMap) -> Option<Protocol> {
    headers.get(SEC_WEBSOCKET_PROTOCOL)?.to_str().ok()?.split(',').find_map(Protocol::named)
}

/// Not an `async fn`: its arguments would stay in the future beside the loop made of them.
fn serve(
    state: HttpState,
    socket: WebSocket,
    outbox: Arc<Outbox>,
    protocol: Protocol,
    peer: IpAddr,
) -> impl Future<Output = ()> {
    let open = state.app.metrics.websocket_opened();
    let socket_loop = SocketLoop::new(state, socket, outbox, protocol, peer);
    async move {
        let _open = open;
        socket_loop.run().await;
    }
}

/// One socket's life: what it waits for, and what it does with each. The operations are
/// `connection`'s; the timing (deadlines, the session, shutdown, slow readers) is this.
struct SocketLoop {
    state: HttpState,
    /// Not split into halves: this one task reads and writes, and the lock between two halves
    /// would be one more thing every send of a fan-out takes. Reads are polled only when they
    /// woke the task; sends go to the socket directly (`WhenWoken::get_mut`).
    socket: WhenWoken<WebSocket>,
    outbox: Arc<Outbox>,
    connection: Connection,
    /// The session feed's mark, taken before the token is checked (so a revocation committed
    /// after the check cannot slip by), until the signed-in socket watches its agent's feed.
    revocations: Option<Mark>,
    /// What happens to this socket's session; nothing for a signed-out socket.
    session: WhenWoken<SessionChanges>,
    /// Polling it while it waits takes a lock the whole instance shares.
    stopping: WhenWoken<Pin<Box<dyn Future<Output = ()> + Send>>>,
    init_deadline: Pin<Box<Sleep>>,
}

/// Whether the socket goes on after a turn.
enum Flow {
    Continue,
    Stop,
}

impl SocketLoop {
    fn new(
        state: HttpState,
        socket: WebSocket,
        outbox: Arc<Outbox>,
        protocol: Protocol,
        peer: IpAddr,
    ) -> Self {
        let revocations = Some(state.app.bus.mark::<SessionNotice>());
        let connection =
            Connection::new(state.app.clone(), state.subscriptions.clone(), protocol, peer, outbox.clone());
        let stopping = state.app.stopping.clone();
        Self {
            init_deadline: Box::pin(tokio::time::sleep(state.app.config.ws_init_timeout)),
            socket: WhenWoken::new(socket),
            outbox,
            connection,
            revocations,
            session: WhenWoken::new(Box::pin(stream::pending())),
            stopping: WhenWoken::new(Box::pin(async move { stopping.raised().await })),
            state,
        }
    }

    async fn run(mut self) {
        loop {
            let flow = match self.next_reply().await {
                // Boxed: what a reply may await (a send, a close and its linger) would
                // otherwise be part of the loop's future, which every idle socket holds.
                Some(reply) => Box::pin(self.act_on(reply)).await,
                None => Flow::Stop,
            };
            if let Flow::Stop = flow {
                break;
            }
            self.watch_session_once_signed_in();
        }
        self.outbox.close();
        if let Some(signed_in) = self.connection.signed_in() {
            let timings = Timings::from_config(&self.state.app.config);
            // Boxed, like the loop's other database calls: the loop's future is the socket's for
            // its whole life, and a transaction's future is large.
            let closing = presence::socket_closed(&self.state.app.db, timings, &signed_in.socket);
            if let Err(error) = Box::pin(closing).await {
                tracing::warn!(%error, "could not record a closed socket; the instance sweep will");
            }
        }
    }

    /// What the socket must do next; None when the connection is gone.
    async fn next_reply(&mut self) -> Option<Reply> {
        let acknowledged = self.connection.acknowledged();
        let send_timeout = self.state.app.config.ws_send_timeout;
        let reply = tokio::select! {
            // The operations first, and when one has a message the rest are not polled; the
            // read side and the session are polled only when they woke the task (see
            // `WhenWoken`): the operations run alone can send many messages in a row, and
            // polling those too cost each one.
            biased;
            message = self.connection.next_output() => Reply::Send(message),
            written = backlog_written(&self.outbox, send_timeout) => match written {
                Ok(()) => Reply::Nothing,
                Err(_) => return None,
            },
            frame = self.socket.next() => return self.read(frame).await,
            () = &mut self.init_deadline, if !acknowledged => {
                Reply::close(close::INIT_TIMEOUT, "Connection initialisation timeout")
            }
            change = self.session.next() => self.session_changed(change),
            () = &mut self.stopping => Reply::close(close::GOING_AWAY, "The server is shutting down; reconnect."),
        };
        Some(reply)
    }

    /// The answer to a frame from the client; None when the connection is gone.
    async fn read(&mut self, frame: Option<Result<Message, tungstenite::Error>>) -> Option<Reply> {
        let reply = match frame? {
            // Boxed: answering `connection_init` awaits the database, a future far larger
            // than anything else here, which would otherwise be part of every socket for its
            // life.
            Ok(Message::Text(text)) => Box::pin(self.connection.receive(text.as_bytes())).await,
            Ok(Message::Binary(bytes)) => Box::pin(self.connection.receive(&bytes)).await,
            // tungstenite answers the client's close frame, and nothing may follow that; the
            // end of the stream comes next.
            Ok(Message::Close(_)) => {
                self.outbox.close();
                Reply::Nothing
            }
            // tungstenite answers pings.
            Ok(_) => Reply::Nothing,
            // Refused from its header, before its payload is read.
            Err(tungstenite::Error::Capacity(_)) => Reply::close(
                close::TOO_BIG,
                format!("A message may be at most {} bytes.", self.state.app.config.max_body_bytes),
            ),
            Err(_) => return None,
        };
        Some(reply)
    }

    fn session_changed(&mut self, change: Option<SessionChange>) -> Reply {
        match change {
            Some(SessionChange::Viewer(viewer)) => {
                self.connection.change_viewer(viewer);
                Reply::Nothing
            }
            Some(SessionChange::Ended) | None => Reply::close(close::FORBIDDEN, SESSION_ENDED),
        }
    }

    async fn act_on(&mut self, reply: Reply) -> Flow {
        match reply {
            Reply::Nothing => Flow::Continue,
            Reply::Send(text) => self.send(text).await,
            Reply::Close { message, code, reason } => {
                self.outbox.close();
                if let Some(message) = message {
                    let sending = self.socket.get_mut().send(Message::Text(message.into()));
                    let _ = tokio::time::timeout(CLOSE_TIMEOUT, sending).await;
                }
                close_with(self.socket.get_mut(), &self.outbox, code, &reason).await;
                Flow::Stop
            }
            Reply::End => Flow::Stop,
        }
    }

    /// Sends one of the socket's own messages, watching the session meanwhile: a session
    /// that ends while the message waits to go out closes the socket at once.
    async fn send(&mut self, text: String) -> Flow {
        let send_timeout = self.state.app.config.ws_send_timeout;
        // None when the session ended while the message waited to go out.
        let sent = {
            let sending = send(self.socket.get_mut(), text, send_timeout);
            tokio::pin!(sending);
            tokio::select! {
                biased;
                sent = &mut sending => Some(sent),
                change = self.session.next() => match change {
                    // Applied once this message is out: it answers what ran before.
                    Some(SessionChange::Viewer(viewer)) => {
                        let sent = sending.await;
                        self.connection.change_viewer(viewer);
                        Some(sent)
                    }
                    Some(SessionChange::Ended) | None => None,
                },
            }
        };
        match sent {
            Some(true) => Flow::Continue,
            Some(false) => Flow::Stop,
            None => {
                close_with(self.socket.get_mut(), &self.outbox, close::FORBIDDEN, SESSION_ENDED).await;
                Flow::Stop
            }
        }
    }

    /// Once signed in, the socket watches its session; a signed-out one watches nothing.
    fn watch_session_once_signed_in(&mut self) {
        if !self.connection.acknowledged() {
            return;
        }
        let Some(mark) = self.revocations.take() else { return };
        let Some(signed_in) = self.connection.signed_in() else { return };
        let viewer = &signed_in.viewer;
        let route = Route::Agent { organization_id: viewer.organization_id, agent_id: viewer.agent_id };
        let (feed, missed) = self.state.app.bus.subscribe_since::<SessionNotice>(route, mark);
        let watched = WatchedSession {
            viewer: signed_in.viewer.clone(),
            token: signed_in.token.clone(),
            expires_at: signed_in.expires_at,
        };
        let lifetime = SessionLifetime::from_config(&self.state.app.config);
        let changes = session_changes(self.state.app.db.clone(), lifetime, feed, watched, missed);
        self.session = WhenWoken::new(changes);
    }
}

/// Sends `text`, waiting at most `timeout` for the client to make room; false when it
/// did not go out. The timer is armed only when the send has to wait: almost every send
/// completes at once, and a timer armed and cancelled for each would cost every socket of a
/// fan-out a trip through the timer wheel.
async fn send(socket: &mut WebSocket, text: String, timeout: Duration) -> bool {
    // The sink's `send` rather than the socket's own async one: it is Unpin, so it can be
    // polled once here and awaited later.
    let mut sending = SinkExt::send(socket, Message::Text(text.into()));
    if let Poll::Ready(sent) = future::poll_fn(|cx| Poll::Ready(sending.poll_unpin(cx))).await {
        return sent.is_ok();
    }
    matches!(tokio::time::timeout(timeout, sending).await, Ok(Ok(())))
}

/// Resolves once frames that a shared execution could not write at once have gone out; Err
/// when the socket failed, or the client read nothing of them for `timeout`. (The timer is
/// armed only once frames wait.)
async fn backlog_written(outbox: &Outbox, timeout: Duration) -> io::Result<()> {
    future::poll_fn(|cx| outbox.poll_waiting(cx)).await;
    loop {
        let progress = tokio::time::timeout(timeout, future::poll_fn(|cx| outbox.poll_write_waiting(cx)));
        match progress.await {
            Ok(Ok(true)) => return Ok(()),
            Ok(Ok(false)) => {}
            Ok(Err(error)) => return Err(error),
            Err(_) => return Err(io::ErrorKind::TimedOut.into()),
        }
    }
}

/// Sends a close frame, after which no shared execution writes to the socket, and lingers
/// until the client has it.
async fn close_with(socket: &mut WebSocket, outbox: &Outbox, code: u16, reason: &str) {
    outbox.close();
    let reason = within_close_frame(reason).to_owned().into();
    let frame = Message::Close(Some(CloseFrame { code: CloseCode::from(code), reason }));
    if let Ok(Ok(())) = tokio::time::timeout(CLOSE_TIMEOUT, socket.send(frame)).await {
        outbox.linger(CLOSE_TIMEOUT).await;
    }
}

/// `reason`, cut to the 123 bytes a close frame has room for (RFC 6455 5.5: a control
/// frame's payload is at most 125 bytes, two of them the code); a longer one would not go
/// out at all. Reasons can hold what the client sent (an operation id, a parse error).
fn within_close_frame(reason: &str) -> &str {
    &reason[..reason.floor_char_boundary(123)]
}
