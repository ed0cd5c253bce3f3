//! Presence rules. A change is one conditional UPDATE and one event published in the same
//! transaction, so every real change is announced exactly once and no non-change is.
//! Lapses are decided by stored state (deadlines, open sockets, instance heartbeats) that a
//! sweep on every instance applies, so a lapse neither fires twice nor is lost when an
//! instance stops.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::Arc,
    time::Duration,
};

use chrono::{DateTime, SubsecRound, Utc};
use futures_util::Stream;
use sea_orm::{ActiveValue::Set, DatabaseConnection, DbBackend, DbErr};
use tokio::{
    sync::broadcast::{
        Receiver,
        error::{RecvError, TryRecvError},
    },
    task::JoinHandle,
};

use super::{
    model::{Filter, InstanceId, Timings, other},
    store,
};
use crate::{
    auth::Viewer,
    db::{
        self,
        entities::{
            agent::{self, Presence, PresenceReason},
            presence_history,
        },
        page::{Page, PageRequest},
    },
    events::{ClusterEvent, Delivery, EventBus, EventTx, PresenceChange, PresenceNotice, publish_all},
    jobs::{self, FirstRun},
    routing::service as routing,
};

/// The most agents a `presenceChanged` filter may name, as for every bulk id list.
pub const MAX_FILTER_IDS: usize = 1000;

/// Presence history is pruned at most this often: retention is counted in days, so a
/// few minutes' slack costs nothing.
const PRUNE_EVERY: Duration = Duration::from_secs(10 * 60);

