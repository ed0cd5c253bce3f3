//! This instance's part in presence kept by every instance: recovery at start-up, the
//! heartbeat, the sweep that lapses agents and forgets stopped instances' sockets, and the
//! history pruner.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, DbBackend, DbErr, Statement};
use tokio::task::JoinHandle;

use super::{
    common::{after, announce, before, now},
    sockets::{self, Instance},
};
use crate::{
    db,
    events::EventBus,
    jobs::{self, FirstRun},
    presence::{
        model::{InstanceId, Timings},
        store,
    },
};

/// Presence history is pruned at most this often: retention is counted in days, so a
/// few minutes' slack costs nothing.
const PRUNE_EVERY: Duration = Duration::from_secs(10 * 60);

/// At start-up, before this instance registers: when no other instance is alive, nobody
/// holds any socket or renews any presence, so agents left ONLINE by the previous run are
/// taken OFFLINE with `SERVER_RESTART` (rather than lingering until their TTL). With another
/// instance alive (a rolling restart on PostgreSQL) their presence is that instance's to keep
/// or lapse, so nothing changes. SQLite is one process by design: there is never another.
/// A crashed instance still counts as alive until its heartbeat is older than
/// `Timings::restart_silence`; agents it left behind lapse by TTL or socket grace as usual.
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
        && store::another_instance_alive(&*tx, instance.as_str(), before(now, timings.restart_silence()))
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

/// Registers this instance before it serves anything, so no other instance's sweep takes its
/// first sockets for orphans.
pub async fn register_instance(db: &DatabaseConnection, instance: &InstanceId) -> Result<(), DbErr> {
    store::heartbeat(db, instance.as_str(), now()).await
}

/// On a clean stop: this instance's sockets stop counting now rather than after the
/// instance timeout; their agents lapse after the grace unless they reconnect elsewhere (a
/// rolling restart's workspaces do).
pub async fn retire_instance(
    db: &DatabaseConnection,
    instance: &InstanceId,
    timings: Timings,
) -> Result<(), DbErr> {
    release_instances(db, Some(instance), timings).await
}

/// Forgets the sockets of instances that stopped heart-beating (and of `stopping`); their
/// agents get the grace from now to reconnect, as if each socket had just closed.
async fn release_instances(
    db: &DatabaseConnection,
    stopping: Option<&InstanceId>,
    timings: Timings,
) -> Result<(), DbErr> {
    let now = now();
    let tx = db::begin_write(db).await?;
    let cutoff = before(now, timings.instance_timeout());
    store::release_instances(&tx, cutoff, stopping.map(InstanceId::as_str), after(now, timings.grace))
        .await?;
    tx.commit().await
}

/// One sweep: heartbeat (through `heartbeat_db`; when this instance's row is gone, the others
/// took it for gone, and it puts its sockets back), record the closes the database could not
/// take when they happened, forget the sockets of instances that stopped heart-beating, flip
/// lapsed agents OFFLINE.
pub async fn sweep(
    db: &DatabaseConnection,
    heartbeat_db: &DatabaseConnection,
    bus: &EventBus,
    instance: &Instance,
    timings: Timings,
) -> Result<(), DbErr> {
    if !store::renew_heartbeat(heartbeat_db, instance.id.as_str(), now()).await? {
        sockets::reclaim(db, instance).await?;
    }
    sockets::record_unrecorded_closes(db, timings, instance).await?;
    release_instances(db, None, timings).await?;

    let now = now();

    let mut tx = bus.begin(db).await?;
    let lapsed = store::lapse(&*tx, now).await?;
    announce(&mut tx, lapsed, now).await?;
    tx.commit().await
}

/// The sweep's statements that could read many rows (the lapse, and the search for sockets
/// of gone instances), built for `backend` at `now` without running them: for the test that
/// asks each database how it plans them (`tests/api/query_plans.rs`).
pub fn sweep_statements(backend: DbBackend, now: DateTime<Utc>) -> [Statement; 2] {
    [store::lapse_statement(backend, now), store::orphaned_instances_statement(backend)]
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
    heartbeat_db: DatabaseConnection,
    bus: EventBus,
    instance: Instance,
    timings: Timings,
) -> JoinHandle<()> {
    jobs::spawn_every(timings.sweep_interval, FirstRun::AtOnce, "presence sweep", move || {
        let (db, heartbeat_db, bus, instance) =
            (db.clone(), heartbeat_db.clone(), bus.clone(), instance.clone());
        async move { sweep(&db, &heartbeat_db, &bus, &instance, timings).await }
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
