//! One socket's protocol state: its handshake, the operations it runs, and the answer to
//! each client message. The socket's loop (`super::serve`) owns the timing: deadlines,
//! revocation, shutdown and sending.

use std::{
    future, mem,
    net::IpAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::Poll,
};

use async_graphql::{Data, Extensions, Request, Variables, http::ClientMessage};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;

use super::{
    outbox::{Bound, Outbox},
    protocol::{self, ACKNOWLEDGED, PONG, Protocol, close},
};
use crate::{
    api::{Ending, Membership, Operation, Recipient, ResponseJson, Responses, SubscriptionExecutor},
    auth::{
        model::SessionLifetime,
        service::{self as auth, Authenticated},
    },
    graphql::{RequestContext, is_subscription},
    http::bearer_token,
    presence::service::{self as presence, OpenSocket},
    state::AppState,
    viewer::Viewer,
};

/// What the socket's loop does after a client message.
pub enum Reply {
    Nothing,
    Send(String),
    /// Sends `message` (when there is one), then closes with `code`.
    Close {
        message: Option<String>,
        code: u16,
        reason: String,
    },
    /// The client said goodbye (`connection_terminate`).
    End,
}

impl Reply {
    pub fn close(code: u16, reason: impl Into<String>) -> Self {
        Self::Close { message: None, code, reason: reason.into() }
    }
}

/// A viewer whose token `connection_init` carried, with its socket counted for presence.
pub struct SignedIn {
    pub viewer: Viewer,
    pub token: String,
    /// When the session ends unless it is used again; None: never.
    pub expires_at: Option<DateTime<Utc>>,
    pub socket: OpenSocket,
}

enum Handshake {
    Awaiting,
    /// Acknowledged; the session data every operation runs with, and the viewer when the
    /// client signed in (an anonymous socket may run what anonymous viewers may).
    Done {
        session: Arc<Data>,
        signed_in: Option<SignedIn>,
    },
}

pub struct Connection {
    app: AppState,
    executor: SubscriptionExecutor,
    protocol: Protocol,
    peer: IpAddr,
    outbox: Arc<Outbox>,
    handshake: Handshake,
    operations: Operations,
}

impl Connection {
    pub fn new(
        app: AppState,
        executor: SubscriptionExecutor,
        protocol: Protocol,
        peer: IpAddr,
        outbox: Arc<Outbox>,
    ) -> Self {
        let operations = Operations::new(app.config.ws_max_subscriptions);
        Self { app, executor, protocol, peer, outbox, handshake: Handshake::Awaiting, operations }
    }

    pub fn acknowledged(&self) -> bool {
        matches!(self.handshake, Handshake::Done { .. })
    }

    pub fn signed_in(&self) -> Option<&SignedIn> {
        match &self.handshake {
            Handshake::Done { signed_in, .. } => signed_in.as_ref(),
            Handshake::Awaiting => None,
        }
    }

    pub async fn receive(&mut self, message: &[u8]) -> Reply {
        let message = match protocol::parse(message) {
            Ok(message) => message,
            Err(reason) => return Reply::close(close::BAD_REQUEST, reason),
        };
        match message {
            ClientMessage::ConnectionInit { payload } => self.initialise(&payload.unwrap_or_default()).await,
            ClientMessage::Start { id, payload } => self.start(id, payload),
            // No `complete` back: the client asked, it knows (both protocols say so).
            ClientMessage::Stop { id } => {
                self.operations.stop(&id);
                Reply::Nothing
            }
            ClientMessage::ConnectionTerminate => Reply::End,
            ClientMessage::Ping { .. } => Reply::Send(PONG.to_owned()),
            ClientMessage::Pong { .. } => Reply::Nothing,
        }
    }

    /// The next message for the client from its running operations: a result, or the end
    /// of one. Never ready while none runs.
    pub async fn next_output(&mut self) -> String {
        let protocol = self.protocol;
        future::poll_fn(|cx| self.operations.poll_next(cx, protocol)).await
    }

