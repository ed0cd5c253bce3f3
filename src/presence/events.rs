//! Presence changes as the bus carries them to the organization's `presenceChanged`
//! subscribers on every instance.

use std::iter;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use super::model::{Presence, PresenceReason};
use crate::{
    db::entities::agent::AgentRecord,
    events::{Buffers, Event, Notice, Route, Routed},
};

/// One real change of an agent's presence, as committed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceChange {
    pub organization_id: i64,
    pub agent_id: i64,
    #[serde(with = "presence_text")]
    pub status: Presence,
    #[serde(with = "presence_text")]
    pub previous: Presence,
    /// Why it changed; absent from events of instances older than this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<PresenceReason>,
    pub at: DateTime<Utc>,
}

impl Event for PresenceChange {
    const KIND: &'static str = "presence_changed";
    type Notice = PresenceNotice;

    fn into_notice(self) -> PresenceNotice {
        PresenceNotice { change: self, agent: OnceCell::new(), queue_ids: OnceCell::new() }
    }
}

/// A presence change as this instance received it, shared by all its local subscribers: the
/// agent's row and queues are read at most once per instance and event, by the first
/// subscriber whose selection needs them (see `presence::service`).
pub struct PresenceNotice {
    pub change: PresenceChange,
    pub agent: OnceCell<Option<AgentRecord>>,
    pub queue_ids: OnceCell<Vec<i64>>,
}

/// Organization-wide only: filters by agent are the subscribers' own.
impl Notice for PresenceNotice {
    const FEED: &'static str = "presence";
    const BUFFERS: Buffers = Buffers { organization: 1024, agent: 1 };
}

impl Routed for PresenceNotice {
    fn routes(&self) -> impl Iterator<Item = Route> + '_ {
        iter::once(Route::Organization(self.change.organization_id))
    }
}

/// Presence in its database spelling (`ONLINE`/`OFFLINE`), the same on the wire.
mod presence_text {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    use crate::presence::model::Presence;

    pub fn serialize<S: Serializer>(presence: &Presence, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(presence.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Presence, D::Error> {
        let text = String::deserialize(deserializer)?;
        Presence::parse(&text).ok_or_else(|| D::Error::custom(format!("unknown presence {text}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_round_trip_in_their_database_spelling() {
        let change = PresenceChange {
            organization_id: 1,
            agent_id: 2,
            status: Presence::Online,
            previous: Presence::Offline,
            reason: Some(PresenceReason::TtlExpired),
            at: Utc::now(),
        };
        let text = serde_json::to_string(&change).unwrap();
        assert!(text.contains("\"ONLINE\""), "{text}");
        assert!(text.contains("\"TTL_EXPIRED\""), "{text}");
        assert_eq!(serde_json::from_str::<PresenceChange>(&text).unwrap(), change);
    }
}
