//! The live presence feed one subscriber reads: its organization's changes that its filter
//! admits, re-read from the database when it fell behind.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::Arc,
};

use chrono::{DateTime, Utc};
use futures_util::Stream;
use sea_orm::{DatabaseConnection, DbErr};

use super::common::{MAX_FILTER_IDS, PresenceError, changed, now};
use crate::{
    db::entities::agent,
    events::{Delivery, Event, EventBus, RecvError, Route, Subscription, TryRecvError},
    presence::{events::PresenceNotice, model::Filter, store},
    viewer::Viewer,
};

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
) -> Result<Option<&'a agent::AgentRecord>, DbErr> {
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
        feed: bus.subscribe::<PresenceNotice>(Route::Organization(viewer.organization_id)),
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
    feed: Subscription<PresenceNotice>,
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
        // Tenancy before anything else: the bus routes by organization, and a mistake there
        // must still not show one tenant another's agents.
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
            let notice = Event::into_notice(changed(
                agent.organization_id,
                agent.id,
                agent.presence,
                agent.presence_reason,
                at,
            ));
            // Already read: no subscriber needs to read it again.
            let _ = notice.agent.set(Some(agent.into()));
            self.pending.push_back(Arc::new(notice));
        }
        Ok(())
    }
}
