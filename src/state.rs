//! What every request handler, resolver and background job shares, built once at start-up
//! (`app::prepare`). Kept apart from `app` so that the layers below it can name it without
//! depending on the start-up code above them.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::{
    auth::{LoginThrottle, PasswordHasher, cache::SessionCache},
    config::Config,
    db::StatementCounter,
    events::EventBus,
    presence::service::Instance,
    telemetry::metrics::Metrics,
};

/// What every request handler and resolver shares.
#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub hasher: PasswordHasher,
    /// Sign-in attempts per account and address, on this instance.
    pub login_throttle: Arc<LoginThrottle>,
    pub statements: StatementCounter,
    pub metrics: Arc<Metrics>,
    pub config: Arc<Config>,
    /// Events every instance must hear: presence changes, revoked sessions.
    pub bus: EventBus,
    /// Sessions checked lately, kept true by the bus's session notices.
    pub sessions: Arc<SessionCache>,
    /// This process among the instances sharing the database, and the sockets it holds.
    pub instance: Instance,
    /// Where this instance heart-beats: on PostgreSQL a connection of its own, so that a pool
    /// busy for longer than the instance timeout does not make the other instances take this
    /// one for gone and release its agents' sockets. On SQLite, one process, the pool.
    pub heartbeat_db: DatabaseConnection,
    /// Raised when the server begins to stop, so WebSockets can close with a proper frame.
    pub stopping: StopSignal,
}

/// Raised once, when the server begins to stop. HTTP requests are drained by the server
/// itself; upgraded WebSocket connections are not, so they watch this to say goodbye.
#[derive(Clone, Default)]
pub struct StopSignal(Arc<tokio::sync::watch::Sender<bool>>);

impl StopSignal {
    pub fn raise(&self) {
        self.0.send_replace(true);
    }

    /// Resolves once the signal is raised (at once if it already was).
    pub async fn raised(&self) {
        let mut receiver = self.0.subscribe();
        let _ = receiver.wait_for(|raised| *raised).await;
    }
}
