//! Start-up: build the state (database, hasher, schema), the router, and serve until asked to
//! stop. Tests use `start` with a listener on a free port; `main` uses `run`.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use sea_orm::{DbBackend, DbErr};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

use crate::{
    api::{self, AppSchema},
    auth::{
        LoginThrottle, PasswordHasher,
        cache::SessionCache,
        events::{SessionNotice, SessionsRevoked, ViewersChanged},
        model::SessionLifetime,
        service as auth, sessions,
    },
    config::Config,
    db,
    directory::{
        error::DirectoryError,
        events::DirectoryChange,
        service::{self as directory, Bootstrapped},
    },
    events::{EventBus, Kinds},
    http,
    presence::{events::PresenceChange, model::Timings, service as presence},
    routing::{events::ConversationChange, service as routing},
    state::{AppState, StopSignal},
    telemetry::metrics::Metrics,
};

/// Allowances are whole again at most a minute after their last attempt (the quotas are
/// per minute), so a row is kept at most about two.
const ALLOWANCE_PRUNE_INTERVAL: Duration = Duration::from_secs(60);
/// Expired sessions are refused at once; their rows only need to go eventually.
const SESSION_PRUNE_INTERVAL: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("database: {0}")]
    Database(#[from] DbErr),
    #[error("first-start set-up: {0}")]
    Bootstrap(#[from] DirectoryError),
    #[error("listening socket: {0}")]
    Io(#[from] std::io::Error),
}

/// Every kind of event the instances exchange. A new kind is declared in its capability's
/// `events.rs` and listed here.
pub fn event_kinds() -> Kinds {
    Kinds::default()
        .with::<PresenceChange>()
        .with::<SessionsRevoked>()
        .with::<ViewersChanged>()
        .with::<DirectoryChange>()
        .with::<ConversationChange>()
}

/// Connects, applies migrations and, on an empty database, creates the demo organization.
pub async fn prepare(config: Config) -> Result<(AppState, Option<Bootstrapped>), StartupError> {
    let (db, statements) = db::connect(&config.database_url, config.database_pool_size).await?;
    db::migrate(&db).await?;
    let hasher = PasswordHasher::new(config.hashing_concurrency);
    let bootstrapped = directory::bootstrap_if_empty(&db, &hasher, config.bootstrap_password.clone()).await?;
    let bus = EventBus::start(&db, &config.database_url, event_kinds()).await?;
    let session_cache = Arc::new(SessionCache::default());
    bus.observe::<SessionNotice>(session_cache.clone());
    let instance = presence::Instance::generate();
    // Before registering, so this instance does not count as "another one alive".
    presence::recover_after_restart(&db, &bus, &instance.id, Timings::from_config(&config)).await?;
    presence::register_instance(&db, &instance.id).await?;
    let heartbeat_db = match db.get_database_backend() {
        DbBackend::Postgres => db::connect(&config.database_url, 1).await?.0,
        _ => db.clone(),
    };
    let listening = bus.clone();
    let metrics =
        Arc::new(Metrics::new(statements.clone(), hasher.clone(), Box::new(move || listening.listeners())));
    let login_throttle =
        Arc::new(LoginThrottle::new(config.login_attempts_per_account, config.login_attempts_per_address));
    let state = AppState {
        db,
        hasher,
        login_throttle,
        statements,
        metrics,
        config: Arc::new(config),
        bus,
        sessions: session_cache,
        instance,
        heartbeat_db,
        stopping: StopSignal::default(),
    };
    Ok((state, bootstrapped))
}

pub fn schema(state: &AppState) -> AppSchema {
    api::build(&state.config, Some(state.clone()))
}

/// A server running in the background; dropping the handle does not stop it, `stop` does.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub state: AppState,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
    /// The background jobs: the presence and routing sweepers, and the pruners of presence
    /// history and of sign-in allowances.
    background_jobs: [JoinHandle<()>; 5],
}

impl RunningServer {
    pub async fn stop(self) -> std::io::Result<()> {
        self.state.stopping.raise();
        let _ = self.shutdown.send(());
        let served = self.task.await.unwrap_or_else(|join| Err(std::io::Error::other(join)));
        self.background_jobs.iter().for_each(JoinHandle::abort);
        // Best effort: if it fails, other instances notice the missing heartbeat instead.
        let timings = Timings::from_config(&self.state.config);
        if let Err(error) = presence::retire_instance(&self.state.db, &self.state.instance.id, timings).await
        {
            tracing::warn!(%error, "could not release this instance's sockets");
        }
        served
    }
}

pub async fn start(state: AppState, listener: TcpListener) -> Result<RunningServer, StartupError> {
    let addr = listener.local_addr()?;
    let router = http::router(state.clone(), schema(&state));
    let background_jobs = [
        presence::spawn_sweeper(
            state.db.clone(),
            state.heartbeat_db.clone(),
            state.bus.clone(),
            state.instance.clone(),
            Timings::from_config(&state.config),
        ),
        presence::spawn_history_pruner(state.db.clone(), state.config.presence_history_retention),
        routing::spawn_sweeper(state.db.clone(), state.bus.clone(), state.config.routing_sweep_interval),
        auth::spawn_allowance_pruner(state.db.clone(), ALLOWANCE_PRUNE_INTERVAL),
        sessions::spawn_pruner(
            state.db.clone(),
            SessionLifetime::from_config(&state.config),
            SESSION_PRUNE_INTERVAL,
        ),
    ];
    let (shutdown, stopped) = oneshot::channel::<()>();
    let header_read_timeout = state.config.header_read_timeout;
    let task = tokio::spawn(http::serve(listener, router, header_read_timeout, async move {
        let _ = stopped.await;
    }));
    Ok(RunningServer { addr, state, shutdown, task, background_jobs })
}

/// Serves on the configured address until Ctrl-C or SIGTERM, then lets requests in flight
/// finish, for at most the configured shutdown timeout.
pub async fn run(config: Config) -> Result<(), StartupError> {
    let listen = config.listen;
    let (state, bootstrapped) = prepare(config).await?;
    if let Some(report) = bootstrapped {
        announce_bootstrap(&report);
    }
    let bound = state.config.shutdown_timeout;
    let stop_requested = shutdown_signal()?;
    let listener = TcpListener::bind(listen).await?;
    let server = start(state, listener).await?;
    tracing::info!(address = %server.addr, "agentdesk listening; GraphiQL at http://{}/", server.addr);
    stop_requested.await;
    tracing::info!(?bound, "shutting down: accepting no more connections, finishing requests in flight");
    // A request that does not finish in time (a slow client, a stuck query) must not keep the
    // process from stopping: past the bound it is dropped with the runtime.
    match tokio::time::timeout(bound, server.stop()).await {
        Ok(stopped) => Ok(stopped?),
        Err(_) => {
            tracing::warn!(?bound, "requests still in flight after the shutdown timeout; stopping anyway");
            Ok(())
        }
    }
}

fn announce_bootstrap(report: &Bootstrapped) {
    // Printed, not logged: the generated password must reach the person at the console once,
    // and must not end up in a log pipeline.
    println!("Created organization `{}` with ADMIN `{}`.", report.organization_slug, report.admin_username);
    match &report.generated_password {
        Some(password) => println!("Its password (shown only this once): {password}"),
        None => println!("Its password is the one in AGENTDESK_BOOTSTRAP_PASSWORD."),
    }
}

/// Resolves on Ctrl-C or SIGTERM. The handlers are installed when this is called, not when
/// it is first awaited: an orchestrator may stop the instance the moment it answers, and a
/// signal arriving before its handler would kill the process without draining anything.
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
