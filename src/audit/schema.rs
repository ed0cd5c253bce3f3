//! `auditLog`: the organization's audit entries for its admins, newest first.

use std::collections::HashMap;

use async_graphql::{
    Context, Enum, ID, InputObject, Object,
    connection::{Connection, EmptyFields},
};
use chrono::{DateTime, Utc};

use super::{
    model::{AuditFilter as DomainFilter, EntryRecord, TargetType},
    service,
};
use crate::{
    auth::guard::RoleGuard,
    directory::model::AgentRecord,
    directory::{schema::Agent, service as directory},
    graphql::{
        ContextExt, for_query,
        id::{self, NodeKind},
        pagination::{connection, connection_complexity, encode_cursor, page_request},
    },
};

/// Cursors of this listing name it, so another listing's cursor is refused.
const SORT_TAG: &str = "AUDIT";

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "crate::audit::model::Action")]
pub enum AuditAction {
    AgentCreated,
    AgentUpdated,
    AgentEnabled,
    AgentDisabled,
    AgentDeleted,
    QueueCreated,
    QueueUpdated,
    QueueDeleted,
    /// Target: the queue; `changedFields`: `["agentIds"]`.
    QueueAgentsAdded,
    /// Target: the queue; `changedFields`: `["agentIds"]`.
    QueueAgentsRemoved,
    SignInSucceeded,
    /// Unknown organization or username, or a wrong password.
    SignInFailed,
    /// The right password of a disabled agent.
    SignInRefusedDisabled,
    SessionEnded,
    SignedOutEverywhere,
    OrganizationUpdated,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "crate::audit::model::TargetType")]
pub enum AuditTargetType {
    Agent,
    Queue,
    Organization,
}

/// One recorded action on one target.
pub struct AuditEntry {
    record: EntryRecord,
    /// Read along with the whole page (deleted agents too); None when the actor is unknown.
    actor: Option<AgentRecord>,
}

#[Object]
impl AuditEntry {
    async fn id(&self) -> ID {
        id::encode(NodeKind::AuditEntry, self.record.id)
    }
    async fn action(&self) -> AuditAction {
        self.record.action.into()
    }
    /// Who acted (a deleted agent too, with `deletedAt` set); null for a sign-in attempt with
    /// an unknown username.
    async fn actor(&self) -> Option<Agent> {
        self.actor.clone().map(Agent::new)
    }
    /// The actor's username at the time; for a sign-in attempt, the username as tried.
    async fn actor_username(&self) -> Option<&str> {
        self.record.actor_username.as_deref()
    }
    /// Global ID of the agent or queue acted on.
    async fn target_id(&self) -> Option<ID> {
        let kind = |target_type| match target_type {
            TargetType::Agent => NodeKind::Agent,
            TargetType::Queue => NodeKind::Queue,
            TargetType::Organization => NodeKind::Organization,
        };
        Some(id::encode(kind(self.record.target_type?), self.record.target_id?))
    }
    async fn target_type(&self) -> Option<AuditTargetType> {
        self.record.target_type.map(Into::into)
    }
    /// API names of the fields the action set (never their values).
    async fn changed_fields(&self) -> Vec<&str> {
        self.record.changed_fields.iter().map(String::as_str).collect()
    }
    /// The IP address the request came from, as the server saw it.
    async fn client_address(&self) -> Option<&str> {
        self.record.client_address.as_deref()
    }
    async fn at(&self) -> DateTime<Utc> {
        self.record.at
    }
}

/// Every part given must match.
#[derive(InputObject, Default)]
pub struct AuditFilter {
    actor_id: Option<ID>,
    /// An agent's or a queue's ID.
    target_id: Option<ID>,
    action: Option<AuditAction>,
    /// Entries at or after this time.
    since: Option<DateTime<Utc>>,
    /// Entries before this time.
    until: Option<DateTime<Utc>>,
}

impl From<AuditFilter> for DomainFilter {
    fn from(filter: AuditFilter) -> Self {
        // IDs of another kind, or malformed, match nothing, like IDs that do not exist.
        let target = filter.target_id.map(|target| match id::decode(&target) {
            Some((NodeKind::Agent, number)) => (TargetType::Agent, number),
            Some((NodeKind::Queue, number)) => (TargetType::Queue, number),
            _ => (TargetType::Agent, id::NO_ROW),
        });
        Self {
            actor_id: filter
                .actor_id
                .map(|actor| id::decode_as(&actor, NodeKind::Agent).unwrap_or(id::NO_ROW)),
            target,
            action: filter.action.map(Into::into),
            since: filter.since,
            until: filter.until,
        }
    }
}

pub type AuditEntryConnection = Connection<String, AuditEntry>;

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// The organization's audit log, newest first, 50 a page by default (at most 200). ADMIN only.
    #[graphql(
        guard = "RoleGuard::Admin",
        complexity = "connection_complexity(first, None, child_complexity)"
    )]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<AuditFilter>,
    ) -> async_graphql::Result<AuditEntryConnection> {
        let (db, viewer) = (&ctx.app().db, ctx.viewer()?);
        let request = page_request(SORT_TAG, after, None, first, None)?;
        let filter = filter.map(DomainFilter::from).unwrap_or_default();
        let page = for_query(service::entries(db, viewer, &filter, &request).await)?;
        // The page's actors in one read, rather than one per entry.
        let actors: HashMap<i64, AgentRecord> = if selects_actor(ctx) {
            let ids: Vec<i64> = page.items.iter().filter_map(|entry| entry.actor_id).collect();
            let agents = for_query(directory::agents_in_history(db, viewer, &ids).await)?;
            agents.into_iter().map(|agent| (agent.card.id, agent)).collect()
        } else {
            HashMap::new()
        };
        Ok(connection(&request, page, EmptyFields, |record| {
            let actor = record.actor_id.and_then(|id| actors.get(&id).cloned());
            (encode_cursor(SORT_TAG, &service::cursor(&record)), AuditEntry { record, actor })
        }))
    }
}

fn selects_actor(ctx: &Context<'_>) -> bool {
    let look_ahead = ctx.look_ahead();
    look_ahead.field("nodes").field("actor").exists()
        || look_ahead.field("edges").field("node").field("actor").exists()
}
