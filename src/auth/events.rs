//! What ends a session or changes a viewer, as the bus carries it: every instance's sockets
//! of the agents concerned, and its session cache, must hear it.

use serde::{Deserialize, Serialize};

use crate::events::{AGENTS_PER_EVENT, Buffers, Event, Notice, Route, Routed};

/// Sessions of one organization that ended: every session of `agent_ids` except
/// `keep_session` (a password change keeps the caller's own), and the sessions in
/// `session_ids` (logout), which are those of `session_agent_ids`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionsRevoked {
    pub organization_id: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agent_ids: Vec<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_session: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub session_ids: Vec<i64>,
    /// Where the event goes; a field of its own (rather than `session_ids` as pairs) so that
    /// instances older than routing still read `session_ids`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub session_agent_ids: Vec<i64>,
}

impl SessionsRevoked {
    /// The events announcing that these agents' sessions ended, but `keep_session`; split so
    /// every payload stays small.
    pub fn of_agents(organization_id: i64, agent_ids: &[i64], keep_session: Option<i64>) -> Vec<Self> {
        agent_ids
            .chunks(AGENTS_PER_EVENT)
            .map(|chunk| Self {
                organization_id,
                agent_ids: chunk.to_vec(),
                keep_session,
                session_ids: vec![],
                session_agent_ids: vec![],
            })
            .collect()
    }

    /// The session `session_id` of `agent_id` ended.
    pub fn of_session(organization_id: i64, agent_id: i64, session_id: i64) -> Self {
        Self {
            organization_id,
            agent_ids: vec![],
            keep_session: None,
            session_ids: vec![session_id],
            session_agent_ids: vec![agent_id],
        }
    }

    /// Whether the session `session_id` of `agent_id` is one of those that ended.
    pub fn ends(&self, agent_id: i64, session_id: i64) -> bool {
        self.session_ids.contains(&session_id)
            || (self.agent_ids.contains(&agent_id) && self.keep_session != Some(session_id))
    }
}

impl Event for SessionsRevoked {
    const KIND: &'static str = "sessions_revoked";
    type Notice = SessionNotice;

    fn into_notice(self) -> SessionNotice {
        SessionNotice::Revoked(self)
    }
}

/// Agents whose permissions changed (role, phone-number permission, queues): their sessions
/// go on, but each open socket of theirs must read its viewer again, so that what it runs
/// from then on runs as the agent is now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewersChanged {
    pub organization_id: i64,
    pub agent_ids: Vec<i64>,
}

impl ViewersChanged {
    pub fn of_agent(organization_id: i64, agent_id: i64) -> Self {
        Self { organization_id, agent_ids: vec![agent_id] }
    }
}

impl Event for ViewersChanged {
    const KIND: &'static str = "viewers_changed";
    type Notice = SessionNotice;

    fn into_notice(self) -> SessionNotice {
        SessionNotice::ViewersChanged(self)
    }
}

/// What the open sockets of signed-in viewers watch for.
pub enum SessionNotice {
    Revoked(SessionsRevoked),
    ViewersChanged(ViewersChanged),
}

/// What a session notice means to one session.
#[derive(Debug, PartialEq, Eq)]
pub enum SessionEffect {
    Ended,
    ViewerChanged,
    Unaffected,
}

impl SessionNotice {
    pub fn effect_on(&self, agent_id: i64, session_id: i64) -> SessionEffect {
        match self {
            SessionNotice::Revoked(revoked) if revoked.ends(agent_id, session_id) => SessionEffect::Ended,
            SessionNotice::ViewersChanged(changed) if changed.agent_ids.contains(&agent_id) => {
                SessionEffect::ViewerChanged
            }
            _ => SessionEffect::Unaffected,
        }
    }
}

/// One agent's session notices: a few at once, and a subscriber that falls behind only
/// checks its session again. Every signed-in agent with a socket holds one such ring.
impl Notice for SessionNotice {
    const FEED: &'static str = "sessions";
    const BUFFERS: Buffers = Buffers { organization: 1, agent: 16 };
}

/// To the sockets of the agents concerned only.
impl Routed for SessionNotice {
    fn routes(&self) -> impl Iterator<Item = Route> + '_ {
        let (organization_id, agent_ids, session_agent_ids) = match self {
            SessionNotice::Revoked(revoked) => {
                (revoked.organization_id, &revoked.agent_ids, &revoked.session_agent_ids[..])
            }
            SessionNotice::ViewersChanged(changed) => (changed.organization_id, &changed.agent_ids, &[][..]),
        };
        agent_ids
            .iter()
            .chain(session_agent_ids)
            .map(move |&agent_id| Route::Agent { organization_id, agent_id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_revocation_fits_a_notify_payload() {
        let ids: Vec<i64> = (0..1000).map(|_| i64::MAX).collect();
        let events = SessionsRevoked::of_agents(i64::MAX, &ids, Some(i64::MAX));
        assert_eq!(events.len(), 4);
        for event in events {
            assert!(serde_json::to_string(&event).unwrap().len() < 7000);
        }
    }

    #[test]
    fn revocation_keeps_the_named_session() {
        let revoked = SessionsRevoked {
            organization_id: 1,
            agent_ids: vec![7],
            keep_session: Some(70),
            session_ids: vec![90],
            session_agent_ids: vec![8],
        };
        assert!(revoked.ends(7, 71));
        assert!(!revoked.ends(7, 70));
        assert!(revoked.ends(8, 90));
        assert!(!revoked.ends(8, 91));
    }
}
