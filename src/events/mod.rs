//! The cluster event bus: facts one instance commits that every instance's subscribers must
//! hear. Events carry ids and status only (a PostgreSQL NOTIFY payload is limited to 8 KB);
//! each subscriber resolves the records it wants itself.
//!
//! Two transports behind one type, chosen from the database at start-up:
//! - in-process (SQLite, one process): events are handed to local subscribers right after
//!   the writing transaction commits;
//! - PostgreSQL: `pg_notify` inside the writing transaction, so it is delivered at commit and
//!   in commit order; a dedicated listener connection receives every instance's events (this
//!   one's included) and hands them to local subscribers.
//!
//! Local subscribers read bounded `broadcast` channels, one per kind of event and route (an
//! organization, or one agent of it; see `routes`): an event wakes only the subscriptions of
//! its organization, or of its agent, and a burst in one organization fills only its own
//! buffers. A receiver that falls behind gets `RecvError::Lagged`; the listener sends
//! `Delivery::Resync` to every route when notifications may have been lost. Both mean the
//! same to a subscriber: re-read the state from the database.

mod postgres;
mod routes;

use std::{
    iter,
    sync::{Arc, OnceLock},
};

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, DatabaseTransaction, DbBackend, DbErr};
use serde::{Deserialize, Serialize};
use tokio::{
    sync::{Mutex, MutexGuard, OnceCell},
    task::JoinHandle,
};

use self::routes::{Buffers, Feed, Routed};
pub use self::routes::{Delivery, Mark, Route, Subscription};

use crate::{
    db::{
        self,
        entities::{agent, conversation},
    },
    directory::model::AgentRecord,
    presence::model::{Presence, PresenceReason},
};

/// Events of one organization waiting for its slowest local subscriber, per kind. Memory is
/// per organization with subscribers on this instance (one ring), not per subscriber.
const ORGANIZATION_BUFFER: usize = 1024;

/// The directory's events name up to 256 agents each: this many hold a change of every agent
/// of the largest organization, at a quarter of the memory.
const DIRECTORY_BUFFER: usize = 256;

/// One agent's own conversations changing at once (a burst is one agent's whole load).
const AGENT_CONVERSATIONS_BUFFER: usize = 64;

/// One agent's session notices: a few at once, and a subscriber that falls behind only
/// checks its session again. Every signed-in agent with a socket holds one such ring.
const AGENT_SESSIONS_BUFFER: usize = 16;

/// Agents named in one `SessionsRevoked`, keeping each NOTIFY payload well under 8 KB
/// (ids are at most 20 characters).
const AGENTS_PER_REVOCATION: usize = 256;

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

/// Publishes every event of `events` in the transaction (one statement on PostgreSQL).
pub async fn publish_all(tx: &mut EventTx<'_>, events: Vec<ClusterEvent>) -> Result<(), DbErr> {
    if let Transport::Postgres { .. } = &tx.bus.0.transport {
        postgres::notify(&tx.tx, &events).await?;
    }
    tx.pending.extend(events);
    Ok(())
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ClusterEvent {
    PresenceChanged(PresenceChange),
    SessionsRevoked(SessionsRevoked),
    ViewersChanged(ViewersChanged),
    DirectoryChanged(DirectoryChange),
    ConversationChanged(ConversationChange),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationChangeKind {
    Assigned,
    Closed,
    /// Taken back from the agent (disabled or deleted) and queued again.
    Unassigned,
}

/// A conversation given to, closed by, or taken back from an agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationChange {
    pub organization_id: i64,
    pub conversation_id: i64,
    /// The agent concerned; None when a waiting conversation was closed.
    pub agent_id: Option<i64>,
    #[serde(rename = "change")]
    pub kind: ConversationChangeKind,
}

/// A conversation change as this instance received it: the conversation is read at most
/// once per instance and event.
pub struct ConversationNotice {
    pub change: ConversationChange,
    pub conversation: OnceCell<Option<conversation::Model>>,
}

/// To the organization's admins, and to the agent's own feed.
impl Routed for ConversationNotice {
    fn routes(&self) -> impl Iterator<Item = Route> + '_ {
        let ConversationChange { organization_id, agent_id, .. } = self.change;
        iter::once(Route::Organization(organization_id))
            .chain(agent_id.map(|agent_id| Route::Agent { organization_id, agent_id }))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DirectoryChangeKind {
    Created,
    Updated,
    Deleted,
}

/// Agents of one organization that were created, changed (including enabled or disabled)
/// or deleted, in one committed write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryChange {
    pub organization_id: i64,
    /// Not `kind` on the wire: that names the event itself.
    #[serde(rename = "change")]
    pub kind: DirectoryChangeKind,
    pub agent_ids: Vec<i64>,
}

impl DirectoryChange {
    /// The events announcing a change of these agents; split so every payload stays small.
    pub fn of_agents(
        organization_id: i64,
        kind: DirectoryChangeKind,
        agent_ids: &[i64],
    ) -> Vec<ClusterEvent> {
        agent_ids
            .chunks(AGENTS_PER_REVOCATION)
            .map(|chunk| {
                ClusterEvent::DirectoryChanged(Self { organization_id, kind, agent_ids: chunk.to_vec() })
            })
            .collect()
    }
}

/// A directory change as this instance received it, shared by all its local subscribers: the
/// agents' rows are read at most once per instance and event.
pub struct DirectoryNotice {
    pub change: DirectoryChange,
    pub agents: OnceCell<Vec<AgentRecord>>,
}

impl Routed for DirectoryNotice {
    fn routes(&self) -> impl Iterator<Item = Route> + '_ {
        iter::once(Route::Organization(self.change.organization_id))
    }
}

