//! Routing rules. A waiting conversation goes to an ONLINE, enabled member of its queue under
//! its limit: least busy first, ties to the one idle longest. Without one it waits, and the
//! queue is drained again when capacity appears: an agent comes online, joins the queue, gets
//! a higher limit or closes a conversation (and a periodic sweep catches anything missed,
//! e.g. after a crash between a commit and its drain).

use std::{collections::HashMap, sync::Arc, time::Duration};

use chrono::Utc;
use futures_util::{Stream, stream};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use tokio::task::JoinHandle;

use super::{
    events::{ConversationChange, ConversationChangeKind, ConversationNotice},
    model::{
        ConversationFilter, ConversationRecord, Ineligible, MAX_CUSTOMER_NAME_CHARS, NewConversation,
        RemovalImpact, Status,
    },
    store,
};
use crate::{
    db::{
        self,
        page::{Page, PageRequest},
    },
    events::{Delivery, EventBus, EventTx, RecvError, Route, WatchError},
    jobs::{self, FirstRun},
    phone::PhoneNumber,
    viewer::Viewer,
};

/// Candidates read per attempt; more are read if all of them were taken meanwhile.
const CANDIDATES: u64 = 8;
/// Waiting conversations a drain reads first. Most drains follow one freed seat, and reading
/// a hundred rows to assign one cost a tenth of each assignment; each further batch is four
/// times larger, up to `DRAIN_BATCH`.
const FIRST_DRAIN_BATCH: u64 = 8;
/// Waiting conversations looked at per drain round, at most.
const DRAIN_BATCH: u64 = 100;

