//! Prometheus metrics for `GET /metrics`: GraphQL operations by name and outcome, their
//! latency, open WebSockets, active subscriptions, SQL statements sent, the password-
//! hashing queue and the hashes computed. Operations are counted (and given a tracing span)
//! around their execution (`observe_operation`); the last two are read from their owners at
//! scrape time, so there is no second count to keep in step.

use std::{collections::HashSet, fmt, sync::Mutex, time::Instant};

use async_graphql::Response;
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, text},
    metrics::{
        counter::{ConstCounter, Counter},
        family::Family,
        gauge::{ConstGauge, Gauge},
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};
use tracing::Instrument;

use crate::{auth::PasswordHasher, db::StatementCounter};

/// Operation names are chosen by clients; past this many distinct ones, further names are
/// counted as `other`, so a client cannot grow the metrics without bound.
const MAX_OPERATION_NAMES: usize = 200;
const MAX_OPERATION_NAME_CHARS: usize = 100;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: String,
    outcome: &'static str,
}

pub struct Metrics {
    registry: Registry,
    operations: Family<OperationLabels, Counter>,
    duration: Histogram,
    open_websockets: Gauge,
    active_subscriptions: Gauge,
    subscription_executions: Gauge,
    operation_names: Mutex<HashSet<String>>,
}

impl Metrics {
    /// `listeners` reads, at each scrape, how many receivers each event feed has.
    pub fn new(statements: StatementCounter, hasher: PasswordHasher, listeners: FeedListeners) -> Self {
        let mut registry = Registry::default();
        let operations = Family::<OperationLabels, Counter>::default();
        registry.register(
            "agentdesk_graphql_operations",
            "GraphQL operations by operation name and outcome (error: any error in the response)",
            operations.clone(),
        );
        // 1 ms to ~16 s.
        let duration = Histogram::new(exponential_buckets(0.001, 2.0, 15));
        registry.register(
            "agentdesk_graphql_operation_duration_seconds",
            "Time from receiving a GraphQL operation to its response",
            duration.clone(),
        );
        let open_websockets = Gauge::default();
        registry.register(
            "agentdesk_websockets_open",
            "Open GraphQL WebSocket connections",
            open_websockets.clone(),
        );
        let active_subscriptions = Gauge::default();
        registry.register(
            "agentdesk_subscriptions_active",
            "GraphQL subscriptions currently streaming",
            active_subscriptions.clone(),
        );
        let subscription_executions = Gauge::default();
        registry.register(
            "agentdesk_subscription_executions",
            "Shared subscription executions running: sockets that ask the same share one",
            subscription_executions.clone(),
        );
        registry.register_collector(Box::new(Sampled { statements, hasher, listeners }));
        Self {
            registry,
            operations,
            duration,
            open_websockets,
            active_subscriptions,
            subscription_executions,
            operation_names: Mutex::default(),
        }
    }

    /// The metrics in the text exposition format.
    pub fn render(&self) -> Result<String, fmt::Error> {
        let mut out = String::new();
        text::encode(&mut out, &self.registry)?;
        Ok(out)
    }

    /// Counts a WebSocket connection as open until the guard is dropped.
    pub fn websocket_opened(&self) -> GaugeGuard {
        GaugeGuard::hold(&self.open_websockets)
    }

    /// Counts a socket's subscription as active until the guard is dropped.
    pub fn subscription_started(&self) -> GaugeGuard {
        GaugeGuard::hold(&self.active_subscriptions)
    }

    /// Counts a shared subscription execution as running until the guard is dropped.
    pub fn execution_started(&self) -> GaugeGuard {
        GaugeGuard::hold(&self.subscription_executions)
    }

    /// Runs one GraphQL operation in a `graphql` span naming it, and counts it with its
    /// outcome and latency. (async-graphql's own `Tracing` extension is not used: it records
    /// the whole document with its variables, passwords included unless every such argument
    /// is marked secret, and opens a span per field. Nor is this an extension of ours: with
    /// any extension registered, async-graphql sends every field through the extension chain,
    /// 18% of the agents page in BENCHMARKS.md.)
    pub async fn observe_operation(
        &self,
        name: Option<&str>,
        operation: impl Future<Output = Response>,
    ) -> Response {
        let started = Instant::now();
        let response = operation.instrument(tracing::info_span!("graphql", operation = name)).await;
        self.record_operation(name, response.is_ok(), started);
        response
    }

    fn record_operation(&self, name: Option<&str>, ok: bool, started: Instant) {
        let labels = OperationLabels {
            operation: self.operation_label(name),
            outcome: if ok { "ok" } else { "error" },
        };
        self.operations.get_or_create(&labels).inc();
        self.duration.observe(started.elapsed().as_secs_f64());
    }

    fn operation_label(&self, name: Option<&str>) -> String {
        let Some(name) = name else {
            return "anonymous".to_owned();
        };
        let well_formed = name.chars().count() <= MAX_OPERATION_NAME_CHARS
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        let mut known = self.operation_names.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if well_formed && (known.contains(name) || known.len() < MAX_OPERATION_NAMES) {
            known.insert(name.to_owned());
            name.to_owned()
        } else {
            "other".to_owned()
        }
    }
}

/// Decrements its gauge when dropped: a count that cannot leak on early returns or panics.
pub struct GaugeGuard(Gauge);

impl GaugeGuard {
    fn hold(gauge: &Gauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Reads each event feed's receiver count (the bus owns the feeds; this module does not know it).
pub type FeedListeners = Box<dyn Fn() -> Vec<(&'static str, usize)> + Send + Sync>;

/// Values owned elsewhere, read at each scrape.
struct Sampled {
    statements: StatementCounter,
    hasher: PasswordHasher,
    listeners: FeedListeners,
}

impl fmt::Debug for Sampled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sampled")
    }
}

impl Collector for Sampled {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let statements = ConstCounter::new(self.statements.get());
        let descriptor = encoder.encode_descriptor(
            "agentdesk_sql_statements",
            "SQL statements sent to the database",
            None,
            statements.metric_type(),
        )?;
        statements.encode(descriptor)?;
        let queue = ConstGauge::new(self.hasher.queue_depth() as i64);
        let descriptor = encoder.encode_descriptor(
            "agentdesk_password_hashing_queue",
            "Password hashes running or waiting for a turn",
            None,
            queue.metric_type(),
        )?;
        queue.encode(descriptor)?;
        let hashes = ConstCounter::new(self.hasher.computed());
        let descriptor = encoder.encode_descriptor(
            "agentdesk_password_hashes",
            "Password hashes and verifications computed (argon2id)",
            None,
            hashes.metric_type(),
        )?;
        hashes.encode(descriptor)?;
        let mut descriptor = encoder.encode_descriptor(
            "agentdesk_event_listeners",
            "Receivers of each local event feed: live subscriptions (one per shared execution) and sockets' session watches",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (feed, count) in (self.listeners)() {
            ConstGauge::new(count as i64).encode(descriptor.encode_family(&[("feed", feed)])?)?;
        }
        Ok(())
    }
}
