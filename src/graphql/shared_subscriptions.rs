//! Subscriptions over WebSocket, each run once for all the sockets that asked the same thing.
//!
//! async-graphql runs a subscription's document for every socket and every event. With many
//! Agents pages open on one organization, that was a third of the server's CPU for each
//! presence change, and about 7 KiB of state per socket (BENCHMARKS.md). Here, sockets whose
//! `subscribe` carries the same document, operation name and variables, from viewers of the
//! same [`Audience`], share one execution: it runs in a task of its own, serialises each
//! response once, and every socket sends that same text.
//!
//! Sharing is right only where a response depends on the viewer through its audience alone.
//! So only documents whose every operation is a subscription of fields listed in `SHAREABLE`
//! are shared; any other runs for its socket alone, as async-graphql would run it.

use std::{
    any::TypeId,
    collections::HashMap,
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard, Weak},
    task::{Context, Poll},
};

use async_graphql::{
    Data, Request, Response, Variables,
    parser::{
        parse_query,
        types::{ExecutableDocument, OperationType, Selection},
    },
};
use futures_util::{
    Stream, StreamExt,
    stream::{self, BoxStream},
};
use tokio::{
    sync::broadcast::{self, Receiver, WeakSender, error::RecvError},
    task::JoinHandle,
};
use tracing::Instrument;

use super::{ApiError, AppSchema, RequestContext};
use crate::{
    auth::model::Audience,
    telemetry::metrics::{GaugeGuard, Metrics},
};

/// Root fields whose responses depend on the viewer only through its audience.
/// - `presenceChanged`: the event's fields are the change's; `agent` is read for the
///   organization, and `Agent`'s fields depend on the viewer only through its organization,
///   its phone-number permission and, for an AGENT, which presence history is its own.
const SHAREABLE: &[&str] = &["presenceChanged", "__typename"];

/// Responses a socket may leave unread before its subscription is ended.
const UNREAD_LIMIT: usize = 1024;

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

/// The responses of one operation, counted as running until it ends, the client stops it or
/// the socket closes. (A struct rather than a `map` over the stream: every layer is one more
/// allocation each socket reads for every event of a fan-out.)
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

/// Runs the operations of `/graphql/ws`, one stream of responses for each `subscribe`.
#[derive(Clone)]
pub struct SubscriptionExecutor {
    schema: AppSchema,
    metrics: Arc<Metrics>,
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
    /// Weak: when the task ends, its sender goes with it and every socket sees the end.
    responses: WeakSender<ResponseJson>,
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

fn lock(registry: &Registry) -> MutexGuard<'_, HashMap<Arc<ShareKey>, Weak<Execution>>> {
    registry.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl SubscriptionExecutor {
    pub fn new(schema: AppSchema, metrics: Arc<Metrics>) -> Self {
        Self { schema, metrics, running: Arc::default() }
    }

    /// The responses of one operation a socket started (query, mutation or subscription),
    /// until it ends; `data` is the socket's session (its viewer).
    pub fn execute_stream(&self, request: Request, data: Arc<Data>) -> Responses {
        let counted = self.metrics.subscription_started();
        let stream = match share_key(&request, &data) {
            Some(key) => self.join(key, request.variables, data),
            None => run_alone(&self.schema, request, data),
        };
        Responses { stream, _counted: counted }
    }

    /// A socket's place in the shared execution of `key`, started if none runs.
    fn join(&self, key: ShareKey, variables: Variables, data: Arc<Data>) -> BoxStream<'static, ResponseJson> {
        // Declared first so it drops after the lock guard: dropping the last handle of an
        // execution takes the lock.
        let mut _stale = None;
        let mut running = lock(&self.running);
        let joined = match running.get(&key).and_then(Weak::upgrade) {
            Some(execution) => match execution.responses.upgrade() {
                Some(sender) => Some((execution, sender.subscribe())),
                None => {
                    _stale = Some(execution);
                    None
                }
            },
            None => None,
        };
        let (execution, receiver) = joined.unwrap_or_else(|| {
            let started = self.start(key, variables, data.clone());
            running.insert(started.0.key.clone(), Arc::downgrade(&started.0));
            started
        });
        drop(running);
        let schema = self.schema.clone();
        Subscriber::Shared { execution, receiver, delivered: false, schema, data }.into_stream()
    }