#[derive(Debug, thiserror::Error)]
pub enum RoutingError {
    #[error("There is no such queue in your organization.")]
    QueueNotFound,
    #[error("There is no such conversation.")]
    ConversationNotFound,
    #[error("Enter the phone number in international form, e.g. +14155550123.")]
    InvalidPhone,
    #[error("The customer name must be at most 200 characters.")]
    CustomerNameTooLong,
    #[error("The human-agent service is disabled for your organization.")]
    ServiceDisabled,
    #[error("forbidden")]
    Forbidden,
    #[error(transparent)]
    Database(#[from] DbErr),
}

// ---- reads ----

/// A conversation the viewer may see: any of the organization's for an ADMIN, its own for
/// an AGENT.
pub async fn conversation(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    conversation_id: i64,
) -> Result<Option<ConversationRecord>, DbErr> {
    let found = store::find_conversation(db, viewer.organization_id, conversation_id).await?;
    Ok(found
        .filter(|conversation| viewer.is_admin() || conversation.assigned_agent_id == Some(viewer.agent_id)))
}

/// What a listing shows the viewer: an AGENT sees only its own conversations.
fn visible(viewer: &Viewer, mut filter: ConversationFilter) -> ConversationFilter {
    if !viewer.is_admin() {
        filter.agent_id = Some(viewer.agent_id);
    }
    filter
}

pub async fn conversations(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    filter: ConversationFilter,
    page: &PageRequest,
) -> Result<Page<ConversationRecord>, DbErr> {
    store::list_conversations(db, viewer.organization_id, visible(viewer, filter), page).await
}

/// The statement `conversations` runs for this page, built for `backend` without running it:
/// for the test that asks each database how it plans it (`tests/api/query_plans.rs`).
pub fn conversations_page_statement(
    backend: DbBackend,
    organization_id: i64,
    filter: ConversationFilter,
    page: &PageRequest,
) -> Statement {
    store::list_conversations_statement(backend, organization_id, filter, page)
}

pub async fn count_conversations(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    filter: ConversationFilter,
) -> Result<u64, DbErr> {
    store::count_conversations(db, viewer.organization_id, visible(viewer, filter)).await
}

pub async fn waiting_count(db: &impl ConnectionTrait, viewer: &Viewer, queue_id: i64) -> Result<u64, DbErr> {
    store::count_waiting(db, viewer.organization_id, queue_id).await
}

/// How many conversations wait in each of these queues (every queue named is in the map).
pub async fn waiting_counts(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    queue_ids: &[i64],
) -> Result<HashMap<i64, u64>, DbErr> {
    let mut counts: HashMap<i64, u64> = queue_ids.iter().map(|&queue_id| (queue_id, 0)).collect();
    for (queue_id, waiting) in store::count_waiting_in(db, viewer.organization_id, queue_ids).await? {
        counts.insert(queue_id, u64::try_from(waiting).unwrap_or(0));
    }
    Ok(counts)
}

/// Moves the waiting conversations of a queue being deleted to another of the organization's,
/// in the caller's transaction; drain `to_queue_id` once it commits. Returns how many moved.
pub async fn move_waiting(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    from_queue_id: i64,
    to_queue_id: i64,
) -> Result<u64, DbErr> {
    store::move_waiting(db, viewer.organization_id, from_queue_id, to_queue_id).await
}

/// Routes a queue's waiting conversations after a committed write moved some into it; a
/// failure does not fail the write (the routing sweep drains it again).
pub async fn queue_filled(db: &DatabaseConnection, bus: &EventBus, organization_id: i64, queue_id: i64) {
    drain_after_commit(db, bus, organization_id, queue_id).await;
}

/// Conversations assigned to an agent of the organization in the last 30 days (rolling).
pub async fn monthly_sessions(db: &impl ConnectionTrait, viewer: &Viewer) -> Result<u64, DbErr> {
    store::count_assigned_since(db, viewer.organization_id, Utc::now() - chrono::Duration::days(30)).await
}

/// For each of these agents of the viewer's organization, why it cannot be given a
/// conversation now (empty: it can). The routing rule is evaluated by the database with the
/// very conditions the router selects candidates by.
pub async fn eligibility(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    agent_ids: &[i64],
) -> Result<HashMap<i64, Vec<Ineligible>>, DbErr> {
    let mut by_agent = store::eligibility(db, viewer.organization_id, agent_ids).await?;
    if !serving(db, viewer.organization_id).await? {
        by_agent.values_mut().for_each(|reasons| reasons.push(Ineligible::ServiceDisabled));
    }
    Ok(by_agent)
}

/// What taking these agents out of routing (disabling or deleting them) would do: their
/// conversations that would be queued again, and the queues where nobody else could take
/// one now.
pub async fn removal_impact(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    agent_ids: &[i64],
) -> Result<RemovalImpact, DbErr> {
    let organization_id = viewer.organization_id;
    let requeued_conversations = store::count_assigned_to(db, organization_id, agent_ids).await?;
    let queues = store::live_queues_of(db, organization_id, agent_ids).await?;
    let served = if queues.is_empty() {
        vec![]
    } else {
        store::queues_with_eligible_member(db, organization_id, &queues, agent_ids).await?
    };
    let stranded_queue_ids = queues.into_iter().filter(|queue| !served.contains(queue)).collect();
    Ok(RemovalImpact { requeued_conversations, stranded_queue_ids })
}

// ---- writes ----

/// Whether the organization's human-agent service is on: nothing is assigned while it is off.
async fn serving(db: &impl ConnectionTrait, organization_id: i64) -> Result<bool, DbErr> {
    let organization = store::find_organization(db, organization_id).await?;
    Ok(organization.is_some_and(|organization| organization.human_agent_service_enabled))
}

async fn check_serving(db: &impl ConnectionTrait, organization_id: i64) -> Result<(), RoutingError> {
    if serving(db, organization_id).await? { Ok(()) } else { Err(RoutingError::ServiceDisabled) }
}

/// An inbound contact: stored WAITING, then routed (oldest waiting of its queue first).
pub async fn create_conversation(
    db: &DatabaseConnection,
    bus: &EventBus,
    viewer: &Viewer,
    new: NewConversation,
) -> Result<ConversationRecord, RoutingError> {
    let phone = match new.customer_phone.as_deref().map(str::trim).filter(|raw| !raw.is_empty()) {
        Some(raw) => Some(PhoneNumber::parse(raw).ok_or(RoutingError::InvalidPhone)?.into_inner()),
        None => None,
    };
    let name = new.customer_name.map(|name| name.trim().to_owned()).filter(|name| !name.is_empty());
    if name.as_ref().is_some_and(|name| name.chars().count() > MAX_CUSTOMER_NAME_CHARS) {
        return Err(RoutingError::CustomerNameTooLong);
    }
    check_serving(db, viewer.organization_id).await?;
    let queue_id = new.queue_id.ok_or(RoutingError::QueueNotFound)?;
    if !store::queue_exists(db, viewer.organization_id, queue_id).await? {
        return Err(RoutingError::QueueNotFound);
    }
    // In a transaction even though it is one statement: SQLite commits an autocommit
    // `INSERT … RETURNING` only when the statement is reset after its row was read, and the
    // driver drops that reset's error, so a full disk would hand out an id nothing stored.
    // An explicit COMMIT reports it.
    let tx = db::begin_write(db).await?;
    let created =
        store::insert_conversation(&tx, viewer.organization_id, queue_id, name, phone, Utc::now()).await?;
    tx.commit().await?;
    // Committed: from here on the answer is the conversation, whatever else fails.
    drain_after_commit(db, bus, viewer.organization_id, queue_id).await;
    let latest = store::find_conversation(db, viewer.organization_id, created.id).await;
    Ok(latest.ok().flatten().unwrap_or(created))
}

/// Closes a conversation: an ADMIN any, an AGENT its own. Closing a closed one changes
/// nothing.
pub async fn close_conversation(
    db: &DatabaseConnection,
    bus: &EventBus,
    viewer: &Viewer,
    conversation_id: Option<i64>,
) -> Result<ConversationRecord, RoutingError> {
    check_serving(db, viewer.organization_id).await?;
    let found = match conversation_id {
        Some(id) => store::find_conversation(db, viewer.organization_id, id).await?,
        None => None,
    };
    let found = found.ok_or(RoutingError::ConversationNotFound)?;
    if !viewer.is_admin() && found.assigned_agent_id != Some(viewer.agent_id) {
        return Err(RoutingError::Forbidden);
    }
    if found.status == Status::Closed {
        return Ok(found);
    }
    let now = Utc::now();
    let mut tx = bus.begin(db).await?;
    let Some(closed) = store::close(&*tx, found.organization_id, found.id, found.status, now).await? else {
        // It changed meanwhile (assigned, re-queued or closed): read it again and retry.
        drop(tx);
        return Box::pin(close_conversation(db, bus, viewer, conversation_id)).await;
    };
    let holder = (found.status == Status::Assigned).then_some(found.assigned_agent_id).flatten();
    if let Some(agent_id) = holder {
        store::release_capacity(&*tx, found.organization_id, agent_id, now).await?;
    }
    let change = ConversationChange {
        organization_id: found.organization_id,
        conversation_id: found.id,
        agent_id: holder,
        kind: ConversationChangeKind::Closed,
    };
    tx.publish(change).await?;
    tx.commit().await?;
    if holder.is_some() {
        drain_after_commit(db, bus, found.organization_id, found.queue_id).await;
    }
    // As committed: nothing changes a closed conversation.
    Ok(closed)
}

/// Drains a queue after a committed write that may have made work for it. A failure does not
/// fail the write, which stands: the routing sweep drains the queue again.
async fn drain_after_commit(db: &DatabaseConnection, bus: &EventBus, organization_id: i64, queue_id: i64) {
    if let Err(error) = drain(db, bus, organization_id, Some(&[queue_id])).await {
        tracing::warn!(%error, queue_id, "routing after a commit failed; the routing sweep retries");
    }
}

/// Takes back the conversations of agents being disabled or deleted, in that transaction:
/// they go back to WAITING (with an UNASSIGNED event each). Drain the organization after
/// the transaction commits.
pub async fn release_agents(
    tx: &mut EventTx<'_>,
    organization_id: i64,
    agent_ids: &[i64],
) -> Result<(), DbErr> {
    let released = store::release_agents(&**tx, organization_id, agent_ids).await?;
    let events = released
        .into_iter()
        .map(|conversation| ConversationChange {
            organization_id,
            conversation_id: conversation.id,
            agent_id: conversation.assigned_agent_id,
            kind: ConversationChangeKind::Unassigned,
        })
        .collect();
    tx.publish_all(events).await
}

/// Capacity may have appeared for this agent (online, joined queues, higher limit): drains
/// its queues.
pub async fn agent_available(
    db: &DatabaseConnection,
    bus: &EventBus,
    organization_id: i64,
    agent_id: i64,
) -> Result<(), DbErr> {
    let queues = store::queues_of(db, organization_id, agent_id).await?;
    if queues.is_empty() {
        return Ok(());
    }
    drain(db, bus, organization_id, Some(&queues)).await
}

/// Assigns waiting conversations of the queues (all the organization's when None), oldest
/// first, for as long as someone can take them.
pub async fn drain(
    db: &DatabaseConnection,
    bus: &EventBus,
    organization_id: i64,
    queue_ids: Option<&[i64]>,
) -> Result<(), DbErr> {
    // No check of the service switch here: the statements that pick and take capacity
    // apply it (`store::candidates`, `store::reserve_capacity`).
    // Queues where nobody can take the oldest: the rest of theirs wait behind it, and the
    // next batch leaves them out, so a long queue nobody serves cannot hide the others'.
    let mut full_queues = Vec::new();
    let mut batch = FIRST_DRAIN_BATCH;
    loop {
        let waiting = store::waiting(db, organization_id, queue_ids, &full_queues, batch).await?;
        for conversation in &waiting {
            if full_queues.contains(&conversation.queue_id) {
                continue;
            }
            match try_assign(db, bus, conversation).await? {
                Attempt::Assigned { last_seat: false } | Attempt::Taken => {}
                Attempt::Assigned { last_seat: true } | Attempt::NobodyFree => {
                    full_queues.push(conversation.queue_id);
                }
            }
        }
        let last_batch = (waiting.len() as u64) < batch;
        // Saves reading a batch that can only come back empty: a statement per drain, i.e.
        // per closed conversation, while a long queue waits on busy agents.
        let every_queue_full = queue_ids.is_some_and(|ids| ids.iter().all(|id| full_queues.contains(id)));
        if last_batch || every_queue_full {
            return Ok(());
        }
        batch = (batch * 4).min(DRAIN_BATCH);
    }
}

/// How giving one waiting conversation to an agent went.
enum Attempt {
    /// `last_seat`: the candidates were all of the queue's and this was the one free seat
    /// among them, so nobody can take the next now. Asking would be a statement per closed
    /// conversation while a queue waits; capacity that appears after the candidates were read
    /// comes with a drain of its own.
    Assigned {
        last_seat: bool,
    },
    /// Someone else assigned it meanwhile; the next may still find a seat.
    Taken,
    NobodyFree,
}

/// Gives one waiting conversation to the best agent who can take it.
async fn try_assign(
    db: &DatabaseConnection,
    bus: &EventBus,
    waiting: &ConversationRecord,
) -> Result<Attempt, DbErr> {
    loop {
        let candidates = store::candidates(db, waiting.organization_id, waiting.queue_id, CANDIDATES).await?;
        if candidates.is_empty() {
            return Ok(Attempt::NobodyFree);
        }
        let all_of_them = (candidates.len() as u64) < CANDIDATES;
        let one_seat_among_them =
            candidates.iter().map(|candidate| candidate.free_seats).sum::<Option<i64>>() == Some(1);
        for candidate in candidates {
            let now = Utc::now();
            let mut tx = bus.begin(db).await?;
            if !store::reserve_capacity(&*tx, waiting.organization_id, candidate.agent_id, now).await? {
                continue; // Taken by a concurrent assignment; the transaction rolls back.
            }
            if !store::assign(&*tx, waiting.organization_id, waiting.id, candidate.agent_id, now).await? {
                return Ok(Attempt::Taken); // Rolling back returns the capacity.
            }
            let change = ConversationChange {
                organization_id: waiting.organization_id,
                conversation_id: waiting.id,
                agent_id: Some(candidate.agent_id),
                kind: ConversationChangeKind::Assigned,
            };
            tx.publish(change).await?;
            tx.commit().await?;
            return Ok(Attempt::Assigned { last_seat: all_of_them && one_seat_among_them });
        }
        // Every candidate filled up meanwhile: look again, the list has changed.
    }
}

/// Drains every queue with waiting conversations, every `interval`, so nothing waits for
/// an event that was lost (a crash between a commit and its drain).
pub fn spawn_sweeper(db: DatabaseConnection, bus: EventBus, interval: Duration) -> JoinHandle<()> {
    jobs::spawn_every(interval, FirstRun::AtOnce, "routing sweep", move || {
        let (db, bus) = (db.clone(), bus.clone());
        async move { sweep(&db, &bus).await }
    })
}

/// The sweep's search for queues to drain, built for `backend` without running it: for the
/// test that asks each database how it plans it (`tests/api/query_plans.rs`).
pub fn sweep_statement(backend: DbBackend) -> Statement {
    store::queues_with_waiting_statement(backend)
}

async fn sweep(db: &DatabaseConnection, bus: &EventBus) -> Result<(), DbErr> {
    for queue in store::queues_with_waiting(db).await? {
        drain(db, bus, queue.organization_id, Some(&[queue.queue_id])).await?;
    }
    Ok(())
}

/// Which conversation changes a subscriber hears.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    /// Those of the viewer's own conversations.
    Mine,
    /// Every one of the organization (admins).
    Organization,
}

