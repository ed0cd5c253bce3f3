use chrono::{DateTime, Utc};

use crate::spelling::spelled_enum;

spelled_enum! {
    /// Where a conversation stands: waiting for an agent, assigned to one, or closed.
    pub enum Status {
        Waiting = "WAITING",
        Assigned = "ASSIGNED",
        Closed = "CLOSED",
    }
}

/// An inbound contact on a queue, waiting for, assigned to, or closed by an agent. The store
/// maps rows to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConversationRecord {
    pub id: i64,
    pub organization_id: i64,
    pub queue_id: i64,
    pub status: Status,
    pub customer_name: Option<String>,
    /// E.164 as stored, for `phone::for_viewer` to put in the form a viewer may see.
    pub customer_phone: Option<String>,
    /// The agent holding it (ASSIGNED) or who closed it (CLOSED); None while WAITING.
    pub assigned_agent_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    /// When it was last assigned; kept when it goes back to WAITING.
    pub assigned_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
}

/// What a conversation listing may be narrowed to.
#[derive(Clone, Copy, Debug, Default)]
pub struct ConversationFilter {
    pub status: Option<Status>,
    pub queue_id: Option<i64>,
    /// Only conversations held (or closed) by this agent.
    pub agent_id: Option<i64>,
}

/// An inbound contact as the client gave it.
pub struct NewConversation {
    pub queue_id: Option<i64>,
    pub customer_name: Option<String>,
    pub customer_phone: Option<String>,
}

/// Customer names are free text, but bounded.
pub const MAX_CUSTOMER_NAME_CHARS: usize = 200;

/// Why an agent cannot be given a conversation now. Each is one clause of the routing rule
/// (`store::rule`), plus the two conditions around it: being in a queue, and the
/// organization serving at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ineligible {
    /// Disabled (or deleted).
    Disabled,
    /// Not ONLINE.
    Offline,
    /// Holding as many conversations as its limit.
    AtCapacity,
    /// A member of no queue.
    NoQueue,
    /// The organization's human-agent service is switched off.
    ServiceDisabled,
}

/// Conversations the agent may still take under its limit; None when unlimited.
pub fn remaining_capacity(max_concurrent_sessions: Option<i32>, active_sessions: i32) -> Option<i32> {
    max_concurrent_sessions.map(|limit| (limit - active_sessions).max(0))
}

/// What disabling or deleting some agents would do to routing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RemovalImpact {
    /// Their ASSIGNED conversations, which would go back to WAITING.
    pub requeued_conversations: u64,
    /// Live queues of theirs where no other member could take a conversation now.
    pub stranded_queue_ids: Vec<i64>,
}