    fn start(
        &self,
        key: ShareKey,
        variables: Variables,
        data: Arc<Data>,
    ) -> (Arc<Execution>, Receiver<ResponseJson>) {
        let key = Arc::new(key);
        let (sender, receiver) = broadcast::channel(UNREAD_LIMIT);
        let weak_sender = sender.downgrade();
        let mut responses = self.schema.execute_stream_with_session_data(request_of(&key, &variables), data);
        // Its own span: it outlives the socket that started it.
        let span = tracing::info_span!("shared_subscription", operation = key.operation_name.as_deref());
        let task = tokio::spawn(
            async move {
                while let Some(response) = responses.next().await {
                    // Fails only while no socket listens, and then the task is about to be aborted.
                    let _ = sender.send(ResponseJson::of(&response));
                }
            }
            .instrument(span),
        );
        let execution = Execution {
            key,
            variables,
            responses: weak_sender,
            task,
            registry: Arc::downgrade(&self.running),
            _counted: self.metrics.execution_started(),
        };
        (Arc::new(execution), receiver)
    }
}

fn run_alone(schema: &AppSchema, request: Request, data: Arc<Data>) -> BoxStream<'static, ResponseJson> {
    schema.execute_stream_with_session_data(request, data).map(|response| ResponseJson::of(&response)).boxed()
}

/// What a shareable request shares on; None for any other.
fn share_key(request: &Request, session_data: &Data) -> Option<ShareKey> {
    if !request.extensions.is_empty() || !request.uploads.is_empty() {
        return None;
    }
    let context = session_data.get(&TypeId::of::<RequestContext>())?.downcast_ref::<RequestContext>()?;
    let audience = context.viewer.as_ref()?.audience();
    if !only_shareable_subscriptions(&parse_query(&request.query).ok()?) {
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

/// One socket's subscription.
enum Subscriber {
    Shared {
        execution: Arc<Execution>,
        receiver: Receiver<ResponseJson>,
        delivered: bool,
        /// For running its own, should it have to.
        schema: AppSchema,
        data: Arc<Data>,
    },
    /// The shared execution ended before this socket got anything from it (it failed to
    /// start, say, just before this socket joined): the socket runs its own, so it gets its
    /// own answer.
    Alone(BoxStream<'static, ResponseJson>),
}

impl Subscriber {
    fn into_stream(self) -> BoxStream<'static, ResponseJson> {
        stream::unfold(Some(self), |subscriber| async move {
            match subscriber? {
                Subscriber::Shared { execution, mut receiver, delivered, schema, data } => {
                    match receiver.recv().await {
                        Ok(response) => {
                            let next =
                                Subscriber::Shared { execution, receiver, delivered: true, schema, data };
                            Some((response, Some(next)))
                        }
                        Err(RecvError::Lagged(missed)) => {
                            Some((ResponseJson::of(&fell_behind(missed)), None))
                        }
                        Err(RecvError::Closed) if !delivered => {
                            let request = request_of(&execution.key, &execution.variables);
                            let mut alone = run_alone(&schema, request, data);
                            drop(execution);
                            let first = alone.next().await?;
                            Some((first, Some(Subscriber::Alone(alone))))
                        }
                        Err(RecvError::Closed) => None,
                    }
                }
                Subscriber::Alone(mut alone) => {
                    let next = alone.next().await?;
                    Some((next, Some(Subscriber::Alone(alone))))
                }
            }
        })
        .boxed()
    }
}

/// The client is told, and its subscription ends: it may subscribe again (and read the
/// current state with a query).
fn fell_behind(missed: u64) -> Response {
    ApiError::SubscriptionBehind(format!(
        "This subscription left more than {UNREAD_LIMIT} events unread and missed {missed}; it has ended. Subscribe again."
    ))
    .into_response()
}