/// One real change of an agent's presence, as committed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceChange {
    pub organization_id: i64,
    pub agent_id: i64,
    #[serde(with = "presence_text")]
    pub status: Presence,
    #[serde(with = "presence_text")]
    pub previous: Presence,
    /// Why it changed; absent from events of instances older than this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<PresenceReason>,
    pub at: DateTime<Utc>,
}

/// Sessions of one organization that ended: every session of `agent_ids` except
/// `keep_session` (a password change keeps the caller's own), and the sessions in
/// `session_ids` (logout), which are those of `session_agent_ids`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionsRevoked {
    pub organization_id: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agent_ids: Vec<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_session: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub session_ids: Vec<i64>,
    /// Where the event goes; a field of its own (rather than `session_ids` as pairs) so that
    /// instances older than routing still read `session_ids`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub session_agent_ids: Vec<i64>,
}

impl SessionsRevoked {
    /// The events announcing that these agents' sessions ended, but `keep_session`; split so
    /// every payload stays small.
    pub fn of_agents(
        organization_id: i64,
        agent_ids: &[i64],
        keep_session: Option<i64>,
    ) -> Vec<ClusterEvent> {
        agent_ids
            .chunks(AGENTS_PER_REVOCATION)
            .map(|chunk| {
                ClusterEvent::SessionsRevoked(Self {
                    organization_id,
                    agent_ids: chunk.to_vec(),
                    keep_session,
                    session_ids: vec![],
                    session_agent_ids: vec![],
                })
            })
            .collect()
    }

    /// The session `session_id` of `agent_id` ended.
    pub fn of_session(organization_id: i64, agent_id: i64, session_id: i64) -> ClusterEvent {
        ClusterEvent::SessionsRevoked(Self {
            organization_id,
            agent_ids: vec![],
            keep_session: None,
            session_ids: vec![session_id],
            session_agent_ids: vec![agent_id],
        })
    }

    /// Whether the session `session_id` of `agent_id` is one of those that ended.
    pub fn ends(&self, agent_id: i64, session_id: i64) -> bool {
        self.session_ids.contains(&session_id)
            || (self.agent_ids.contains(&agent_id) && self.keep_session != Some(session_id))
    }
}

/// Agents whose permissions changed (role, phone-number permission, queues): their sessions
/// go on, but each open socket of theirs must read its viewer again, so that what it runs
/// from then on runs as the agent is now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewersChanged {
    pub organization_id: i64,
    pub agent_ids: Vec<i64>,
}

impl ViewersChanged {
    pub fn of_agent(organization_id: i64, agent_id: i64) -> ClusterEvent {
        ClusterEvent::ViewersChanged(Self { organization_id, agent_ids: vec![agent_id] })
    }
}

