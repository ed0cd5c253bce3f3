//! Presence values: the timings that decide a lapse, which changes a subscriber wants, and
//! the identity of this server instance among those sharing the database.

use std::{collections::HashSet, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};

use crate::{config::Config, spelling::spelled_enum};

/// An instance that misses this many sweeps is presumed gone: its sockets stop counting.
const MISSED_SWEEPS_BEFORE_GONE: u32 = 10;
/// ...but never sooner than this, so a busy instance is not mistaken for a dead one.
const MIN_INSTANCE_TIMEOUT: Duration = Duration::from_secs(3);
/// A starting instance resets every organization's presence only when no other instance
/// heart-beat for this long: see `Timings::restart_silence`.
const MIN_RESTART_SILENCE: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug)]
pub struct Timings {
    /// ONLINE lasts this long after each report.
    pub ttl: Duration,
    /// ONLINE outlives the agent's last socket by this much.
    pub grace: Duration,
    /// How often each instance heart-beats and flips lapsed agents.
    pub sweep_interval: Duration,
    /// How long presence history is kept.
    pub history_retention: Duration,
}

impl Timings {
    pub fn from_config(config: &Config) -> Self {
        Self {
            ttl: config.presence_ttl,
            grace: config.presence_grace,
            sweep_interval: config.presence_sweep_interval,
            history_retention: config.presence_history_retention,
        }
    }

    /// Heartbeat age after which an instance is presumed gone.
    pub fn instance_timeout(&self) -> Duration {
        (self.sweep_interval * MISSED_SWEEPS_BEFORE_GONE).max(MIN_INSTANCE_TIMEOUT)
    }

    /// Heartbeat age after which a starting instance takes another for gone when deciding
    /// whether to reset presence. Longer than `instance_timeout`, because the two mistakes
    /// differ in size: the sweep releases only the late instance's sockets, while the reset
    /// takes every agent of every organization OFFLINE, those the late instance still serves
    /// included (an instance whose pool is busy for a few seconds is late, not gone). A
    /// shorter silence leaves the agents to the sweep: the lapse comes a little later.
    pub fn restart_silence(&self) -> Duration {
        self.instance_timeout().max(MIN_RESTART_SILENCE)
    }
}

/// Which changes a `presenceChanged` subscriber wants, beyond its organization's.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Only these agents; None means all.
    pub agent_ids: Option<HashSet<i64>>,
    /// Only members of this queue (membership as of each change).
    pub queue_id: Option<i64>,
}

/// This server process; its WebSocket connections are stored under it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceId(Arc<str>);

impl InstanceId {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 12];
        getrandom::fill(&mut bytes).expect("the operating system provides randomness");
        Self(hex::encode(bytes).into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A signed-in socket this instance holds, as it recorded it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeldSocket {
    pub id: i64,
    pub agent_id: i64,
    pub opened_at: DateTime<Utc>,
}

spelled_enum! {
    /// Whether an agent takes conversations.
    pub enum Presence {
        Online = "ONLINE",
        Offline = "OFFLINE",
    }
}

spelled_enum! {
    /// Why an agent's presence was last set. Serde spells it as the database does, for the
    /// events that carry it.
    #[derive(serde::Serialize, serde::Deserialize)]
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    pub enum PresenceReason {
        /// The agent's workspace said so (`reportPresence`).
        Reported = "REPORTED",
        /// ONLINE was not renewed within the presence TTL.
        TtlExpired = "TTL_EXPIRED",
        /// The agent's last WebSocket closed and none opened within the grace.
        Disconnected = "DISCONNECTED",
        Disabled = "DISABLED",
        Deleted = "DELETED",
        /// Left ONLINE by a cluster that stopped; reset when the first instance started again.
        ServerRestart = "SERVER_RESTART",
    }
}

/// An agent whose presence a flip just changed, as the flip left it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flipped {
    pub organization_id: i64,
    pub agent_id: i64,
    pub status: Presence,
    /// Every flip sets it; None only in a row no flip has touched.
    pub reason: Option<PresenceReason>,
}

/// One change of an agent's presence, as its history keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    pub organization_id: i64,
    pub agent_id: i64,
    pub status: Presence,
    pub reason: PresenceReason,
    pub at: DateTime<Utc>,
}

/// A change as the history holds it: its id orders it (ids grow with time). The store maps
/// rows to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryRecord {
    pub id: i64,
    pub change: HistoryEntry,
}

/// Presence has two states, so the state a change left is the other one.
pub fn other(status: Presence) -> Presence {
    match status {
        Presence::Online => Presence::Offline,
        Presence::Offline => Presence::Online,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_spells_a_reason_as_the_database_does() {
        for &reason in PresenceReason::ALL {
            assert_eq!(serde_json::to_value(reason).unwrap(), reason.as_str());
        }
    }
}