    /// The agent's permissions changed: operations sent from now on run as `viewer`, and the
    /// running subscriptions start again as `viewer` (with its masking, in the shared
    /// execution of its kind, or refused if it may no longer run them). Queries and mutations
    /// under way finish as they began.
    pub fn change_viewer(&mut self, viewer: Viewer) {
        let changed = self.session_of(Some(viewer.clone()));
        let Handshake::Done { session, signed_in: Some(signed_in) } = &mut self.handshake else {
            return;
        };
        signed_in.viewer = viewer;
        *session = changed.clone();
        let session = changed;
        for started in &mut self.operations.running {
            let Some(replay) = &started.replay else { continue };
            let delivery = Arc::new(Delivery::new(self.outbox.clone(), self.protocol, started.id.clone()));
            // The old one stops delivering before the new one can: no event of one viewer
            // goes out after one of the other.
            started.running = Running::of(
                self.executor.execute(replay.request(), session.clone(), delivery.clone()),
                delivery,
            );
        }
    }

    fn session_of(&self, viewer: Option<Viewer>) -> Arc<Data> {
        let mut session = Data::default();
        session.insert(RequestContext::new(viewer).with_client_address(self.peer));
        Arc::new(session)
    }

    async fn initialise(&mut self, payload: &serde_json::Value) -> Reply {
        if self.acknowledged() {
            return self.refuse(close::TOO_MANY, "Too many initialisation requests.");
        }
        match sign_in(&self.app, payload).await {
            Ok(signed_in) => {
                let viewer = signed_in.as_ref().map(|signed_in| signed_in.viewer.clone());
                self.handshake = Handshake::Done { session: self.session_of(viewer), signed_in };
                Reply::Send(ACKNOWLEDGED.to_owned())
            }
            Err(SignInError::Refused(reason)) => self.refuse(close::FORBIDDEN, reason),
            Err(SignInError::Unavailable(reason)) => self.refuse(close::UNAVAILABLE, reason),
        }
    }

    fn refuse(&self, code: u16, reason: &str) -> Reply {
        Reply::Close { message: self.protocol.refusal(reason), code, reason: reason.to_owned() }
    }

    fn start(&mut self, id: String, request: Request) -> Reply {
        let Handshake::Done { session, .. } = &self.handshake else {
            return Reply::close(close::UNAUTHORIZED, "Unauthorized: send connection_init first.");
        };
        if self.operations.is_running(&id) && self.protocol == Protocol::Transport {
            return Reply::close(close::DUPLICATE_ID, format!("Subscriber for {id} already exists"));
        }
        // The legacy protocol replaces an operation started again under the same id.
        self.operations.stop(&id);
        if self.operations.is_full() {
            let limit = self.operations.limit;
            return Reply::close(
                close::TOO_MANY,
                format!("At most {limit} operations may run at once on one connection."),
            );
        }
        let mut request = request;
        let replay = Replay::of_subscription(&mut request);
        let delivery = Arc::new(Delivery::new(self.outbox.clone(), self.protocol, id.clone()));
        let running =
            Running::of(self.executor.execute(request, session.clone(), delivery.clone()), delivery);
        // One place at a time: most sockets run one or two operations for hours, and a
        // vector's first growth would reserve four.
        self.operations.running.reserve_exact(1);
        self.operations.running.push(Started { id, running, replay });
        Reply::Nothing
    }
}

/// What a subscription was started with, to start it again for a changed viewer.
struct Replay {
    query: String,
    operation_name: Option<String>,
    variables: Variables,
    extensions: Extensions,
}

impl Replay {
    /// None for a query or mutation: those run once, and are never run again.
    fn of_subscription(request: &mut Request) -> Option<Self> {
        is_subscription(request).then(|| Self {
            query: request.query.clone(),
            operation_name: request.operation_name.clone(),
            variables: request.variables.clone(),
            extensions: request.extensions.clone(),
        })
    }