/// Told synchronously of every session notice as this instance's bus delivers it (before
/// any socket hears it), and of every publication of one by this instance as it commits: for
/// state that must not outlive a revocation on this instance, such as the session cache.
pub trait SessionObserver: Send + Sync {
    fn notice(&self, notice: &SessionNotice);
    /// Notices may have been lost; from now on none is.
    fn resync(&self);
    /// Notices may be being lost, until the next `resync`.
    fn unsure(&self);
}

/// What the open sockets of signed-in viewers watch for.
pub enum SessionNotice {
    Revoked(SessionsRevoked),
    ViewersChanged(ViewersChanged),
}

/// What a session notice means to one session.
#[derive(Debug, PartialEq, Eq)]
pub enum SessionEffect {
    Ended,
    ViewerChanged,
    Unaffected,
}

/// To the sockets of the agents concerned only.
impl Routed for SessionNotice {
    fn routes(&self) -> impl Iterator<Item = Route> + '_ {
        let (organization_id, agent_ids, session_agent_ids) = match self {
            SessionNotice::Revoked(revoked) => {
                (revoked.organization_id, &revoked.agent_ids, &revoked.session_agent_ids[..])
            }
            SessionNotice::ViewersChanged(changed) => (changed.organization_id, &changed.agent_ids, &[][..]),
        };
        agent_ids
            .iter()
            .chain(session_agent_ids)
            .map(move |&agent_id| Route::Agent { organization_id, agent_id })
    }
}

impl SessionNotice {
    fn of(event: &ClusterEvent) -> Option<Self> {
        match event {
            ClusterEvent::SessionsRevoked(revoked) => Some(SessionNotice::Revoked(revoked.clone())),
            ClusterEvent::ViewersChanged(changed) => Some(SessionNotice::ViewersChanged(changed.clone())),
            _ => None,
        }
    }

    pub fn effect_on(&self, agent_id: i64, session_id: i64) -> SessionEffect {
        match self {
            SessionNotice::Revoked(revoked) if revoked.ends(agent_id, session_id) => SessionEffect::Ended,
            SessionNotice::ViewersChanged(changed) if changed.agent_ids.contains(&agent_id) => {
                SessionEffect::ViewerChanged
            }
            _ => SessionEffect::Unaffected,
        }
    }
}

/// A presence change as this instance received it, shared by all its local subscribers: the
/// agent's row and queues are read at most once per instance and event, by the first
/// subscriber whose selection needs them (see `presence::service`).
pub struct PresenceNotice {
    pub change: PresenceChange,
    pub agent: OnceCell<Option<agent::AgentRow>>,
    pub queue_ids: OnceCell<Vec<i64>>,
}

impl PresenceNotice {
    pub fn new(change: PresenceChange) -> Self {
        Self { change, agent: OnceCell::new(), queue_ids: OnceCell::new() }
    }
}

impl Routed for PresenceNotice {
    fn routes(&self) -> impl Iterator<Item = Route> + '_ {
        iter::once(Route::Organization(self.change.organization_id))
    }
}

/// This instance's local fan-out.
struct Hub {
    presence: Feed<PresenceNotice>,
    sessions: Feed<SessionNotice>,
    directory: Feed<DirectoryNotice>,
    conversations: Feed<ConversationNotice>,
    observer: OnceLock<Arc<dyn SessionObserver>>,
}

impl Hub {
    fn new() -> Self {
        let organizations = |organization| Buffers { organization, agent: 1 };
        Self {
            // Organization-wide only: filters by agent are the subscribers' own.
            presence: Feed::new(organizations(ORGANIZATION_BUFFER)),
            sessions: Feed::new(Buffers { organization: 1, agent: AGENT_SESSIONS_BUFFER }),
            directory: Feed::new(organizations(DIRECTORY_BUFFER)),
            conversations: Feed::new(Buffers {
                organization: ORGANIZATION_BUFFER,
                agent: AGENT_CONVERSATIONS_BUFFER,
            }),
            observer: OnceLock::new(),
        }
    }

    fn observer(&self) -> Option<&dyn SessionObserver> {
        self.observer.get().map(|observer| &**observer)
    }

