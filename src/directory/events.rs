//! Agents created, changed or deleted, as the bus carries it to the organization's
//! `agentDirectoryChanged` subscribers on every instance.

use std::iter;

use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use super::model::AgentRecord;
use crate::events::{AGENTS_PER_EVENT, Buffers, Event, Notice, Route, Routed};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DirectoryChangeKind {
    Created,
    Updated,
    Deleted,
}

/// Agents of one organization that were created, changed (including enabled or disabled)
/// or deleted, in one committed write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryChange {
    pub organization_id: i64,
    /// Not `kind` on the wire: that names the event itself.
    #[serde(rename = "change")]
    pub kind: DirectoryChangeKind,
    pub agent_ids: Vec<i64>,
}

impl DirectoryChange {
    /// The events announcing a change of these agents; split so every payload stays small.
    pub fn of_agents(organization_id: i64, kind: DirectoryChangeKind, agent_ids: &[i64]) -> Vec<Self> {
        agent_ids
            .chunks(AGENTS_PER_EVENT)
            .map(|chunk| Self { organization_id, kind, agent_ids: chunk.to_vec() })
            .collect()
    }
}

impl Event for DirectoryChange {
    const KIND: &'static str = "directory_changed";
    type Notice = DirectoryNotice;

    fn into_notice(self) -> DirectoryNotice {
        DirectoryNotice { change: self, agents: OnceCell::new() }
    }
}

/// A directory change as this instance received it, shared by all its local subscribers: the
/// agents' rows are read at most once per instance and event.
pub struct DirectoryNotice {
    pub change: DirectoryChange,
    pub agents: OnceCell<Vec<AgentRecord>>,
}

/// Each event names up to 256 agents: this many hold a change of every agent of the largest
/// organization, at a quarter of the memory of the other organization-wide feeds.
impl Notice for DirectoryNotice {
    const FEED: &'static str = "directory";
    const BUFFERS: Buffers = Buffers { organization: 256, agent: 1 };
}

impl Routed for DirectoryNotice {
    fn routes(&self) -> impl Iterator<Item = Route> + '_ {
        iter::once(Route::Organization(self.change.organization_id))
    }
}