/// Conversation changes as they commit: assignments, closings, conversations taken back.
pub fn watch(
    db: DatabaseConnection,
    bus: &EventBus,
    viewer: Viewer,
    audience: Audience,
) -> impl Stream<Item = Result<(ConversationChangeKind, ConversationRecord), WatchError>> + Send + use<> {
    let organization_id = viewer.organization_id;
    let route = match audience {
        Audience::Mine => Route::Agent { organization_id, agent_id: viewer.agent_id },
        Audience::Organization => Route::Organization(organization_id),
    };
    stream::unfold(Some(bus.subscribe::<ConversationNotice>(route)), move |feed| {
        let db = db.clone();
        let viewer = viewer.clone();
        async move {
            let mut feed = feed?;
            loop {
                let notice = match feed.recv().await {
                    Ok(Delivery::Event(notice)) => notice,
                    // As for the directory: nothing to catch up from, so the client is told.
                    Ok(Delivery::Resync) | Err(RecvError::Lagged(_)) => {
                        tracing::warn!(
                            agent = viewer.agent_id,
                            "conversation subscriber missed changes; ending it"
                        );
                        return Some((Err(WatchError::Missed), None));
                    }
                    Err(RecvError::Closed) => return None,
                };
                let change = &notice.change;
                let mine = change.agent_id == Some(viewer.agent_id);
                if change.organization_id != viewer.organization_id || (audience == Audience::Mine && !mine) {
                    continue;
                }
                // Boxed: a database read is far larger than the rest of this stream, which
                // every idle subscription holds for its life (BENCHMARKS.md, memory per socket).
                match Box::pin(notice_conversation(&db, &notice)).await {
                    Ok(Some(conversation)) => return Some((Ok((change.kind, conversation)), Some(feed))),
                    Ok(None) => continue,
                    Err(error) => return Some((Err(error.into()), Some(feed))),
                }
            }
        }
    })
}

/// The conversation of a notice, read once per instance.
async fn notice_conversation(
    db: &DatabaseConnection,
    notice: &Arc<ConversationNotice>,
) -> Result<Option<ConversationRecord>, DbErr> {
    let change = &notice.change;
    let found = notice
        .conversation
        .get_or_try_init(|| store::find_conversation(db, change.organization_id, change.conversation_id))
        .await?;
    Ok(found.clone())
}