    /// Tells the observer of a session notice this instance published, without delivering
    /// it: on PostgreSQL its delivery comes later, through the listener, and the next request
    /// on this instance must not wait for it.
    fn observe_published(&self, events: &[ClusterEvent]) {
        let Some(observer) = self.observer() else { return };
        for event in events {
            if let Some(notice) = SessionNotice::of(event) {
                observer.notice(&notice);
            }
        }
    }

    fn deliver(&self, event: ClusterEvent) {
        match event {
            ClusterEvent::PresenceChanged(change) => self.presence.deliver(PresenceNotice::new(change)),
            ClusterEvent::SessionsRevoked(revoked) => self.deliver_session(SessionNotice::Revoked(revoked)),
            ClusterEvent::ViewersChanged(changed) => {
                self.deliver_session(SessionNotice::ViewersChanged(changed))
            }
            ClusterEvent::DirectoryChanged(change) => {
                self.directory.deliver(DirectoryNotice { change, agents: OnceCell::new() });
            }
            ClusterEvent::ConversationChanged(change) => {
                self.conversations.deliver(ConversationNotice { change, conversation: OnceCell::new() });
            }
        }
    }

    /// The observer first, so no request is served from what a socket already knows is gone.
    fn deliver_session(&self, notice: SessionNotice) {
        if let Some(observer) = self.observer() {
            observer.notice(&notice);
        }
        self.sessions.deliver(notice);
    }

    fn resync(&self) {
        if let Some(observer) = self.observer() {
            observer.resync();
        }
        self.presence.resync();
        self.sessions.resync();
        self.directory.resync();
        self.conversations.resync();
    }

    fn unsure(&self) {
        if let Some(observer) = self.observer() {
            observer.unsure();
        }
    }
}

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
    /// The bus for this database: LISTEN/NOTIFY on PostgreSQL (on its own connection to
    /// `database_url`, listening before this returns), in-process otherwise.
    pub async fn start(db: &DatabaseConnection, database_url: &str) -> Result<Self, DbErr> {
        let hub = Arc::new(Hub::new());
        let transport = match db.get_database_backend() {
            DbBackend::Postgres => {
                Transport::Postgres { listener: postgres::listen(database_url, hub.clone()).await? }
            }
            _ => Transport::InProcess { order: Mutex::new(()) },
        };
        Ok(Self(Arc::new(Inner { transport, hub })))
    }

    /// Has `observer` told of every session notice from now on; set once, before serving.
    pub fn observe_sessions(&self, observer: Arc<dyn SessionObserver>) {
        if self.0.hub.observer.set(observer).is_err() {
            tracing::error!("a second session observer was refused");
        }
    }

    /// The presence changes of `organization_id`.
    pub fn presence_feed(&self, organization_id: i64) -> Subscription<PresenceNotice> {
        self.0.hub.presence.subscribe(Route::Organization(organization_id))
    }

    /// Taken before a socket's token is checked, for `session_feed`.
    pub fn session_mark(&self) -> Mark {
        self.0.hub.sessions.mark()
    }

    /// The session notices of one agent, and whether one (of any agent) was delivered since
    /// `mark`: then the caller must check its session again, as it may have missed its own.
    pub fn session_feed(
        &self,
        organization_id: i64,
        agent_id: i64,
        mark: Mark,
    ) -> (Subscription<SessionNotice>, bool) {
        self.0.hub.sessions.subscribe_since(Route::Agent { organization_id, agent_id }, mark)
    }

    /// The directory changes of `organization_id`.
    pub fn directory_feed(&self, organization_id: i64) -> Subscription<DirectoryNotice> {
        self.0.hub.directory.subscribe(Route::Organization(organization_id))
    }

    /// Conversation changes: of an organization, or of one agent's conversations.
    pub fn conversation_feed(&self, route: Route) -> Subscription<ConversationNotice> {
        self.0.hub.conversations.subscribe(route)
    }

    /// How many receivers each feed has now, over all organizations: a subscription counts
    /// from the moment it can no longer miss an event, which is what a client (or a test)
    /// waiting for it to be live needs to know. Shared executions hold one receiver for all
    /// their sockets.
    pub fn listeners(&self) -> [(&'static str, usize); 4] {
        let hub = &self.0.hub;
        [
            ("presence", hub.presence.receivers()),
            ("sessions", hub.sessions.receivers()),
            ("directory", hub.directory.receivers()),
            ("conversations", hub.conversations.receivers()),
        ]
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
    pub async fn publish(&self, db: &DatabaseConnection, events: Vec<ClusterEvent>) -> Result<(), DbErr> {
        match &self.0.transport {
            Transport::InProcess { .. } => events.into_iter().for_each(|event| self.0.hub.deliver(event)),
            Transport::Postgres { .. } => {
                postgres::notify(db, &events).await?;
                self.0.hub.observe_published(&events);
            }
        }
        Ok(())
    }
}

/// A write transaction that carries events: use it as a connection (it derefs to the
/// transaction), `publish` what it changed, then `commit`. Dropped without commit, it rolls
/// back and its events vanish with it.
pub struct EventTx<'a> {
    tx: DatabaseTransaction,
    bus: &'a EventBus,
    /// Delivered after commit in-process; on PostgreSQL, shown to the session observer then.
    pending: Vec<ClusterEvent>,
    _order: Option<MutexGuard<'a, ()>>,
}

