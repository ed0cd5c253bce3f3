use std::{collections::HashMap, net::IpAddr, sync::Arc};

use chrono::Utc;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};

use super::common::{GivenId, Rejections, check_bulk_size, lock_serving_organization, resolve_ids};
use crate::{
    audit::{
        model::{Action, Entry, TargetType},
        service as audit,
    },
    db::{
        self,
        page::{Cursor, Page, PageRequest},
    },
    directory::events::{DirectoryChange, DirectoryChangeKind},
    directory::{
        error::{DirectoryError, Field, Problem, Rejection},
        model::{QueueName, QueueRecord, QueueToCreate},
        store,
    },
    events::{EventBus, EventTx},
    routing::service as routing,
    viewer::Viewer,
};

// ---- reads ----

pub async fn queue(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    queue_id: i64,
) -> Result<Option<QueueRecord>, DbErr> {
    store::find_queue(db, viewer.organization_id, queue_id).await
}

/// These queues even after they were deleted, for the conversations that refer to them; in
/// no particular order.
pub async fn queues_including_deleted(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    queue_ids: &[i64],
) -> Result<Vec<QueueRecord>, DbErr> {
    store::find_queues_including_deleted(db, viewer.organization_id, queue_ids).await
}

pub async fn queues(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    page: &PageRequest,
) -> Result<Page<QueueRecord>, DbErr> {
    store::list_queues(db, viewer.organization_id, page).await
}

pub async fn count_queues(db: &impl ConnectionTrait, viewer: &Viewer) -> Result<u64, DbErr> {
    store::count_queues(db, viewer.organization_id).await
}

/// Where a queue stands in the listing by name.
pub fn queue_cursor(queue: &QueueRecord) -> Cursor {
    Cursor { key: queue.name_key.clone(), id: queue.id }
}

/// The queues of each agent, by name, for many agents at once (the DataLoader's batch).
pub async fn queues_of_agents(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    agent_ids: &[i64],
) -> Result<HashMap<i64, Vec<Arc<QueueRecord>>>, DbErr> {
    store::queues_of_agents(db, viewer.organization_id, agent_ids).await
}

/// The statement `queues_of_agents` runs, built for `backend`, without running it: for the
/// test that asks each database how it plans it (`tests/api/query_plans.rs`).
pub fn queues_of_agents_statement(backend: DbBackend, organization_id: i64, agent_ids: &[i64]) -> Statement {
    store::queues_of_agents_statement(backend, organization_id, agent_ids)
}

/// How many agents each queue has, for a whole page of queues at once.
pub async fn member_counts(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    queue_ids: &[i64],
) -> Result<HashMap<i64, i64>, DbErr> {
    store::member_counts(db, viewer.organization_id, queue_ids).await
}

/// The agents of one of the viewer's queues; None when the queue does not exist for them.
pub async fn queue_member_ids(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    queue_id: i64,
) -> Result<Option<Vec<i64>>, DbErr> {
    store::queue_member_ids(db, viewer.organization_id, queue_id).await
}

// ---- writes ----

fn parse_name(raw: &str) -> Result<QueueName, DirectoryError> {
    QueueName::parse(raw).ok_or_else(|| Rejection::of(Field::QueueName, Problem::InvalidQueueName).into())
}

async fn check_name_free(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    name: &QueueName,
    except: Option<i64>,
) -> Result<(), DirectoryError> {
    if store::queue_name_taken(db, viewer.organization_id, &name.key(), except).await? {
        return Err(Rejection::of(Field::QueueName, Problem::QueueNameTaken).into());
    }
    Ok(())
}

async fn find_live_queue(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    queue_id: GivenId,
    field: Field,
) -> Result<QueueRecord, DirectoryError> {
    let found = match queue_id {
        Some(id) => store::find_queue(db, viewer.organization_id, id).await?,
        None => None,
    };
    found.ok_or_else(|| Rejection::of(field, Problem::NotFound).into())
}

pub async fn create_queue(
    db: &DatabaseConnection,
    viewer: &Viewer,
    client_address: Option<IpAddr>,
    name: &str,
) -> Result<QueueRecord, DirectoryError> {
    let name = parse_name(name)?;
    let tx = db::begin_write(db).await?;
    lock_serving_organization(&tx, viewer).await?;
    check_name_free(&tx, viewer, &name, None).await?;
    let now = Utc::now();
    let created =
        store::insert_queue(&tx, QueueToCreate { organization_id: viewer.organization_id, name, at: now })
            .await?;
    let entry = Entry::by(viewer, client_address, Action::QueueCreated).on(TargetType::Queue, [created.id]);
    audit::record(&tx, entry.fields(["name"])).await?;
    tx.commit().await?;
    Ok(created)
}

/// Renames a queue; its members' directory entries change with it (their queue badges).
pub async fn rename_queue(
    db: &DatabaseConnection,
    bus: &EventBus,
    viewer: &Viewer,
    client_address: Option<IpAddr>,
    queue_id: GivenId,
    name: Option<&str>,
) -> Result<QueueRecord, DirectoryError> {
    let name = name.map(parse_name).transpose()?;
    let mut tx = bus.begin(db).await?;
    lock_serving_organization(&*tx, viewer).await?;
    let queue = find_live_queue(&*tx, viewer, queue_id, Field::InputId).await?;
    let renamed = name.is_some();
    if let Some(name) = name {
        check_name_free(&*tx, viewer, &name, Some(queue.id)).await?;
        store::rename_queue(&*tx, queue.id, name.as_str(), &name.key(), Utc::now()).await?;
        members_changed(&mut tx, viewer, queue.id).await?;
    }
    let entry = Entry::by(viewer, client_address, Action::QueueUpdated).on(TargetType::Queue, [queue.id]);
    audit::record(&*tx, entry.fields(renamed.then_some("name"))).await?;
    tx.commit().await?;
    find_live_queue(db, viewer, Some(queue.id), Field::InputId).await
}

