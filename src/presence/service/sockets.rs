//! Signed-in sockets, counted so an agent whose last socket closed lapses after the grace.
//!
//! The database counts every instance's sockets; each instance also keeps its own in memory
//! (`HeldSockets`), because the database's count can be taken from it: when an instance
//! misses heartbeats for the instance timeout (its runtime stalled, or its database link was
//! cut), the others take it for gone and release its sockets. Its next heartbeat finds its
//! row gone and puts them back (`instances::sweep`), so agents still connected to it do not
//! lapse DISCONNECTED.
//!
//! Closes are queued and written by one writer at a time, each write taking every close
//! queued meanwhile: a mass disconnect (a balancer restarting, a network blip) of N sockets
//! costs a few transactions, not N writers contending for the pool and SQLite's write lock,
//! which every organization on the instance needs too (they once exhausted it). A close the
//! database could not take (an outage) stays queued, and the next sweeps write it: its row
//! would otherwise count the socket as open for as long as the instance runs, and its agent
//! never lapse.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, DbBackend, DbErr, Statement};
use tokio::sync::RwLock;

use super::common::{after, now};
use crate::{
    db,
    presence::{
        model::{HeldSocket, InstanceId, Timings},
        store,
    },
    viewer::Viewer,
};

/// This process among the instances sharing the database, with the sockets it holds.
#[derive(Clone)]
pub struct Instance {
    pub id: InstanceId,
    sockets: HeldSockets,
}

impl Instance {
    pub fn generate() -> Self {
        Self { id: InstanceId::generate(), sockets: HeldSockets::default() }
    }
}

/// The signed-in sockets this instance holds, by id.
#[derive(Clone, Default)]
struct HeldSockets(Arc<Held>);

#[derive(Default)]
struct Held {
    /// Opening and closing a socket hold it shared across their write; putting sockets back
    /// holds it alone, so a socket closing meanwhile is neither put back after its row was
    /// deleted nor missed.
    writes: RwLock<()>,
    sockets: Mutex<HashMap<i64, HeldSocket>>,
    /// Closed, but not yet recorded in the database.
    unrecorded: Mutex<Vec<ClosedSocket>>,
    /// Held by the one task writing `unrecorded`.
    recording: tokio::sync::Mutex<()>,
}

/// A socket that closed, and until when its agent may reconnect.
#[derive(Clone, Copy)]
struct ClosedSocket {
    socket: HeldSocket,
    grace_until: DateTime<Utc>,
}

impl HeldSockets {
    fn sockets(&self) -> MutexGuard<'_, HashMap<i64, HeldSocket>> {
        lock(&self.0.sockets)
    }

    fn unrecorded(&self) -> MutexGuard<'_, Vec<ClosedSocket>> {
        lock(&self.0.unrecorded)
    }
}

/// A signed-in WebSocket connection, counted for the last-socket lapse.
pub struct OpenSocket {
    socket: HeldSocket,
    held: HeldSockets,
}

pub async fn socket_opened(
    db: &DatabaseConnection,
    instance: &Instance,
    viewer: &Viewer,
) -> Result<OpenSocket, DbErr> {
    let held = instance.sockets.clone();
    let _writing = held.0.writes.read().await;
    let opened_at = now();
    let tx = db::begin_write(db).await?;
    let id = store::open_socket(&tx, instance.id.as_str(), viewer.agent_id, opened_at).await?;
    tx.commit().await?;
    let socket = HeldSocket { id, agent_id: viewer.agent_id, opened_at };
    held.sockets().insert(id, socket);
    Ok(OpenSocket { socket, held: held.clone() })
}

/// When it was the agent's last socket anywhere, the agent lapses after the grace unless a
/// socket opens again. The close is queued and written with the others queued meanwhile,
/// by this task or by the one writing already; when the database cannot take it, the
/// sweeps write it later (`record_unrecorded_closes`).
pub async fn socket_closed(
    db: &DatabaseConnection,
    timings: Timings,
    open: &OpenSocket,
) -> Result<(), DbErr> {
    // Forgotten here even if the database cannot be told: it must not be put back.
    open.held.sockets().remove(&open.socket.id);
    let closed = ClosedSocket { socket: open.socket, grace_until: after(now(), timings.grace) };
    open.held.unrecorded().push(closed);
    record(db, timings, &open.held).await
}

/// Writes the closes the database could not take when they happened; those it still cannot
/// take wait for the next sweep.
pub(super) async fn record_unrecorded_closes(
    db: &DatabaseConnection,
    timings: Timings,
    instance: &Instance,
) -> Result<(), DbErr> {
    record(db, timings, &instance.sockets).await
}

/// Writes every queued close, unless another task is writing them: that one writes ours
/// too. A close queued just as the writer found the queue empty is not stranded: the writer
/// looks again once it has let go.
async fn record(db: &DatabaseConnection, timings: Timings, held: &HeldSockets) -> Result<(), DbErr> {
    while !held.unrecorded().is_empty() {
        let Ok(_recording) = held.0.recording.try_lock() else { return Ok(()) };
        loop {
            let closes = std::mem::take(&mut *held.unrecorded());
            if closes.is_empty() {
                break;
            }
            let _writing = held.0.writes.read().await;
            if let Err(error) = record_closes(db, timings, &closes).await {
                held.unrecorded().extend(closes);
                return Err(error);
            }
        }
    }
    Ok(())
}

/// One transaction for all of `closes`. Closes whose graces end within a sweep interval of
/// the first of them share a statement and the latest of their graces: an agent lapses at
/// most a sweep later than its own grace, which is as often as lapses are looked for anyway.
async fn record_closes(
    db: &DatabaseConnection,
    timings: Timings,
    closes: &[ClosedSocket],
) -> Result<(), DbErr> {
    let mut closes = closes.to_vec();
    closes.sort_by_key(|closed| closed.grace_until);
    let tx = db::begin_write(db).await?;
    let mut rest = closes.as_slice();
    while let Some(first) = rest.first() {
        let ends_by = after(first.grace_until, timings.sweep_interval);
        let together = rest.partition_point(|closed| closed.grace_until < ends_by).max(1);
        let (group, later) = rest.split_at(together);
        let sockets: Vec<HeldSocket> = group.iter().map(|closed| closed.socket).collect();
        store::close_sockets(&tx, &sockets, group[group.len() - 1].grace_until).await?;
        rest = later;
    }
    tx.commit().await
}

/// What writing the closes of `sockets` sends, for tests that ask both databases how they
/// plan it.
pub fn close_statements(
    backend: DbBackend,
    sockets: &[HeldSocket],
    grace_until: DateTime<Utc>,
) -> [Statement; 2] {
    store::close_statements(backend, sockets, grace_until)
}

/// Puts back every socket this instance holds, and its row: other instances took it for gone.
pub(super) async fn reclaim(db: &DatabaseConnection, instance: &Instance) -> Result<(), DbErr> {
    let _alone = instance.sockets.0.writes.write().await;
    let sockets: Vec<HeldSocket> = instance.sockets.sockets().values().copied().collect();
    let tx = db::begin_write(db).await?;
    store::reclaim_sockets(&tx, instance.id.as_str(), &sockets, now()).await?;
    tx.commit().await?;
    tracing::warn!(
        sockets = sockets.len(),
        "other instances took this one for gone (no heartbeat for the instance timeout); its sockets are back"
    );
    Ok(())
}

/// A panic elsewhere while a lock was held leaves what it guards as it was: still usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
