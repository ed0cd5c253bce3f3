//! Conversations given to, closed by, or taken back from agents, as the bus carries them to
//! the organization's watchers and to the agent's own `myConversations`.

use std::iter;

use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use super::model::ConversationRecord;
use crate::events::{Buffers, Event, Notice, Route, Routed};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationChangeKind {
    Assigned,
    Closed,
    /// Taken back from the agent (disabled or deleted) and queued again.
    Unassigned,
}

/// A conversation given to, closed by, or taken back from an agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationChange {
    pub organization_id: i64,
    pub conversation_id: i64,
    /// The agent concerned; None when a waiting conversation was closed.
    pub agent_id: Option<i64>,
    #[serde(rename = "change")]
    pub kind: ConversationChangeKind,
}

impl Event for ConversationChange {
    const KIND: &'static str = "conversation_changed";
    type Notice = ConversationNotice;

    fn into_notice(self) -> ConversationNotice {
        ConversationNotice { change: self, conversation: OnceCell::new() }
    }
}

/// A conversation change as this instance received it: the conversation is read at most
/// once per instance and event.
pub struct ConversationNotice {
    pub change: ConversationChange,
    pub conversation: OnceCell<Option<ConversationRecord>>,
}

/// An organization's changes, and per agent one agent's whole load changing at once.
impl Notice for ConversationNotice {
    const FEED: &'static str = "conversations";
    const BUFFERS: Buffers = Buffers { organization: 1024, agent: 64 };
}

/// To the organization's admins, and to the agent's own feed.
impl Routed for ConversationNotice {
    fn routes(&self) -> impl Iterator<Item = Route> + '_ {
        let ConversationChange { organization_id, agent_id, .. } = self.change;
        iter::once(Route::Organization(organization_id))
            .chain(agent_id.map(|agent_id| Route::Agent { organization_id, agent_id }))
    }
}