    fn request(&self) -> Request {
        let mut request = Request::new(self.query.clone()).variables(self.variables.clone());
        request.operation_name = self.operation_name.clone();
        request.extensions = self.extensions.clone();
        request
    }
}

/// The operations a client started and the server has not completed yet. Each costs a
/// stream or a place among the members every event is delivered to; without a bound one
/// socket could start any number.
struct Operations {
    running: Vec<Started>,
    limit: usize,
    /// Where the next poll starts, so one busy operation cannot starve the others.
    first: usize,
}

struct Started {
    id: String,
    running: Running,
    /// A subscription's request; None for a query or mutation.
    replay: Option<Replay>,
}

enum Running {
    /// Polled by the socket's task for its responses.
    Alone(Responses),
    /// Delivered to by a shared execution, from its own task.
    Shared { membership: Membership, delivery: Stops },
}

impl Running {
    fn of(operation: Operation, delivery: Arc<Delivery>) -> Self {
        match operation {
            Operation::Alone(responses) => Running::Alone(responses),
            Operation::Shared(membership) => Running::Shared { membership, delivery: Stops(delivery) },
        }
    }

    fn is_over(&self) -> bool {
        matches!(self, Self::Shared { delivery, .. } if delivery.0.over.load(Ordering::Acquire))
    }

    fn is_unanswered(&self) -> bool {
        matches!(self, Self::Shared { delivery, .. } if delivery.0.unanswered.load(Ordering::Acquire))
    }
}

impl Operations {
    fn new(limit: usize) -> Self {
        Self { running: Vec::new(), limit, first: 0 }
    }

    fn is_running(&mut self, id: &str) -> bool {
        self.forget_the_over();
        self.running.iter().any(|started| started.id == id)
    }

    fn is_full(&mut self) -> bool {
        self.forget_the_over();
        self.running.len() >= self.limit
    }

    fn stop(&mut self, id: &str) {
        self.running.retain(|started| started.id != id);
    }

    /// Shared operations whose execution ended them (and told the client so).
    fn forget_the_over(&mut self) {
        self.running.retain(|started| !started.running.is_over());
    }

    /// Shared operations the execution ended without answering run alone instead.
    fn run_the_unanswered_alone(&mut self) {
        if !self.running.iter().any(|started| started.running.is_unanswered()) {
            return;
        }
        self.running = mem::take(&mut self.running)
            .into_iter()
            .map(|Started { id, running, replay }| {
                let running = match running {
                    Running::Shared { membership, .. } if running.is_unanswered() => {
                        Running::Alone(membership.run_alone())
                    }
                    running => running,
                };
                Started { id, running, replay }
            })
            .collect();
    }

    /// The message for the next response of any operation run alone, or for the end of one
    /// (which is then removed).
    fn poll_next(&mut self, cx: &mut std::task::Context<'_>, protocol: Protocol) -> Poll<String> {
        self.run_the_unanswered_alone();
        let count = self.running.len();
        for offset in 0..count {
            let index = (self.first + offset) % count;
            let Started { id, running: Running::Alone(responses), .. } = &mut self.running[index] else {
                continue;
            };
            match responses.poll_next_unpin(cx) {
                Poll::Ready(Some(response)) => {
                    self.first = index + 1;
                    return Poll::Ready(protocol.result(id, &response));
                }
                Poll::Ready(None) => {
                    let ended = self.running.swap_remove(index);
                    return Poll::Ready(protocol.complete(&ended.id));
                }
                Poll::Pending => {}
            }
        }
        Poll::Pending
    }
}

/// Where a shared execution delivers one operation of this socket: straight into the
/// socket's outbox, from the execution's task.
struct Delivery {
    outbox: Arc<Outbox>,
    protocol: Protocol,
    id: String,
    /// Set under the outbox's lock: once the client stopped the operation (and may start
    /// another under the same id) nothing more of it goes out, even from a delivery under way.
    stopped: AtomicBool,
    /// Ended by the execution, and the client was told.
    over: AtomicBool,
    /// Ended by the execution before it answered: the socket runs the operation alone.
    unanswered: AtomicBool,
}

