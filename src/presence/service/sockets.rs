//! Signed-in sockets, counted so an agent whose last socket closed lapses after the grace.

use sea_orm::{DatabaseConnection, DbErr};

use super::common::{after, now};
use crate::{
    db,
    presence::{
        model::{InstanceId, Timings},
        store,
    },
    viewer::Viewer,
};

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