#[derive(Debug, thiserror::Error)]
pub enum PresenceError {
    #[error("There is no queue with this ID.")]
    QueueNotFound,
    #[error("At most {MAX_FILTER_IDS} agent IDs may be given.")]
    TooManyIds,
    /// The agent was disabled or deleted after its token was checked.
    #[error("This agent can no longer sign in.")]
    AgentUnavailable,
    /// Another agent's history, asked by an AGENT.
    #[error("forbidden")]
    Forbidden,
    #[error(transparent)]
    Database(#[from] DbErr),
}

/// Timestamps at the precision PostgreSQL keeps, so an event's `at` equals what was stored.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// `now` plus a configured duration; an absurdly long one means "never".
fn after(now: DateTime<Utc>, duration: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(duration)
        .ok()
        .and_then(|duration| now.checked_add_signed(duration))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn before(now: DateTime<Utc>, duration: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(duration)
        .ok()
        .and_then(|duration| now.checked_sub_signed(duration))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// An agent that just changed to `status`, for `reason`.
fn changed(
    organization_id: i64,
    agent_id: i64,
    status: Presence,
    reason: Option<PresenceReason>,
    at: DateTime<Utc>,
) -> PresenceChange {
    PresenceChange { organization_id, agent_id, status, previous: other(status), reason, at }
}

/// Records and announces changes in the transaction that made them: one history row and one
/// event each, written set-based whatever their number. `agents` are the rows as updated.
async fn announce(tx: &mut EventTx<'_>, agents: Vec<agent::Model>, at: DateTime<Utc>) -> Result<(), DbErr> {
    let mut history = Vec::with_capacity(agents.len());
    let mut events = Vec::with_capacity(agents.len());
    for agent in agents {
        // Every flip sets the reason in its own UPDATE, so the fallback is never taken.
        let reason = agent.presence_reason.unwrap_or(PresenceReason::Reported);
        history.push(presence_history::ActiveModel {
            organization_id: Set(agent.organization_id),
            agent_id: Set(agent.id),
            status: Set(agent.presence),
            reason: Set(reason),
            at: Set(at),
            ..Default::default()
        });
        events.push(ClusterEvent::PresenceChanged(changed(
            agent.organization_id,
            agent.id,
            agent.presence,
            Some(reason),
            at,
        )));
    }
    store::record_history(&**tx, history).await?;
    publish_all(tx, events).await
}

/// `reportPresence`: the viewer's workspace says ONLINE (which also renews the TTL) or
/// OFFLINE. Returns the agent as it now is.
pub async fn report(
    db: &DatabaseConnection,
    bus: &EventBus,
    timings: Timings,
    viewer: &Viewer,
    status: Presence,
) -> Result<agent::Model, PresenceError> {
    let (organization_id, agent_id) = (viewer.organization_id, viewer.agent_id);
    let now = now();
    let mut tx = bus.begin(db).await?;
    // An agent coming online may take waiting conversations, once this commits.
    let mut came_online = false;
    match status {
        Presence::Online => {
            let expires_at = after(now, timings.ttl);
            // Each statement sees the latest commit: if a sweep flips the agent OFFLINE
            // between the two, go round again. Twice failing both means the agent may not
            // be ONLINE at all (disabled or deleted).
            let mut attempts = 0;
            loop {
                if let Some(agent) =
                    store::go_online(&*tx, organization_id, agent_id, now, expires_at).await?
                {
                    came_online = true;
                    announce(&mut tx, vec![agent], now).await?;
                    break;
                }
                if store::renew(&*tx, organization_id, agent_id, expires_at).await? {
                    break;
                }
                attempts += 1;
                if attempts == 2 {
                    return Err(PresenceError::AgentUnavailable);
                }
            }
        }
        Presence::Offline => {
            let flipped =
                store::go_offline(&*tx, organization_id, &[agent_id], now, PresenceReason::Reported).await?;
            announce(&mut tx, flipped, now).await?;
        }
    }
    tx.commit().await?;
    if came_online {
        routing::agent_available(db, bus, organization_id, agent_id).await?;
    }
    let agent = store::find_agent(db, organization_id, agent_id).await?;
    agent.filter(|agent| agent.deleted_at.is_none()).ok_or(PresenceError::AgentUnavailable)
}

/// Makes these agents OFFLINE inside the caller's transaction (disabling or deleting them:
/// `reason` says which), with one event and history row each that was not OFFLINE already;
/// events are delivered when it commits.
pub async fn take_offline(
    tx: &mut EventTx<'_>,
    organization_id: i64,
    agent_ids: &[i64],
    reason: PresenceReason,
) -> Result<(), DbErr> {
    let now = now();
    let flipped = store::go_offline(&**tx, organization_id, agent_ids, now, reason).await?;
    announce(tx, flipped, now).await
}

/// At start-up, before this instance registers: when no other instance is alive, nobody
/// holds any socket or renews any presence, so agents left ONLINE by the previous run are
/// taken OFFLINE with `SERVER_RESTART` (rather than lingering until their TTL). With another
/// instance alive (a rolling restart on PostgreSQL) their presence is that instance's to keep
/// or lapse, so nothing changes. SQLite is one process by design: there is never another.
/// A crashed instance still counts as alive until its heartbeat is older than the instance
/// timeout; agents it left behind then lapse by TTL or socket grace as usual.
pub async fn recover_after_restart(
    db: &DatabaseConnection,
    bus: &EventBus,
    instance: &InstanceId,
    timings: Timings,
) -> Result<(), DbErr> {
    let now = now();
    let single_process = db.get_database_backend() == DbBackend::Sqlite;
    let mut tx = bus.begin(db).await?;
    if !single_process
        && store::another_instance_alive(&*tx, instance.as_str(), before(now, timings.instance_timeout()))
            .await?
    {
        return Ok(());
    }
    let reset = store::reset_all(&*tx, now).await?;
    if !reset.is_empty() {
        tracing::info!(agents = reset.len(), "presence left ONLINE by the previous run reset to OFFLINE");
    }
    announce(&mut tx, reset, now).await?;
    tx.commit().await
}

/// One page of an agent's presence history, newest first: ADMINs see anyone's, an AGENT
/// its own. None when there is no such agent.
pub async fn history(
    db: &DatabaseConnection,
    viewer: &Viewer,
    agent_id: i64,
    since: Option<DateTime<Utc>>,
    page: &PageRequest,
) -> Result<Page<presence_history::Model>, PresenceError> {
    if !viewer.is_admin() && viewer.agent_id != agent_id {
        return Err(PresenceError::Forbidden);
    }
    Ok(store::history(db, viewer.organization_id, agent_id, since, page).await?)
}

/// Registers this instance before it serves anything, so no other instance's sweep takes its
/// first sockets for orphans.
pub async fn register_instance(db: &DatabaseConnection, instance: &InstanceId) -> Result<(), DbErr> {
    store::heartbeat(db, instance.as_str(), now()).await
}

/// On a clean stop: this instance's sockets stop counting now rather than after the
/// instance timeout; their agents lapse after the grace unless they reconnect elsewhere.
pub async fn retire_instance(
    db: &DatabaseConnection,
    instance: &InstanceId,
    timings: Timings,
) -> Result<(), DbErr> {
    let now = now();
    let tx = db::begin_write(db).await?;
    store::release_instances(&tx, before(now, timings.instance_timeout()), Some(instance.as_str()), now)
        .await?;
    tx.commit().await
}

/// One sweep: heartbeat, forget the sockets of instances that stopped heart-beating, flip
/// lapsed agents OFFLINE.
pub async fn sweep(
    db: &DatabaseConnection,
    bus: &EventBus,
    instance: &InstanceId,
    timings: Timings,
) -> Result<(), DbErr> {
    let now = now();
    store::heartbeat(db, instance.as_str(), now).await?;
    let tx = db::begin_write(db).await?;
    store::release_instances(&tx, before(now, timings.instance_timeout()), None, now).await?;
    tx.commit().await?;

    let mut tx = bus.begin(db).await?;
    let lapsed = store::lapse(&*tx, now).await?;
    announce(&mut tx, lapsed, now).await?;
    tx.commit().await
}

/// Forgets presence history older than the retention.
async fn prune(db: &DatabaseConnection, retention: Duration) -> Result<(), DbErr> {
    let pruned = store::prune_history(db, before(now(), retention)).await?;
    if pruned > 0 {
        tracing::debug!(pruned, "presence history past its retention removed");
    }
    Ok(())
}

/// Sweeps every `timings.sweep_interval` until aborted.
pub fn spawn_sweeper(
    db: DatabaseConnection,
    bus: EventBus,
    instance: InstanceId,
    timings: Timings,
) -> JoinHandle<()> {
    jobs::spawn_every(timings.sweep_interval, FirstRun::AtOnce, "presence sweep", move || {
        let (db, bus, instance) = (db.clone(), bus.clone(), instance.clone());
        async move { sweep(&db, &bus, &instance, timings).await }
    })
}

/// Prunes the history every `PRUNE_EVERY` (or every retention, when shorter) until aborted:
/// one DELETE, not one per sweep.
pub fn spawn_history_pruner(db: DatabaseConnection, retention: Duration) -> JoinHandle<()> {
    jobs::spawn_every(PRUNE_EVERY.min(retention), FirstRun::AtOnce, "pruning presence history", move || {
        let db = db.clone();
        async move { prune(&db, retention).await }
    })
}

/// A signed-in WebSocket connection, counted for the last-socket lapse.
pub struct OpenSocket {
    id: i64,
    agent_id: i64,
}

pub async fn socket_opened(
    db: &DatabaseConnection,
    instance: &InstanceId,
    viewer: &Viewer,
) -> Result<OpenSocket, DbErr> {
    let tx = db::begin_write(db).await?;
    let id = store::open_socket(&tx, instance.as_str(), viewer.agent_id, now()).await?;
    tx.commit().await?;
    Ok(OpenSocket { id, agent_id: viewer.agent_id })
}

/// When it was the agent's last socket anywhere, the agent lapses after the grace unless a
/// socket opens again.
pub async fn socket_closed(
    db: &DatabaseConnection,
    timings: Timings,
    socket: &OpenSocket,
) -> Result<(), DbErr> {
    let tx = db::begin_write(db).await?;
    store::close_socket(&tx, socket.id, socket.agent_id, after(now(), timings.grace)).await?;
    tx.commit().await
}

/// Checks a subscriber's filter: the queue must be one of the viewer's organization.
pub async fn filter(
    db: &DatabaseConnection,
    viewer: &Viewer,
    queue_id: Option<i64>,
    agent_ids: Option<HashSet<i64>>,
) -> Result<Filter, PresenceError> {
    if agent_ids.as_ref().is_some_and(|ids| ids.len() > MAX_FILTER_IDS) {
        return Err(PresenceError::TooManyIds);
    }
    if let Some(queue_id) = queue_id
        && store::members_of_live_queue(db, viewer.organization_id, queue_id).await?.is_none()
    {
        return Err(PresenceError::QueueNotFound);
    }
    Ok(Filter { agent_ids, queue_id })
}

/// The agent a change names, read once per instance and event whatever the number of
/// subscribers. None for another organization's event.
pub async fn notice_agent<'a>(
    db: &DatabaseConnection,
    viewer: &Viewer,
    notice: &'a PresenceNotice,
) -> Result<Option<&'a agent::Model>, DbErr> {
    let change = &notice.change;
    if change.organization_id != viewer.organization_id {
        return Ok(None);
    }
    let agent =
        notice.agent.get_or_try_init(|| store::find_agent(db, change.organization_id, change.agent_id));
    Ok(agent.await?.as_ref())
}

/// The viewer's presence feed: every change of its organization that `filter` admits, in
/// order per agent.
///
/// A subscriber that falls behind (it was slow to take events and the local buffer
/// overflowed) or whose instance lost notifications does not end: it drops what is buffered
/// and re-reads, from the database, the agents whose presence changed since the last change
/// it delivered, and delivers each one's current state as one change. Missed intermediate changes of one agent
/// collapse into its latest; later copies of what the re-read covered are skipped.
pub fn watch(
    db: DatabaseConnection,
    bus: &EventBus,
    viewer: Viewer,
    filter: Filter,
) -> impl Stream<Item = Result<Arc<PresenceNotice>, DbErr>> + Send + use<> {
    let watch = Watch {
        feed: bus.presence_feed(),
        db,
        viewer,
        filter,
        since: now(),
        pending: VecDeque::new(),
        resynced: HashMap::new(),
    };
    futures_util::stream::unfold(watch, |mut watch| async move {
        let next = watch.next().await?;
        Some((next, watch))
    })
}

struct Watch {
    feed: Receiver<Delivery<PresenceNotice>>,
    db: DatabaseConnection,
    viewer: Viewer,
    filter: Filter,
    /// The latest change delivered (or the subscription's start).
    since: DateTime<Utc>,
    /// Re-read changes not yet delivered.
    pending: VecDeque<Arc<PresenceNotice>>,
    /// What re-reads delivered per agent; older or equal events are copies. Empty unless
    /// this subscriber ever fell behind.
    resynced: HashMap<i64, DateTime<Utc>>,
}

impl Watch {
    async fn next(&mut self) -> Option<Result<Arc<PresenceNotice>, DbErr>> {
        loop {
            if let Some(notice) = self.pending.pop_front() {
                return Some(Ok(notice));
            }
            let notice = match self.feed.recv().await {
                Ok(Delivery::Event(notice)) => notice,
                // Boxed: its database read would otherwise make every idle subscriber's
                // future (held for the life of the subscription) several KiB larger.
                Ok(Delivery::Resync) | Err(RecvError::Lagged(_)) => match Box::pin(self.resync()).await {
                    Ok(()) => continue,
                    Err(error) => return Some(Err(error)),
                },
                Err(RecvError::Closed) => return None,
            };
            match self.wants(&notice).await {
                Ok(true) => {
                    self.since = self.since.max(notice.change.at);
                    return Some(Ok(notice));
                }
                Ok(false) => {}
                Err(error) => return Some(Err(error)),
            }
        }
    }

