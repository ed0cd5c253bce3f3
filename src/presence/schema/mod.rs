//! `reportPresence`, `presenceChanged` and `PresenceEvent`; `Agent.presenceHistory` is in
//! `history`, which names nothing of the directory's types but their enums.

mod history;

pub use history::{PresenceHistoryConnection, presence_history};

use std::{collections::HashSet, sync::Arc};

use async_graphql::{Context, ID, Object, Subscription};
use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt};

use super::{
    events::PresenceNotice,
    model::Timings,
    service::{self, PresenceError},
};
use crate::{
    auth::guard::RoleGuard,
    directory::schema::{Agent, PresenceReason, PresenceStatus},
    graphql::{
        ApiError, ContextExt, UserError, UserErrorCode, for_query,
        id::{self, NodeKind},
    },
    routing::service as routing,
};

impl From<PresenceError> for ApiError {
    fn from(error: PresenceError) -> Self {
        let (code, field) = match error {
            PresenceError::QueueNotFound => (UserErrorCode::NotFound, "queueId"),
            PresenceError::TooManyIds => (UserErrorCode::TooManyIds, "agentIds"),
            PresenceError::AgentUnavailable => return ApiError::Unauthenticated,
            PresenceError::Forbidden => return ApiError::Forbidden,
            PresenceError::Database(error) => return error.into(),
        };
        UserError::new(code, error.to_string()).at([field]).into()
    }
}

#[derive(Default)]
pub struct PresenceMutation;

#[Object]
impl PresenceMutation {
    /// The signed-in agent's workspace reports its presence. ONLINE lasts the presence TTL
    /// (report again to renew it) and outlives the agent's last WebSocket connection only by
    /// the grace period.
    #[graphql(guard = "RoleGuard::SignedIn")]
    async fn report_presence(
        &self,
        ctx: &Context<'_>,
        status: PresenceStatus,
    ) -> async_graphql::Result<Agent> {
        let viewer = ctx.viewer()?;
        let app = ctx.app();
        let timings = Timings::from_config(&app.config);
        // An agent coming online may take waiting conversations.
        let take_waiting =
            || routing::agent_available(&app.db, &app.bus, viewer.organization_id, viewer.agent_id);
        let reported = service::report(&app.db, &app.bus, timings, viewer, status.into(), take_waiting).await;
        for_query(reported).map(Agent::new)
    }
}

#[derive(Default)]
pub struct PresenceSubscription;

#[Subscription]
impl PresenceSubscription {
    /// Every change of presence in the viewer's organization, once each, in order per agent;
    /// only members of `queueId` (NOT_FOUND when the viewer has no such queue) and only
    /// `agentIds` (at most 1000), when given. If the server falls behind (a burst, lost
    /// notifications), the subscription is caught up with each agent's latest change instead
    /// of every one it missed. A client that leaves more than 1024 events unread gets an
    /// error with `extensions.code = "SUBSCRIPTION_BEHIND"`, and the subscription ends.
    #[graphql(guard = "RoleGuard::SignedIn")]
    async fn presence_changed(
        &self,
        ctx: &Context<'_>,
        queue_id: Option<ID>,
        agent_ids: Option<Vec<ID>>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<PresenceEvent>> + use<>> {
        let viewer = ctx.viewer()?.clone();
        let app = ctx.app();
        let queue_id = queue_id
            .map(|queue| id::decode_as(&queue, NodeKind::Queue).ok_or(PresenceError::QueueNotFound))
            .transpose();
        // IDs that are not agents' match no change, like IDs that do not exist.
        let agent_ids = agent_ids.map(|ids| {
            ids.iter().filter_map(|agent| id::decode_as(agent, NodeKind::Agent)).collect::<HashSet<_>>()
        });
        let filter = match queue_id {
            Ok(queue_id) => service::filter(&app.db, &viewer, queue_id, agent_ids).await,
            Err(error) => Err(error),
        };
        let filter = for_query(filter)?;
        Ok(service::watch(app.db.clone(), &app.bus, viewer, filter)
            .map(|notice| for_query(notice.map(PresenceEvent))))
    }
}

/// One change of an agent's presence.
pub struct PresenceEvent(Arc<PresenceNotice>);

#[Object]
impl PresenceEvent {
    /// The agent, as it is when the event is delivered.
    async fn agent(&self, ctx: &Context<'_>) -> async_graphql::Result<Agent> {
        let viewer = ctx.viewer()?;
        let agent = for_query(service::notice_agent(&ctx.app().db, viewer, &self.0).await)?;
        agent.cloned().map(Agent::new).ok_or_else(|| {
            ApiError::Internal(
                format!("agent {} of a presence event is missing", self.0.change.agent_id).into(),
            )
            .into_graphql()
        })
    }

    async fn status(&self) -> PresenceStatus {
        self.0.change.status.into()
    }

    async fn previous_status(&self) -> PresenceStatus {
        self.0.change.previous.into()
    }

    /// Why it changed; null only for events of an older server version.
    async fn reason(&self) -> Option<PresenceReason> {
        self.0.change.reason.map(Into::into)
    }

    /// When the change was committed.
    async fn at(&self) -> DateTime<Utc> {
        self.0.change.at
    }
}
