//! Validated sessions kept in memory, so that a request's token costs no statement. Only
//! sure answers are kept: an entry goes the moment this instance's bus delivers a notice
//! that concerns its session (`SessionsRevoked`, `ViewersChanged`), the whole cache goes when
//! notices may have been lost, and while they may be being lost (the PostgreSQL listener is
//! down) nothing is kept at all. Expiry is checked from the entry's own times; anything else
//! unsure (a miss, an expired entry, a session its last-use stamp finds gone) is the
//! database's to answer.

use std::{
    num::NonZeroUsize,
    sync::{Mutex, MutexGuard, PoisonError},
};

use chrono::{DateTime, Utc};
use lru::LruCache;

use super::events::{SessionEffect, SessionNotice};
use crate::{events::Observer, viewer::Viewer};

/// Sessions kept at most: about 300 bytes each, so a few MiB, and more signed-in devices
/// than one instance serves at once.
const MAX_SESSIONS: NonZeroUsize = NonZeroUsize::new(10_000).expect("not zero");

/// A session as its last database check found it.
#[derive(Clone)]
pub struct CachedSession {
    pub viewer: Viewer,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

/// Taken before the database is asked about a token: an answer read before a notice was
/// delivered may predate it, and is not kept.
#[derive(Clone, Copy)]
pub struct Ticket(u64);

pub struct SessionCache {
    inner: Mutex<Inner>,
}

struct Inner {
    /// By the token's hash.
    sessions: LruCache<String, CachedSession>,
    /// Notices and resyncs so far: see `Ticket`.
    generation: u64,
    /// False while notices may be being lost.
    trusted: bool,
}

impl Default for SessionCache {
    fn default() -> Self {
        let inner = Inner { sessions: LruCache::new(MAX_SESSIONS), generation: 0, trusted: true };
        Self { inner: Mutex::new(inner) }
    }
}

impl SessionCache {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing panics while holding it; the map is consistent whatever happened.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn get(&self, token_hash: &str) -> Option<CachedSession> {
        self.lock().sessions.get(token_hash).cloned()
    }

    pub fn ticket(&self) -> Ticket {
        Ticket(self.lock().generation)
    }

    /// Keeps `session`, unless a notice or resync came since `ticket` was taken.
    pub fn insert(&self, ticket: Ticket, token_hash: String, session: CachedSession) {
        let mut inner = self.lock();
        if inner.trusted && inner.generation == ticket.0 {
            inner.sessions.put(token_hash, session);
        }
    }

    /// Records a use written to the database, if the session is still kept.
    pub fn touched(&self, token_hash: &str, at: DateTime<Utc>) {
        if let Some(session) = self.lock().sessions.peek_mut(token_hash) {
            session.last_seen_at = session.last_seen_at.max(at);
        }
    }

    pub fn forget(&self, token_hash: &str) {
        self.lock().sessions.pop(token_hash);
    }

    fn clear(&self, trusted: bool) {
        let mut inner = self.lock();
        inner.sessions.clear();
        inner.generation += 1;
        inner.trusted = trusted;
    }
}

impl Observer<SessionNotice> for SessionCache {
    fn notice(&self, notice: &SessionNotice) {
        let mut inner = self.lock();
        inner.generation += 1;
        // Revocations are rare next to requests: a scan is cheaper than an index kept per agent.
        let concerned: Vec<String> = inner
            .sessions
            .iter()
            .filter(|(_, session)| {
                notice.effect_on(session.viewer.agent_id, session.viewer.session_id)
                    != SessionEffect::Unaffected
            })
            .map(|(token_hash, _)| token_hash.clone())
            .collect();
        for token_hash in concerned {
            inner.sessions.pop(&token_hash);
        }
    }

    fn resync(&self) {
        self.clear(true);
    }

    fn unsure(&self) {
        self.clear(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        auth::events::{SessionsRevoked, ViewersChanged},
        viewer::Role,
    };

    fn session(agent_id: i64, session_id: i64) -> CachedSession {
        let viewer = Viewer {
            agent_id,
            username: format!("agent{agent_id}"),
            organization_id: 1,
            role: Role::Agent,
            session_id,
            show_real_phone_numbers: false,
        };
        CachedSession { viewer, created_at: Utc::now(), last_seen_at: Utc::now() }
    }

    fn revoked(agent_ids: Vec<i64>, keep_session: Option<i64>) -> SessionNotice {
        SessionNotice::Revoked(SessionsRevoked {
            organization_id: 1,
            agent_ids,
            keep_session,
            session_ids: vec![],
            session_agent_ids: vec![],
        })
    }

    #[test]
    fn a_notice_forgets_exactly_the_sessions_it_concerns() {
        let cache = SessionCache::default();
        for (hash, agent, id) in [("a", 7, 70), ("b", 7, 71), ("c", 8, 80), ("d", 9, 90)] {
            cache.insert(cache.ticket(), hash.into(), session(agent, id));
        }
        cache.notice(&revoked(vec![7], Some(70)));
        assert!(cache.get("a").is_some(), "the kept session");
        assert!(cache.get("b").is_none());
        cache.notice(&SessionNotice::ViewersChanged(ViewersChanged {
            organization_id: 1,
            agent_ids: vec![8],
        }));
        assert!(cache.get("c").is_none());
        assert!(cache.get("d").is_some());
    }

    #[test]
    fn an_answer_read_before_a_notice_is_not_kept() {
        let cache = SessionCache::default();
        let ticket = cache.ticket();
        cache.notice(&revoked(vec![1], None));
        cache.insert(ticket, "a".into(), session(7, 70));
        assert!(cache.get("a").is_none());
    }

    #[test]
    fn nothing_is_kept_while_notices_may_be_lost() {
        let cache = SessionCache::default();
        cache.insert(cache.ticket(), "a".into(), session(7, 70));
        cache.unsure();
        assert!(cache.get("a").is_none());
        cache.insert(cache.ticket(), "a".into(), session(7, 70));
        assert!(cache.get("a").is_none(), "not until a resync");
        cache.resync();
        cache.insert(cache.ticket(), "a".into(), session(7, 70));
        assert!(cache.get("a").is_some());
    }
}
