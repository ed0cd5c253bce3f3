//! Subscriptions over WebSocket, each run once for all the sockets that asked the same thing.
//!
//! async-graphql runs a subscription's document for every socket and every event. With many
//! Agents pages open on one organization, that was a third of the server's CPU for each
//! presence change, and about 7 KiB of state per socket (BENCHMARKS.md). Here, sockets whose
//! `subscribe` carries the same document, operation name and variables, from viewers of the
//! same [`Audience`], share one execution: it runs in a task of its own, serialises each
//! response once, and hands that same text to every socket's [`Recipient`].
//!
//! Sharing is right only where a response depends on the viewer through its audience alone.
//! So only documents whose every operation is a subscription of fields listed in `SHAREABLE`
//! are shared; any other runs for its socket alone, as async-graphql would run it.

use std::{
    any::TypeId,
    collections::HashMap,
    pin::Pin,
    sync::{
        Arc, Mutex, MutexGuard, Weak,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
};

use async_graphql::{
    Data, Request, Response, Variables,
    parser::types::{ExecutableDocument, OperationType, Selection},
};
use futures_util::{Stream, StreamExt, stream::BoxStream};
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::schema::AppSchema;
use crate::{
    graphql::{ApiError, ParsedDocuments, RequestContext, in_selection_order, operation_that_runs},
    telemetry::metrics::{GaugeGuard, Metrics},
    viewer::Audience,
};

/// Root fields whose responses depend on the viewer only through its audience.
/// - `presenceChanged`: the event's fields are the change's; `agent` is read for the
///   organization, and `Agent`'s fields depend on the viewer only through its organization,
///   its phone-number permission and, for an AGENT, which presence history is its own.
/// - `agentDirectoryChanged`: ADMINs only, its events are the organization's, and its
///   `agent` is an `Agent` as above. (Not `myConversations`: an ADMIN's audience does not
///   say whose conversations are "mine".)
const SHAREABLE: &[&str] = &["presenceChanged", "agentDirectoryChanged", "__typename"];

/// Responses a socket may leave unread before its subscription is ended.
pub const UNREAD_LIMIT: usize = 1024;

/// A GraphQL response as JSON text, serialised once however many sockets send it.
#[derive(Clone)]
pub struct ResponseJson(Arc<str>);

impl ResponseJson {
    pub fn of(response: &Response) -> Self {
        // Fails only for maps with non-string keys, which a GraphQL response cannot hold.
        let text = serde_json::to_string(response).unwrap_or_else(|error| {
            tracing::error!(%error, "serialising a subscription response failed");
            r#"{"errors":[{"message":"The server could not serialise this response."}]}"#.to_owned()
        });
        Self(text.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The document and operation responses come from, to serialise them with their keys in
/// selection order (see `in_selection_order`).
#[derive(Clone)]
struct Ran {
    document: Arc<ExecutableDocument>,
    operation_name: Option<String>,
}

impl Ran {
    fn json(&self, mut response: Response) -> ResponseJson {
        in_selection_order(&mut response, &self.document, self.operation_name.as_deref());
        ResponseJson::of(&response)
    }
}

/// Where a shared execution hands one operation's responses. The WebSocket transport writes
/// each to its socket there and then, from the execution's task: a change sent to thousands
/// of sockets wakes none of their tasks (the fan-out rows of BENCHMARKS.md).
pub trait Recipient: Send + Sync + 'static {
    /// Takes `response` for the client; false when the client has left `UNREAD_LIMIT`
    /// responses unread, and this one is refused.
    fn deliver(&self, response: &ResponseJson) -> bool;
    /// Nothing more comes from the execution, for the reason `ending` gives.
    fn end(&self, ending: Ending);
}

pub enum Ending {
    /// The execution ended by itself.
    Completed,
    /// The client left too much unread; `notice` tells it so, and its subscription ends.
    FellBehind(ResponseJson),
    /// The execution ended before this recipient got anything from it (it failed to start,
    /// say, just as this socket joined): the operation should run alone
    /// ([`Membership::run_alone`]), so the client gets its own answer.
    Unanswered,
}

/// The responses of one operation run for its socket alone, counted as running until it
/// ends, the client stops it or the socket closes. (A struct rather than a `map` over the
/// stream: every layer is one more allocation.)
pub struct Responses {
    stream: BoxStream<'static, ResponseJson>,
    _counted: GaugeGuard,
}

impl Stream for Responses {
    type Item = ResponseJson;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ResponseJson>> {
        self.stream.poll_next_unpin(cx)
    }
}

/// An operation a socket started.
pub enum Operation {
    /// Run for this socket alone; its responses are polled by the socket.
    Alone(Responses),
    /// A place in a shared execution, which delivers to the socket's [`Recipient`]. Leaves
    /// the execution when dropped.
    Shared(Membership),
}

/// A socket's place in a shared execution.
pub struct Membership {
    execution: Arc<Execution>,
    id: MemberId,
    /// For running the operation alone, should the execution end without answering it.
    schema: AppSchema,
    data: Arc<Data>,
    counted: Option<GaugeGuard>,
}

impl Membership {
    /// The operation run for this socket alone (after [`Ending::Unanswered`]).
    pub fn run_alone(mut self) -> Responses {
        let request = request_of(&self.execution.key, &self.execution.variables);
        let counted = self.counted.take().expect("counted until dropped");
        run_alone(&self.schema, request, self.data.clone(), counted, Some(self.execution.ran.clone()))
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.execution.members.leave(self.id);
    }
}

/// Runs the operations of `/graphql/ws`, one for each `subscribe`.
#[derive(Clone)]
pub struct SubscriptionExecutor {
    schema: AppSchema,
    metrics: Arc<Metrics>,
    documents: Arc<ParsedDocuments>,
    running: Arc<Registry>,
}

/// The shared executions by what they run; an entry lives as long as a socket uses it.
type Registry = Mutex<HashMap<Arc<ShareKey>, Weak<Execution>>>;

#[derive(PartialEq, Eq, Hash)]
struct ShareKey {
    query: String,
    operation_name: Option<String>,
    /// As JSON: `Variables` is a sorted map, so equal variables give equal text.
    variables: String,
    audience: Audience,
}

struct Execution {
    key: Arc<ShareKey>,
    variables: Variables,
    ran: Ran,
    members: Arc<Members>,
    task: JoinHandle<()>,
    registry: Weak<Registry>,
    _counted: GaugeGuard,
}

impl Drop for Execution {
    /// Its last socket left: stop running it.
    fn drop(&mut self) {
        self.task.abort();
        if let Some(registry) = self.registry.upgrade() {
            let mut running = lock(&registry);
            // Unless a newer execution of the same key took the place already.
            if running.get(&self.key).is_some_and(|entry| entry.strong_count() == 0) {
                running.remove(&self.key);
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

type MemberId = u64;

/// Who a shared execution delivers to.
#[derive(Default)]
struct Members(Mutex<MemberList>);

#[derive(Default)]
struct MemberList {
    next_id: MemberId,
    current: HashMap<MemberId, Arc<Member>>,
    /// The execution's responses ended: a socket asking the same now starts a new one.
    ended: bool,
}

struct Member {
    id: MemberId,
    recipient: Arc<dyn Recipient>,
    answered: AtomicBool,
}

impl Members {
    /// Adds `recipient`; None once the execution has ended.
    fn join(&self, recipient: Arc<dyn Recipient>) -> Option<MemberId> {
        let mut list = lock(&self.0);
        if list.ended {
            return None;
        }
        let id = list.next_id;
        list.next_id += 1;
        list.current.insert(id, Arc::new(Member { id, recipient, answered: AtomicBool::new(false) }));
        Some(id)
    }

    fn leave(&self, id: MemberId) {
        lock(&self.0).current.remove(&id);
    }

    /// Everyone now, to deliver to outside the lock: joining and leaving do not wait for a
    /// delivery, and one that left meanwhile is told nothing by its recipient.
    fn everyone(&self) -> Arc<[Arc<Member>]> {
        lock(&self.0).current.values().cloned().collect()
    }

    fn end(&self) -> Vec<Arc<Member>> {
        let mut list = lock(&self.0);
        list.ended = true;
        list.current.drain().map(|(_, member)| member).collect()
    }
}

impl SubscriptionExecutor {
    pub fn new(schema: AppSchema, metrics: Arc<Metrics>, documents: Arc<ParsedDocuments>) -> Self {
        Self { schema, metrics, documents, running: Arc::default() }
    }

    /// Starts one operation a socket asked for (query, mutation or subscription); `data` is
    /// the socket's session (its viewer). A shareable one delivers to `recipient`.
    pub fn execute(&self, mut request: Request, data: Arc<Data>, recipient: Arc<dyn Recipient>) -> Operation {
        let counted = self.metrics.subscription_started();
        // From the shared store: a subscription keeps its document for as long as it runs,
        // and thousands of sockets send the same one.
        let ran = self
            .documents
            .parse(&mut request)
            .map(|document| Ran { document, operation_name: request.operation_name.clone() });
        if ran.as_ref().is_some_and(|ran| subscribes_through_a_fragment(&ran.document, &request)) {
            let refusal = ResponseJson::of(&subscription_through_a_fragment());
            let stream = futures_util::stream::iter([refusal]).boxed();
            return Operation::Alone(Responses { stream, _counted: counted });
        }
        match ran.as_ref().and_then(|ran| Some((share_key(&request, &ran.document, &data)?, ran.clone()))) {
            Some((key, ran)) => {
                Operation::Shared(self.join(key, ran, request.variables, data, recipient, counted))
            }
            None => Operation::Alone(run_alone(&self.schema, request, data, counted, ran)),
        }
    }

    /// A place in the shared execution of `key`, started if none runs.
    fn join(
        &self,
        key: ShareKey,
        ran: Ran,
        variables: Variables,
        data: Arc<Data>,
        recipient: Arc<dyn Recipient>,
        counted: GaugeGuard,
    ) -> Membership {
        // Declared first so it drops after the lock guard: dropping the last handle of an
        // execution takes the lock.
        let mut _ended = None;
        let mut running = lock(&self.running);
        let joined = match running.get(&key).and_then(Weak::upgrade) {
            Some(execution) => match execution.members.join(recipient.clone()) {
                Some(id) => Some((execution, id)),
                None => {
                    _ended = Some(execution);
                    None
                }
            },
            None => None,
        };
        let (execution, id) = joined.unwrap_or_else(|| {
            let started = self.start(key, ran, variables, data.clone(), recipient);
            running.insert(started.0.key.clone(), Arc::downgrade(&started.0));
            started
        });
        drop(running);
        Membership { execution, id, schema: self.schema.clone(), data, counted: Some(counted) }
    }

    /// A new execution, with `first` already its member: were it added after the task
    /// started, a response or the end could come before it.
    fn start(
        &self,
        key: ShareKey,
        ran: Ran,
        variables: Variables,
        data: Arc<Data>,
        first: Arc<dyn Recipient>,
    ) -> (Arc<Execution>, MemberId) {
        let key = Arc::new(key);
        let members = Arc::new(Members::default());
        let id = members.join(first).expect("a new execution has not ended");
        let mut responses = self.schema.execute_stream_with_session_data(request_of(&key, &variables), data);
        // Its own span: it outlives the socket that started it.
        let span = tracing::info_span!("shared_subscription", operation = key.operation_name.as_deref());
        let delivering = members.clone();
        let ordering = ran.clone();
        let task = tokio::spawn(
            async move {
                while let Some(response) = responses.next().await {
                    deliver(&delivering, ordering.json(response)).await;
                }
                for member in delivering.end() {
                    let answered = member.answered.load(Ordering::Acquire);
                    member.recipient.end(if answered { Ending::Completed } else { Ending::Unanswered });
                }
            }
            .instrument(span),
        );
        let execution = Execution {
            key,
            variables,
            ran,
            members,
            task,
            registry: Arc::downgrade(&self.running),
            _counted: self.metrics.execution_started(),
        };
        (Arc::new(execution), id)
    }
}

/// Below this many members one task delivers to all of them.
const MEMBERS_PER_TASK: usize = 512;

/// Hands `response` to every member, spread over the runtime's workers as the sockets' own
/// tasks would be, and returns when all have it (so each socket gets the responses in order).
async fn deliver(members: &Arc<Members>, response: ResponseJson) {
    let everyone = members.everyone();
    if everyone.len() <= MEMBERS_PER_TASK {
        deliver_to(members, &everyone, &response);
        return;
    }
    let workers = tokio::runtime::Handle::current().metrics().num_workers();
    let share = everyone.len().div_ceil(workers).max(MEMBERS_PER_TASK);
    // Every share in a task of its own, this one only waiting: a share delivered here would
    // hold this worker, and the task spawned last sits in its LIFO slot, which no other
    // worker may steal (a profile showed one worker doing the whole fan-out).
    let shares: Vec<_> = (0..everyone.len())
        .step_by(share)
        .map(|start| {
            let (members, everyone, response) = (members.clone(), everyone.clone(), response.clone());
            tokio::spawn(async move {
                deliver_to(&members, &everyone[start..everyone.len().min(start + share)], &response);
            })
        })
        .collect();
    for share in shares {
        // A panic in a recipient is its own socket's loss; the others were served.
        let _ = share.await;
    }
}

fn deliver_to(members: &Members, recipients: &[Arc<Member>], response: &ResponseJson) {
    for member in recipients {
        if member.recipient.deliver(response) {
            member.answered.store(true, Ordering::Release);
        } else {
            members.leave(member.id);
            member.recipient.end(Ending::FellBehind(ResponseJson::of(&fell_behind())));
        }
    }
}

/// `ran` is None for a document that does not parse (its one response is the error).
fn run_alone(
    schema: &AppSchema,
    request: Request,
    data: Arc<Data>,
    counted: GaugeGuard,
    ran: Option<Ran>,
) -> Responses {
    let stream = schema.execute_stream_with_session_data(request, data).map(move |response| match &ran {
        Some(ran) => ran.json(response),
        None => ResponseJson::of(&response),
    });
    Responses { stream: stream.boxed(), _counted: counted }
}

/// Whether the subscription `request` runs selects its root field through a fragment
/// (`subscription { ...F }`, `subscription { ... on Subscription { f } }`). That is valid
/// GraphQL, but async-graphql 7.2 starts streams only for fields written at the root and would
/// end such a subscription at once, silently.
fn subscribes_through_a_fragment(document: &ExecutableDocument, request: &Request) -> bool {
    operation_that_runs(document, request.operation_name.as_deref()).is_some_and(|operation| {
        let root = &operation.node.selection_set.node.items;
        operation.node.ty == OperationType::Subscription
            && root.iter().any(|selection| !matches!(selection.node, Selection::Field(_)))
    })
}

fn subscription_through_a_fragment() -> Response {
    ApiError::BadRequest(
        "Select a subscription's field directly at its root: fragments there are not supported.".into(),
    )
    .into_response()
}

/// What a shareable request shares on; None for any other.
fn share_key(request: &Request, document: &ExecutableDocument, session_data: &Data) -> Option<ShareKey> {
    if !request.extensions.is_empty() || !request.uploads.is_empty() {
        return None;
    }
    let context = session_data.get(&TypeId::of::<RequestContext>())?.downcast_ref::<RequestContext>()?;
    let audience = context.viewer.as_ref()?.audience();
    if !only_shareable_subscriptions(document) {
        return None;
    }
    Some(ShareKey {
        query: request.query.clone(),
        operation_name: request.operation_name.clone(),
        variables: serde_json::to_string(&request.variables).ok()?,
        audience,
    })
}

/// Every operation of the document, not only the one that will run: whichever async-graphql
/// picks is then shareable.
fn only_shareable_subscriptions(document: &ExecutableDocument) -> bool {
    document.operations.iter().all(|(_, operation)| {
        operation.node.ty == OperationType::Subscription
            && operation.node.selection_set.node.items.iter().all(|selection| match &selection.node {
                Selection::Field(field) => SHAREABLE.contains(&field.node.name.node.as_str()),
                Selection::FragmentSpread(_) | Selection::InlineFragment(_) => false,
            })
    })
}

fn request_of(key: &ShareKey, variables: &Variables) -> Request {
    let request = Request::new(key.query.clone()).variables(variables.clone());
    match &key.operation_name {
        Some(name) => request.operation_name(name.clone()),
        None => request,
    }
}

/// The client is told, and its subscription ends: it may subscribe again (and read the
/// current state with a query).
fn fell_behind() -> Response {
    ApiError::SubscriptionBehind(format!(
        "This subscription left more than {UNREAD_LIMIT} events unread; it has ended. Subscribe again."
    ))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;

    /// Takes everything, or nothing (as a client that left too much unread).
    #[derive(Default)]
    struct Client {
        full: bool,
        delivered: Mutex<Vec<String>>,
        fell_behind: AtomicBool,
    }

    impl Recipient for Client {
        fn deliver(&self, response: &ResponseJson) -> bool {
            if !self.full {
                lock(&self.delivered).push(response.as_str().to_owned());
            }
            !self.full
        }

        fn end(&self, ending: Ending) {
            if matches!(ending, Ending::FellBehind(_)) {
                self.fell_behind.store(true, Ordering::SeqCst);
            }
        }
    }

    fn response(text: &str) -> ResponseJson {
        ResponseJson::of(&Response::new(async_graphql::Value::from(text)))
    }

    #[test]
    fn only_the_operation_that_runs_is_checked_for_a_root_fragment() {
        let query = "subscription Through { ...F } subscription Direct { presenceChanged { status } }
            fragment F on Subscription { presenceChanged { status } }";
        let document = parse_query(query).unwrap();
        let through = |operation: Option<&str>| {
            let request = Request::new(query);
            let request = match operation {
                Some(name) => request.operation_name(name),
                None => request,
            };
            subscribes_through_a_fragment(&document, &request)
        };
        assert!(through(Some("Through")));
        assert!(!through(Some("Direct")));
        assert!(!through(None), "async-graphql asks which one");
        let query_root = parse_query("query { ... on Query { __typename } }").unwrap();
        assert!(!subscribes_through_a_fragment(&query_root, &Request::new("")), "queries run as written");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_member_gets_each_response_once_in_order_however_many_share_it() {
        for count in [1, MEMBERS_PER_TASK, 5 * MEMBERS_PER_TASK + 7] {
            let members = Arc::new(Members::default());
            let clients: Vec<Arc<Client>> =
                (0..count).map(|n| Arc::new(Client { full: n % 100 == 99, ..Client::default() })).collect();
            for client in &clients {
                members.join(client.clone()).expect("a running execution");
            }
            deliver(&members, response("first")).await;
            deliver(&members, response("second")).await;

            let expected = [response("first").as_str().to_owned(), response("second").as_str().to_owned()];
            for client in &clients {
                if client.full {
                    assert!(client.fell_behind.load(Ordering::SeqCst), "{count}: told it fell behind");
                    assert!(lock(&client.delivered).is_empty());
                } else {
                    assert_eq!(*lock(&client.delivered), expected, "{count} members");
                }
            }
            let behind = clients.iter().filter(|client| client.full).count();
            assert_eq!(members.everyone().len(), count - behind, "those that fell behind left");
        }
    }
}