impl std::ops::Deref for EventTx<'_> {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &DatabaseTransaction {
        &self.tx
    }
}

impl EventTx<'_> {
    pub async fn publish(&mut self, event: ClusterEvent) -> Result<(), DbErr> {
        publish_all(self, vec![event]).await
    }

    pub async fn commit(self) -> Result<(), DbErr> {
        self.tx.commit().await?;
        let hub = &self.bus.0.hub;
        match &self.bus.0.transport {
            Transport::InProcess { .. } => self.pending.into_iter().for_each(|event| hub.deliver(event)),
            Transport::Postgres { .. } => hub.observe_published(&self.pending),
        }
        Ok(())
    }
}

/// Presence in its database spelling (`ONLINE`/`OFFLINE`), the same on the wire.
mod presence_text {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    use crate::presence::model::Presence;

    pub fn serialize<S: Serializer>(presence: &Presence, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(presence.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Presence, D::Error> {
        let text = String::deserialize(deserializer)?;
        Presence::parse(&text).ok_or_else(|| D::Error::custom(format!("unknown presence {text}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_changes_survive_the_wire() {
        let events = DirectoryChange::of_agents(3, DirectoryChangeKind::Deleted, &[4, 5]);
        let text = serde_json::to_string(&events[0]).unwrap();
        assert_eq!(serde_json::from_str::<ClusterEvent>(&text).unwrap(), events[0], "{text}");
    }

    #[test]
    fn events_round_trip_compactly() {
        let change = ClusterEvent::PresenceChanged(PresenceChange {
            organization_id: 1,
            agent_id: 2,
            status: Presence::Online,
            previous: Presence::Offline,
            reason: Some(PresenceReason::TtlExpired),
            at: Utc::now(),
        });
        let text = serde_json::to_string(&change).unwrap();
        assert!(text.contains("\"ONLINE\""), "{text}");
        assert!(text.contains("\"TTL_EXPIRED\""), "{text}");
        assert_eq!(serde_json::from_str::<ClusterEvent>(&text).unwrap(), change);
    }

    #[test]
    fn the_largest_revocation_fits_a_notify_payload() {
        let ids: Vec<i64> = (0..1000).map(|_| i64::MAX).collect();
        let events = SessionsRevoked::of_agents(i64::MAX, &ids, Some(i64::MAX));
        assert_eq!(events.len(), 4);
        for event in events {
            assert!(serde_json::to_string(&event).unwrap().len() < 7000);
        }
    }

    #[test]
    fn revocation_keeps_the_named_session() {
        let revoked = SessionsRevoked {
            organization_id: 1,
            agent_ids: vec![7],
            keep_session: Some(70),
            session_ids: vec![90],
            session_agent_ids: vec![8],
        };
        assert!(revoked.ends(7, 71));
        assert!(!revoked.ends(7, 70));
        assert!(revoked.ends(8, 90));
        assert!(!revoked.ends(8, 91));
    }
}
