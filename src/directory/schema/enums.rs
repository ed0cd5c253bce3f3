//! The agent's enums as the API spells them.

use async_graphql::Enum;

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "crate::viewer::Role")]
pub enum AgentRole {
    Admin,
    Agent,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "crate::presence::model::Presence")]
pub enum PresenceStatus {
    Online,
    Offline,
}

/// Why an agent's presence was last set.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "crate::presence::model::PresenceReason")]
pub enum PresenceReason {
    /// The agent's workspace reported it.
    Reported,
    /// ONLINE was not renewed within the presence TTL.
    TtlExpired,
    /// The agent's last WebSocket connection closed and none opened within the grace.
    Disconnected,
    /// The agent was disabled.
    Disabled,
    /// The agent was deleted.
    Deleted,
    /// Recovered at start-up: the servers had all stopped while the agent was ONLINE.
    ServerRestart,
}
