use async_graphql::{Context, Enum, ID, SimpleObject, Subscription};
use futures_util::{Stream, StreamExt};

use super::agent::Agent;
use crate::{
    auth::guard::RoleGuard,
    directory::service::{self, DirectoryUpdate},
    graphql::{
        ContextExt, for_query,
        id::{self, NodeKind},
    },
};

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "DirectoryChange", remote = "crate::directory::events::DirectoryChangeKind")]
pub enum DirectoryChangeKind {
    Created,
    /// Any field, the queues, or enabled/disabled.
    Updated,
    Deleted,
}

#[derive(SimpleObject)]
pub struct AgentDirectoryEvent {
    kind: DirectoryChangeKind,
    agent_id: ID,
    /// The agent as it is now; null once deleted.
    agent: Option<Agent>,
}

impl From<DirectoryUpdate> for AgentDirectoryEvent {
    fn from(update: DirectoryUpdate) -> Self {
        Self {
            kind: update.kind.into(),
            agent_id: id::encode(NodeKind::Agent, update.agent_id),
            agent: update.agent.map(Agent::new),
        }
    }
}

#[derive(Default)]
pub struct DirectorySubscription;

#[Subscription]
impl DirectorySubscription {
    /// Every create, update, enable/disable and delete of an agent of the organization, one
    /// event per agent, so an open directory stays live. Admins only. If the subscription
    /// may have missed events (the server fell behind, or lost notifications with a
    /// PostgreSQL connection), it gets an error with `extensions.code =
    /// "SUBSCRIPTION_BEHIND"` and ends: query the directory and subscribe again.
    #[graphql(guard = "RoleGuard::Admin")]
    async fn agent_directory_changed(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<AgentDirectoryEvent>> + use<>> {
        let viewer = ctx.viewer()?.clone();
        let app = ctx.app();
        Ok(service::watch(app.db.clone(), &app.bus, viewer).map(|update| for_query(update.map(Into::into))))
    }
}
