//! The cluster event bus: facts one instance commits that every instance's subscribers must
//! hear. The bus carries events it does not know: each capability declares its kinds of
//! event (`Event`), what its local subscribers receive for one (`Notice`) and where that goes
//! (`Routed`); `app::event_kinds` registers them, so adding a kind touches its capability and
//! that one list. Events carry ids and status only (a PostgreSQL NOTIFY payload is limited to
//! 8 KB); each subscriber resolves the records it wants itself.
//!
//! Two transports behind one type, chosen from the database at start-up (see `Transport`):
//! - in-process (SQLite, one process): events are handed to local subscribers right after
//!   the writing transaction commits;
//! - PostgreSQL: `pg_notify` inside the writing transaction, so it is delivered at commit and
//!   in commit order; a dedicated listener connection receives every instance's events (this
//!   one's included) and hands them to local subscribers.
//!
//! Local subscribers read bounded broadcast channels (`channel`), one per feed and route (an
//! organization, or one agent of it; see `routes`): an event wakes only the subscriptions of
//! its organization, or of its agent, and a burst in one organization fills only its own
//! buffers. A receiver that falls behind gets `RecvError::Lagged`; the listener sends
//! `Delivery::Resync` to every route when notifications may have been lost. Both mean the
//! same to a subscriber: re-read the state from the database.

mod channel;
mod event;
mod hub;
mod postgres;
mod routes;

use std::sync::Arc;

use sea_orm::{DatabaseConnection, DatabaseTransaction, DbBackend, DbErr};
use tokio::{
    sync::{Mutex, MutexGuard},
    task::JoinHandle,
};

use self::hub::Hub;
pub use self::{
    channel::{RecvError, TryRecvError},
    event::{Event, Notice, Observer},
    hub::Kinds,
    routes::{Buffers, Delivery, Mark, Route, Routed, Subscription},
};

use crate::db;

/// Agents one event may name, keeping each NOTIFY payload well under 8 KB (ids are at most
/// 20 characters): events about more are split.
pub const AGENTS_PER_EVENT: usize = 256;

/// Why a live stream of events stopped: it missed some (its subscriber fell more than the
/// buffer behind, or notifications may have been lost with a PostgreSQL connection) and
/// has no state to catch up from, or the database failed.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("events were missed")]
    Missed,
    #[error(transparent)]
    Database(#[from] DbErr),
}

/// How events reach every instance. The seam where another broker would plug in: its
/// publication must commit with the write (here `pg_notify` does, inside the transaction; a
/// broker outside the database would need an outbox table written in the transaction and
/// relayed after commit), and its receiver hands payloads to `Hub::receive`, calling
/// `Hub::resync` whenever some may have been lost.
enum Transport {
    /// Held from the start of a writing transaction until its events are delivered, so local
    /// delivery order is commit order (SQLite serialises writers anyway).
    InProcess {
        order: Mutex<()>,
    },
    Postgres {
        listener: JoinHandle<()>,
    },
}

struct Inner {
    transport: Transport,
    hub: Arc<Hub>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Transport::Postgres { listener } = &self.transport {
            listener.abort();
        }
    }
}

#[derive(Clone)]
pub struct EventBus(Arc<Inner>);

impl EventBus {
    /// The bus for this database, carrying `kinds`: LISTEN/NOTIFY on PostgreSQL (on its own
    /// connection to `database_url`, listening before this returns), in-process otherwise.
    pub async fn start(db: &DatabaseConnection, database_url: &str, kinds: Kinds) -> Result<Self, DbErr> {
        let hub = Arc::new(Hub::new(kinds));
        let transport = match db.get_database_backend() {
            DbBackend::Postgres => {
                Transport::Postgres { listener: postgres::listen(database_url, hub.clone()).await? }
            }
            _ => Transport::InProcess { order: Mutex::new(()) },
        };
        Ok(Self(Arc::new(Inner { transport, hub })))
    }

    /// Has `observer` told of every notice of its feed from now on; set once, before serving.
    pub fn observe<N: Notice>(&self, observer: Arc<dyn Observer<N>>) {
        self.0.hub.observe(observer);
    }

