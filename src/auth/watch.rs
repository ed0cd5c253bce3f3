//! What becomes of a signed-in socket's session while it stays open: it ends (logout,
//! revocation, expiry, the agent disabled or deleted), or its agent's permissions change.
//! The transport closes the socket or re-runs its subscriptions; deciding which is ours.

use std::pin::Pin;

use chrono::{DateTime, Utc};
use futures_util::{Stream, future, stream};
use sea_orm::DatabaseConnection;

use super::events::{SessionEffect, SessionNotice};
use super::{
    model::SessionLifetime,
    service::{Authenticated, SessionUse, authenticate},
};
use crate::{
    events::{Delivery, RecvError, Subscription},
    viewer::Viewer,
};

/// How soon a session that could not be checked at its expiry is looked at again.
const RECHECK_AFTER_ERROR: chrono::Duration = chrono::Duration::seconds(1);

/// What becomes of a signed-in socket's session.
pub enum SessionChange {
    /// Logged out, expired, revoked: the socket closes.
    Ended,
    /// The agent's permissions changed: the socket runs as this viewer from now on.
    Viewer(Viewer),
}

pub type SessionChanges = Pin<Box<dyn Stream<Item = SessionChange> + Send>>;

/// A signed-in session, as its socket knows it.
pub struct WatchedSession {
    pub viewer: Viewer,
    pub token: String,
    pub expires_at: Option<DateTime<Utc>>,
}

/// The changes of `session`, read off its agent's session feed; the stream ends after
/// `Ended`. Whenever a notice concerns it, notices may have been missed (the reader fell
/// behind, the instance lost notifications, or `missed`: the feed was taken after the token
/// was checked and something was delivered in between), or the session would expire unless
/// it was used meanwhile, the token is checked again against the database: the notice says
/// that something changed, the database what.
pub fn session_changes(
    db: DatabaseConnection,
    lifetime: SessionLifetime,
    feed: Subscription<SessionNotice>,
    session: WatchedSession,
    missed: bool,
) -> SessionChanges {
    let watch = SessionWatch { db, lifetime, feed, session, check_first: missed };
    Box::pin(stream::unfold(Some(watch), |watch| async move {
        let mut watch = watch?;
        let change = watch.next_change().await;
        let ended = matches!(change, SessionChange::Ended);
        Some((change, (!ended).then_some(watch)))
    }))
}

struct SessionWatch {
    db: DatabaseConnection,
    lifetime: SessionLifetime,
    feed: Subscription<SessionNotice>,
    session: WatchedSession,
    check_first: bool,
}

impl SessionWatch {
    async fn next_change(&mut self) -> SessionChange {
        loop {
            let viewer = &self.session.viewer;
            let effect = if std::mem::take(&mut self.check_first) {
                SessionEffect::ViewerChanged
            } else {
                tokio::select! {
                delivery = self.feed.recv() => match delivery {
                    Ok(Delivery::Event(notice)) => notice.effect_on(viewer.agent_id, viewer.session_id),
                    Ok(Delivery::Resync) | Err(RecvError::Lagged(_)) => SessionEffect::ViewerChanged,
                    // The bus is gone (the server is stopping): nothing will change the session now.
                    Err(RecvError::Closed) => return future::pending().await,
                },
                () = until(self.session.expires_at) => SessionEffect::ViewerChanged,
                }
            };
            match effect {
                SessionEffect::Unaffected => {}
                SessionEffect::Ended => return SessionChange::Ended,
                SessionEffect::ViewerChanged => {
                    // Boxed: a database read is far larger than the rest of the watch, which
                    // every signed-in socket holds for its life.
                    let checking =
                        authenticate(&self.db, self.lifetime, &self.session.token, SessionUse::Recheck);
                    let checked = Box::pin(checking).await;
                    match checked {
                        Ok(None) => return SessionChange::Ended,
                        Ok(Some(Authenticated { viewer, expires_at })) => {
                            self.session.expires_at = expires_at;
                            if viewer != self.session.viewer {
                                self.session.viewer = viewer.clone();
                                return SessionChange::Viewer(viewer);
                            }
                        }
                        // A database error is not a revocation: keep the session as it is, and
                        // look again a little later if it was the expiry that asked.
                        Err(error) => {
                            tracing::warn!(%error, "could not read a socket's session again");
                            let expires_at = &mut self.session.expires_at;
                            *expires_at = expires_at.map(|_| Utc::now() + RECHECK_AFTER_ERROR);
                        }
                    }
                }
            }
        }
    }
}

/// Resolves at `instant`; never when there is none.
async fn until(instant: Option<DateTime<Utc>>) {
    match instant {
        Some(instant) => {
            let left = (instant - Utc::now()).to_std().unwrap_or_default();
            tokio::time::sleep(left).await;
        }
        None => future::pending().await,
    }
}
