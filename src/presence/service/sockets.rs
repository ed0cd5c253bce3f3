//! Signed-in sockets, counted so an agent whose last socket closed lapses after the grace.
//!
//! The database counts every instance's sockets; each instance also keeps its own in memory
//! (`HeldSockets`), because the database's count can be taken from it: when an instance
//! misses heartbeats for the instance timeout (its runtime stalled, or its database link was
//! cut), the others take it for gone and release its sockets. Its next heartbeat finds its
//! row gone and puts them back (`instances::sweep`), so agents still connected to it do not
//! lapse DISCONNECTED.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use sea_orm::{DatabaseConnection, DbErr};
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
}

impl HeldSockets {
    fn sockets(&self) -> std::sync::MutexGuard<'_, HashMap<i64, HeldSocket>> {
        // A panic elsewhere while it was held leaves the map as it was: still usable.
        self.0.sockets.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
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
/// socket opens again.
pub async fn socket_closed(
    db: &DatabaseConnection,
    timings: Timings,
    open: &OpenSocket,
) -> Result<(), DbErr> {
    let _writing = open.held.0.writes.read().await;
    // Forgotten here even if the database cannot be told: it must not be put back.
    open.held.sockets().remove(&open.socket.id);
    let tx = db::begin_write(db).await?;
    store::close_socket(&tx, open.socket.id, open.socket.agent_id, after(now(), timings.grace)).await?;
    tx.commit().await
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