    async fn wants(&self, notice: &PresenceNotice) -> Result<bool, DbErr> {
        let change = &notice.change;
        // Tenancy before anything else.
        if change.organization_id != self.viewer.organization_id {
            return Ok(false);
        }
        if self.filter.agent_ids.as_ref().is_some_and(|ids| !ids.contains(&change.agent_id)) {
            return Ok(false);
        }
        if self.resynced.get(&change.agent_id).is_some_and(|delivered| change.at <= *delivered) {
            return Ok(false);
        }
        let Some(queue_id) = self.filter.queue_id else {
            return Ok(true);
        };
        let queue_ids = notice
            .queue_ids
            // Boxed for the same reason as `resync`.
            .get_or_try_init(|| {
                Box::pin(store::queue_ids_of(&self.db, change.organization_id, change.agent_id))
            })
            .await?;
        Ok(queue_ids.contains(&queue_id))
    }

    async fn resync(&mut self) -> Result<(), DbErr> {
        // What is still buffered is covered by the read below.
        while let Ok(_) | Err(TryRecvError::Lagged(_)) = self.feed.try_recv() {}
        let agent_ids = match self.filter.queue_id {
            Some(queue_id) => {
                let organization_id = self.viewer.organization_id;
                let members = store::members_of_live_queue(&self.db, organization_id, queue_id)
                    .await?
                    .unwrap_or_default();
                Some(
                    members
                        .into_iter()
                        .filter(|id| self.filter.agent_ids.as_ref().is_none_or(|ids| ids.contains(id)))
                        .collect(),
                )
            }
            None => self.filter.agent_ids.as_ref().map(|ids| ids.iter().copied().collect::<Vec<_>>()),
        };
        let agents =
            store::changed_since(&self.db, self.viewer.organization_id, self.since, agent_ids.as_deref())
                .await?;
        for agent in agents {
            let at = agent.presence_changed_at.unwrap_or(self.since);
            self.since = self.since.max(at);
            self.resynced.insert(agent.id, at);
            let notice = PresenceNotice::new(changed(
                agent.organization_id,
                agent.id,
                agent.presence,
                agent.presence_reason,
                at,
            ));
            // Already read: no subscriber needs to read it again.
            let _ = notice.agent.set(Some(agent));
            self.pending.push_back(Arc::new(notice));
        }
        Ok(())
    }
}