impl Delivery {
    fn new(outbox: Arc<Outbox>, protocol: Protocol, id: String) -> Self {
        let flag = || AtomicBool::new(false);
        Self { outbox, protocol, id, stopped: flag(), over: flag(), unanswered: flag() }
    }
}

impl Recipient for Delivery {
    fn deliver(&self, response: &ResponseJson) -> bool {
        let message = self.protocol.result(&self.id, response);
        let mut queue = self.outbox.lock();
        self.stopped.load(Ordering::Acquire) || self.outbox.send_text(&mut queue, &message, Bound::Unread)
    }

    fn end(&self, ending: Ending) {
        let mut queue = self.outbox.lock();
        if self.stopped.load(Ordering::Acquire) {
            return;
        }
        let notice = match ending {
            Ending::Completed => None,
            Ending::FellBehind(notice) => Some(notice),
            Ending::Unanswered => {
                self.unanswered.store(true, Ordering::Release);
                // The socket's task turns it into an operation of its own.
                queue.wake_task();
                return;
            }
        };
        if let Some(notice) = notice {
            self.outbox.send_text(&mut queue, &self.protocol.result(&self.id, &notice), Bound::None);
        }
        self.outbox.send_text(&mut queue, &self.protocol.complete(&self.id), Bound::None);
        self.over.store(true, Ordering::Release);
    }
}

/// Stops a shared operation's deliveries when the socket drops it.
struct Stops(Arc<Delivery>);

impl Drop for Stops {
    fn drop(&mut self) {
        let _queue = self.0.outbox.lock();
        self.0.stopped.store(true, Ordering::Release);
    }
}

enum SignInError {
    /// The token is not valid: the client must sign in again.
    Refused(&'static str),
    /// The token could not be checked: the client may retry.
    Unavailable(&'static str),
}

/// The viewer named by the payload's `authorization` (none when absent), with its socket
/// counted for presence.
async fn sign_in(app: &AppState, payload: &serde_json::Value) -> Result<Option<SignedIn>, SignInError> {
    let Some(token) = authorization_in(payload)? else {
        return Ok(None);
    };
    let unavailable = |error: sea_orm::DbErr| {
        tracing::error!(%error, "authenticating a socket failed");
        SignInError::Unavailable("The server could not check the token; try again.")
    };
    let lifetime = SessionLifetime::from_config(&app.config);
    let Authenticated { viewer, expires_at } =
        auth::authenticate_request(&app.db, &app.sessions, lifetime, token)
            .await
            .map_err(unavailable)?
            .ok_or(SignInError::Refused("The token is not valid; sign in again."))?;
    let socket = presence::socket_opened(&app.db, &app.instance, &viewer).await.map_err(unavailable)?;
    Ok(Some(SignedIn { viewer, token: token.to_owned(), expires_at, socket }))
}

/// The bearer token of `{"authorization": "Bearer …"}`, the key matched case-insensitively
/// (GraphiQL sends its headers editor's `Authorization` as is); None when the payload names
/// none. An authorization the client did send but spelled wrong is refused rather than taken
/// for none: the client would otherwise be told "Sign in first" on every operation.
fn authorization_in(payload: &serde_json::Value) -> Result<Option<&str>, SignInError> {
    let fields = match payload {
        serde_json::Value::Null => return Ok(None),
        serde_json::Value::Object(fields) => fields,
        _ => return Err(SignInError::Refused("The connection_init payload must be an object.")),
    };
    let Some((_, authorization)) = fields.iter().find(|(key, _)| key.eq_ignore_ascii_case("authorization"))
    else {
        return Ok(None);
    };
    // A client without a token may still send the key, empty.
    if authorization.is_null() || authorization.as_str().is_some_and(|text| text.trim().is_empty()) {
        return Ok(None);
    }
    authorization
        .as_str()
        .and_then(bearer_token)
        .map(Some)
        .ok_or(SignInError::Refused("The authorization must read \"Bearer <token>\"."))
}