/// Announces the queue's members as UPDATED: what their directory entries show of the queue
/// changed.
async fn members_changed(tx: &mut EventTx<'_>, viewer: &Viewer, queue_id: i64) -> Result<(), DbErr> {
    let members = store::queue_member_ids(&**tx, viewer.organization_id, queue_id).await?.unwrap_or_default();
    if members.is_empty() {
        return Ok(());
    }
    tx.publish_all(DirectoryChange::of_agents(viewer.organization_id, DirectoryChangeKind::Updated, &members))
        .await
}

/// Deletes a queue and its memberships; the row stays for the conversations that refer to it.
/// Customers waiting in it are never stranded: the deletion is refused while any wait, unless
/// `move_waiting_to` names another queue of the organization, where they then wait (and are
/// routed), in the same transaction. Its members' directory entries change with it.
pub async fn delete_queue(
    db: &DatabaseConnection,
    bus: &EventBus,
    viewer: &Viewer,
    client_address: Option<IpAddr>,
    queue_id: GivenId,
    move_waiting_to: Option<GivenId>,
) -> Result<i64, DirectoryError> {
    let mut tx = bus.begin(db).await?;
    lock_serving_organization(&*tx, viewer).await?;
    let queue = find_live_queue(&*tx, viewer, queue_id, Field::Id).await?;
    let target = match move_waiting_to {
        // The queue being deleted is no place to move its customers to.
        Some(target) if target == Some(queue.id) => {
            return Err(Rejection::of(Field::MoveWaitingTo, Problem::NotFound).into());
        }
        Some(target) => Some(find_live_queue(&*tx, viewer, target, Field::MoveWaitingTo).await?),
        None => None,
    };
    let moved = match &target {
        Some(target) => routing::move_waiting(&*tx, viewer, queue.id, target.id).await?,
        None if routing::waiting_count(&*tx, viewer, queue.id).await? > 0 => {
            return Err(Rejection::of(Field::MoveWaitingTo, Problem::QueueHasWaitingConversations).into());
        }
        None => 0,
    };
    members_changed(&mut tx, viewer, queue.id).await?;
    store::soft_delete_queue(&*tx, viewer.organization_id, queue.id, Utc::now()).await?;
    let entry = Entry::by(viewer, client_address, Action::QueueDeleted).on(TargetType::Queue, [queue.id]);
    audit::record(&*tx, entry).await?;
    tx.commit().await?;
    if let Some(target) = target.filter(|_| moved > 0) {
        routing::queue_filled(db, bus, viewer.organization_id, target.id).await;
    }
    Ok(queue.id)
}

/// Which membership change to make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Membership {
    Add,
    Remove,
}

/// Adds agents to a queue or removes them, all or none. Adding a member again, or removing a
/// non-member, is not an error.
pub async fn change_membership(
    db: &DatabaseConnection,
    bus: &EventBus,
    viewer: &Viewer,
    client_address: Option<IpAddr>,
    queue_id: GivenId,
    agent_ids: &[GivenId],
    change: Membership,
) -> Result<QueueRecord, DirectoryError> {
    check_bulk_size(agent_ids, Field::AgentIdList)?;
    let mut tx = bus.begin(db).await?;
    lock_serving_organization(&*tx, viewer).await?;
    let mut rejections = Rejections::default();
    let queue = match find_live_queue(&*tx, viewer, queue_id, Field::QueueOfMembership).await {
        Ok(queue) => Some(queue),
        Err(DirectoryError::Rejected(found)) => {
            rejections.extend(found);
            None
        }
        Err(other) => return Err(other),
    };
    let wanted: Vec<i64> = agent_ids.iter().flatten().copied().collect();
    let found: Vec<i64> =
        store::find_agents(&*tx, viewer.organization_id, &wanted).await?.iter().map(|a| a.card.id).collect();
    let (ids, missing) = resolve_ids(agent_ids, &found, Field::AgentIds);
    rejections.extend(missing);
    rejections.finish()?;
    let queue = queue.ok_or_else(|| DbErr::RecordNotFound("queue checked above".into()))?;
    match change {
        Membership::Add => {
            store::add_memberships(&*tx, ids.iter().map(|&agent_id| (queue.id, agent_id)), Utc::now()).await?
        }
        Membership::Remove => store::remove_memberships(&*tx, viewer.organization_id, queue.id, &ids).await?,
    }
    let action = match change {
        Membership::Add => Action::QueueAgentsAdded,
        Membership::Remove => Action::QueueAgentsRemoved,
    };
    let entry = Entry::by(viewer, client_address, action).on(TargetType::Queue, [queue.id]);
    audit::record(&*tx, entry.fields(["agentIds"])).await?;
    // An agent's queues are part of the agent: its directory entry changed.
    tx.publish_all(DirectoryChange::of_agents(viewer.organization_id, DirectoryChangeKind::Updated, &ids))
        .await?;
    tx.commit().await?;
    if change == Membership::Add {
        crate::routing::service::drain(db, bus, viewer.organization_id, Some(&[queue.id])).await?;
    }
    Ok(queue)
}