    /// The notices of one route from now on.
    pub fn subscribe<N: Notice>(&self, route: Route) -> Subscription<N> {
        self.0.hub.feed::<N>().subscribe(route)
    }

    /// Taken before reading a state that notices of `N` change, for `subscribe_since`.
    pub fn mark<N: Notice>(&self) -> Mark {
        self.0.hub.feed::<N>().mark()
    }

    /// The notices of one route, and whether one (of any route) was delivered since `mark`:
    /// then the caller must read its state again, as it may have missed its own.
    pub fn subscribe_since<N: Notice>(&self, route: Route, mark: Mark) -> (Subscription<N>, bool) {
        self.0.hub.feed::<N>().subscribe_since(route, mark)
    }

    /// How many receivers each feed has now, over all routes: a subscription counts from the
    /// moment it can no longer miss an event, which is what a client (or a test) waiting for
    /// it to be live needs to know. Shared executions hold one receiver for all their sockets.
    pub fn listeners(&self) -> Vec<(&'static str, usize)> {
        self.0.hub.listeners()
    }

    /// Begins a write transaction whose published events are delivered when it commits.
    pub async fn begin(&self, db: &DatabaseConnection) -> Result<EventTx<'_>, DbErr> {
        let order = match &self.0.transport {
            Transport::InProcess { order } => Some(order.lock().await),
            Transport::Postgres { .. } => None,
        };
        let tx = db::begin_write(db).await?;
        Ok(EventTx { tx, bus: self, pending: Vec::new(), _order: order })
    }

    /// Publishes events about writes already committed (outside any transaction).
    pub async fn publish<E: Event>(&self, db: &DatabaseConnection, events: Vec<E>) -> Result<(), DbErr> {
        let hub = &self.0.hub;
        match &self.0.transport {
            Transport::InProcess { .. } => events.into_iter().for_each(|event| hub.deliver(event)),
            Transport::Postgres { .. } => {
                postgres::notify(db, &events).await?;
                events.iter().for_each(|event| hub.observe_published(event));
            }
        }
        Ok(())
    }
}

/// An event published in a transaction not yet committed, whatever its kind.
trait Pending: Send {
    fn deliver(self: Box<Self>, hub: &Hub);
    fn observe_published(&self, hub: &Hub);
}

impl<E: Event> Pending for E {
    fn deliver(self: Box<Self>, hub: &Hub) {
        hub.deliver(*self);
    }

    fn observe_published(&self, hub: &Hub) {
        hub.observe_published(self);
    }
}

/// A write transaction that carries events: use it as a connection (it derefs to the
/// transaction), `publish` what it changed, then `commit`. Dropped without commit, it rolls
/// back and its events vanish with it.
pub struct EventTx<'a> {
    tx: DatabaseTransaction,
    bus: &'a EventBus,
    /// Delivered after commit in-process; on PostgreSQL, shown to the observers then.
    pending: Vec<Box<dyn Pending>>,
    _order: Option<MutexGuard<'a, ()>>,
}

impl std::ops::Deref for EventTx<'_> {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &DatabaseTransaction {
        &self.tx
    }
}

impl EventTx<'_> {
    pub async fn publish<E: Event>(&mut self, event: E) -> Result<(), DbErr> {
        self.publish_all(vec![event]).await
    }

    /// Publishes every event of `events` in the transaction (one statement on PostgreSQL).
    pub async fn publish_all<E: Event>(&mut self, events: Vec<E>) -> Result<(), DbErr> {
        if let Transport::Postgres { .. } = &self.bus.0.transport {
            postgres::notify(&self.tx, &events).await?;
        }
        self.pending.extend(events.into_iter().map(|event| Box::new(event) as Box<dyn Pending>));
        Ok(())
    }

    pub async fn commit(self) -> Result<(), DbErr> {
        self.tx.commit().await?;
        let hub = &self.bus.0.hub;
        match &self.bus.0.transport {
            Transport::InProcess { .. } => self.pending.into_iter().for_each(|event| event.deliver(hub)),
            Transport::Postgres { .. } => self.pending.iter().for_each(|event| event.observe_published(hub)),
        }
        Ok(())
    }
}
