//! What an audit entry says: who did what to which rows, from where, and which fields it set
//! (by name: values, and so passwords and tokens, are never recorded).

use std::net::IpAddr;

use chrono::{DateTime, Utc};

use crate::{spelling::spelled_enum, viewer::Viewer};

spelled_enum! {
    /// What an audit entry records.
    pub enum Action {
        AgentCreated = "AGENT_CREATED",
        AgentUpdated = "AGENT_UPDATED",
        AgentEnabled = "AGENT_ENABLED",
        AgentDisabled = "AGENT_DISABLED",
        AgentDeleted = "AGENT_DELETED",
        QueueCreated = "QUEUE_CREATED",
        QueueUpdated = "QUEUE_UPDATED",
        QueueDeleted = "QUEUE_DELETED",
        QueueAgentsAdded = "QUEUE_AGENTS_ADDED",
        QueueAgentsRemoved = "QUEUE_AGENTS_REMOVED",
        SignInSucceeded = "SIGN_IN_SUCCEEDED",
        /// Unknown organization or username, or a wrong password.
        SignInFailed = "SIGN_IN_FAILED",
        /// The right password of a disabled agent.
        SignInRefusedDisabled = "SIGN_IN_REFUSED_DISABLED",
        /// One session ended by `endSession` (its own agent's, or by an ADMIN).
        SessionEnded = "SESSION_ENDED",
        /// `logoutEverywhere`: every session of the agent, but perhaps the caller's own.
        SignedOutEverywhere = "SIGNED_OUT_EVERYWHERE",
        /// An operator changed the organization (name, seats, human-agent service) with
        /// `agentdesk org update`.
        OrganizationUpdated = "ORGANIZATION_UPDATED",
    }
}

spelled_enum! {
    /// Which kind of row an audit entry's targets are.
    pub enum TargetType {
        Agent = "AGENT",
        Queue = "QUEUE",
        Organization = "ORGANIZATION",
    }
}

/// One recorded action on one target, as the log holds it. The store maps rows to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryRecord {
    pub id: i64,
    pub actor_id: Option<i64>,
    pub actor_username: Option<String>,
    pub action: Action,
    pub target_type: Option<TargetType>,
    pub target_id: Option<i64>,
    /// API names of the fields the action set.
    pub changed_fields: Vec<String>,
    pub client_address: Option<String>,
    pub at: DateTime<Utc>,
}

/// Longest attempted username kept from a failed sign-in: longer input is no username
/// (they are at most 64 characters) and must not grow the log at the caller's will.
const MAX_ATTEMPTED_USERNAME_CHARS: usize = 64;

/// An action to record. It becomes one row per target, so a bulk action on 30 agents is 30
/// rows and each agent's history is one filter away; with no target, one row.
#[derive(Clone, Debug)]
pub struct Entry {
    pub organization_id: Option<i64>,
    pub actor_id: Option<i64>,
    pub actor_username: Option<String>,
    pub action: Action,
    pub target_type: Option<TargetType>,
    pub target_ids: Vec<i64>,
    pub changed_fields: Vec<&'static str>,
    pub client_address: Option<IpAddr>,
}

impl Entry {
    /// An action of a signed-in agent, coming from `client_address`.
    pub fn by(viewer: &Viewer, client_address: Option<IpAddr>, action: Action) -> Self {
        Self {
            organization_id: Some(viewer.organization_id),
            actor_id: Some(viewer.agent_id),
            actor_username: Some(viewer.username.clone()),
            action,
            target_type: None,
            target_ids: Vec::new(),
            changed_fields: Vec::new(),
            client_address,
        }
    }

    /// An action of an operator on the server's command line (not an agent): `operator` says
    /// who, as the operating system knew them.
    pub fn by_operator(operator: &str, organization_id: i64, action: Action) -> Self {
        Self {
            organization_id: Some(organization_id),
            actor_id: None,
            actor_username: Some(format!("operator ({operator})")),
            action,
            target_type: None,
            target_ids: Vec::new(),
            changed_fields: Vec::new(),
            client_address: None,
        }
    }

    /// A sign-in attempt: the organization and the agent when they exist, and the username as
    /// it was tried. The agent is both actor and target, so its history shows its sign-ins.
    pub fn sign_in(
        action: Action,
        organization_id: Option<i64>,
        agent_id: Option<i64>,
        attempted_username: &str,
        client_address: Option<IpAddr>,
    ) -> Self {
        let username: String = attempted_username.chars().take(MAX_ATTEMPTED_USERNAME_CHARS).collect();
        Self {
            organization_id,
            actor_id: agent_id,
            actor_username: Some(username),
            action,
            target_type: agent_id.map(|_| TargetType::Agent),
            target_ids: agent_id.into_iter().collect(),
            changed_fields: Vec::new(),
            client_address,
        }
    }

    /// The rows the action was done to.
    pub fn on(mut self, target_type: TargetType, ids: impl IntoIterator<Item = i64>) -> Self {
        self.target_type = Some(target_type);
        self.target_ids = ids.into_iter().collect();
        self
    }

    /// The fields the action set, by their API names.
    pub fn fields(mut self, fields: impl IntoIterator<Item = &'static str>) -> Self {
        self.changed_fields = fields.into_iter().collect();
        self
    }
}

/// Which entries to list; every part given must match.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub actor_id: Option<i64>,
    pub target: Option<(TargetType, i64)>,
    pub action: Option<Action>,
    /// Inclusive.
    pub since: Option<DateTime<Utc>>,
    /// Exclusive.
    pub until: Option<DateTime<Utc>>,
}
