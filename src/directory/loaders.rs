//! DataLoaders of the directory, made per request (or per socket) for one viewer, so their
//! batches are always scoped to that viewer's organization. They do not cache: each load
//! reads fresh rows, and batching alone keeps a page's statement count flat.

use std::{collections::HashMap, sync::Arc};

use async_graphql::dataloader::{DataLoader, Loader};
use sea_orm::{DatabaseConnection, DbErr};

use super::service;
use crate::{
    directory::model::{AgentRecord, QueueRecord},
    graphql::RequestContext,
    routing::{model::Ineligible, service as routing},
    state::AppState,
    viewer::Viewer,
};

pub struct DirectoryLoaders {
    pub queues_of_agent: DataLoader<QueuesOfAgent>,
    pub queue_member_count: DataLoader<QueueMemberCount>,
    pub eligibility: DataLoader<Eligibility>,
    pub queue_in_history: DataLoader<QueueInHistory>,
    pub agent_in_history: DataLoader<AgentInHistory>,
    pub waiting_in_queue: DataLoader<WaitingInQueue>,
}

impl DirectoryLoaders {
    /// The loaders of this request, made for its viewer on first use.
    pub fn of(app: &AppState, request: &RequestContext) -> async_graphql::Result<Arc<Self>> {
        let viewer = request.viewer()?;
        Ok(request.shared(|| Self::new(&app.db, viewer)))
    }

    fn new(db: &DatabaseConnection, viewer: &Viewer) -> Self {
        let scope = || Scope { db: db.clone(), viewer: viewer.clone() };
        Self {
            queues_of_agent: DataLoader::new(QueuesOfAgent(scope()), tokio::spawn),
            queue_member_count: DataLoader::new(QueueMemberCount(scope()), tokio::spawn),
            eligibility: DataLoader::new(Eligibility(scope()), tokio::spawn),
            queue_in_history: DataLoader::new(QueueInHistory(scope()), tokio::spawn),
            agent_in_history: DataLoader::new(AgentInHistory(scope()), tokio::spawn),
            waiting_in_queue: DataLoader::new(WaitingInQueue(scope()), tokio::spawn),
        }
    }
}

struct Scope {
    db: DatabaseConnection,
    viewer: Viewer,
}

/// Agent id → its queues, by name.
pub struct QueuesOfAgent(Scope);

impl Loader<i64> for QueuesOfAgent {
    type Value = Vec<Arc<QueueRecord>>;
    type Error = Arc<DbErr>;

    async fn load(&self, agent_ids: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        service::queues_of_agents(&self.0.db, &self.0.viewer, agent_ids).await.map_err(Arc::new)
    }
}

/// Queue id → how many agents it has.
pub struct QueueMemberCount(Scope);

impl Loader<i64> for QueueMemberCount {
    type Value = i64;
    type Error = Arc<DbErr>;

    async fn load(&self, queue_ids: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        service::member_counts(&self.0.db, &self.0.viewer, queue_ids).await.map_err(Arc::new)
    }
}

/// Agent id → why it cannot be given a conversation now (empty: it can).
pub struct Eligibility(Scope);

impl Loader<i64> for Eligibility {
    type Value = Vec<Ineligible>;
    type Error = Arc<DbErr>;

    async fn load(&self, agent_ids: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        routing::eligibility(&self.0.db, &self.0.viewer, agent_ids).await.map_err(Arc::new)
    }
}

/// Queue id → the queue, deleted or not: what a conversation names.
pub struct QueueInHistory(Scope);

impl Loader<i64> for QueueInHistory {
    type Value = QueueRecord;
    type Error = Arc<DbErr>;

    async fn load(&self, queue_ids: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let found = service::queues_including_deleted(&self.0.db, &self.0.viewer, queue_ids).await;
        Ok(found.map_err(Arc::new)?.into_iter().map(|queue| (queue.id, queue)).collect())
    }
}

/// Agent id → the agent, deleted or not: who held a conversation.
pub struct AgentInHistory(Scope);

impl Loader<i64> for AgentInHistory {
    type Value = AgentRecord;
    type Error = Arc<DbErr>;

    async fn load(&self, agent_ids: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let found = service::agents_in_history(&self.0.db, &self.0.viewer, agent_ids).await;
        Ok(found.map_err(Arc::new)?.into_iter().map(|agent| (agent.card.id, agent)).collect())
    }
}

/// Queue id → how many conversations wait in it.
pub struct WaitingInQueue(Scope);

impl Loader<i64> for WaitingInQueue {
    type Value = u64;
    type Error = Arc<DbErr>;

    async fn load(&self, queue_ids: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        routing::waiting_counts(&self.0.db, &self.0.viewer, queue_ids).await.map_err(Arc::new)
    }
}
