//! Sign-in rules. Passwords are checked before anything about the account is revealed:
//! `AGENT_DISABLED` only answers a correct password, and an unknown username costs the same
//! argon2 work as a wrong password. Before either, the attempt is counted against the account
//! and the client address (see `throttle`), so a refused storm of guesses costs no hashing.

use std::{net::IpAddr, time::Duration as StdDuration};

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};
use tokio::task::JoinHandle;

use super::{
    PasswordHasher,
    cache::{CachedSession, SessionCache},
    model::{SessionLifetime, login_key},
    password::HashingError,
    store,
    throttle::{LoginThrottle, SharedQuota, ThrottleKey, Throttled},
    token,
};
use crate::{
    audit::{
        model::{Action, Entry},
        service as audit,
    },
    auth::events::SessionsRevoked,
    db::{self, entities::agent},
    events::EventBus,
    jobs::{self, FirstRun},
    viewer::Viewer,
};

/// `last_seen_at` is refreshed at most this often, so reads do not turn into writes.
const LAST_SEEN_RESOLUTION: Duration = Duration::seconds(60);

pub struct Credentials {
    pub organization_slug: String,
    pub username: String,
    pub password: String,
}

pub struct SignedIn {
    pub token: String,
    /// Without its password hash: the login's answer shows it.
    pub agent: agent::AgentRecord,
    /// Who the token stands for: the login's answer is read as this viewer.
    pub viewer: Viewer,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("The organization, username or password is incorrect.")]
    InvalidCredentials,
    #[error("This agent is disabled; ask an administrator to enable it.")]
    AgentDisabled,
    #[error("Too many sign-in attempts; try again in {} seconds.", retry_after_seconds(.0))]
    RateLimited(Throttled),
    #[error(transparent)]
    Database(#[from] DbErr),
    #[error(transparent)]
    Hashing(#[from] HashingError),
}

/// Whole seconds to wait, rounded up so that retrying after them succeeds.
pub fn retry_after_seconds(throttled: &Throttled) -> u64 {
    throttled.retry_after.as_millis().div_ceil(1000).max(1) as u64
}

pub async fn login(
    db: &DatabaseConnection,
    hasher: &PasswordHasher,
    throttle: &LoginThrottle,
    credentials: Credentials,
    client_address: Option<IpAddr>,
) -> Result<SignedIn, AuthError> {
    let slug = login_key(&credentials.organization_slug);
    let username = login_key(&credentials.username);
    let account = ThrottleKey::account(&slug, &username);
    throttle.attempt(&account, client_address).map_err(AuthError::RateLimited)?;
    for (key, quota) in throttle.shared(account, client_address) {
        take_shared_attempt(db, key, quota).await?;
    }
    let agent = store::find_agent_by_login(db, &slug, &username).await?;
    let stored_hash = agent.as_ref().map(|agent| agent.password_hash.as_str());
    let verified = hasher.verify(&credentials.password, stored_hash).await?;
    let (action, refusal) = match agent {
        Some(agent) if verified && agent.enabled => return open_session(db, agent, client_address).await,
        Some(ref agent) if verified && !agent.enabled => {
            (Action::SignInRefusedDisabled, AuthError::AgentDisabled)
        }
        _ => (Action::SignInFailed, AuthError::InvalidCredentials),
    };
    // The organization, when the slug names one, so that its admins see attempts on it.
    let organization_id = match &agent {
        Some(agent) => Some(agent.organization_id),
        None => store::find_organization_id(db, &slug).await?,
    };
    let agent_id = agent.map(|agent| agent.id);
    audit::record(db, Entry::sign_in(action, organization_id, agent_id, &username, client_address)).await?;
    Err(refusal)
}

/// Takes the attempt from an allowance that every instance shares.
async fn take_shared_attempt(
    db: &DatabaseConnection,
    key: ThrottleKey,
    quota: SharedQuota,
) -> Result<(), AuthError> {
    let key = key.to_hex();
    if store::take_login_attempt(db, key.clone(), quota).await? {
        return Ok(());
    }
    let ahead_ms = store::login_allowance_ahead_ms(db, &key).await?.unwrap_or(0);
    Err(AuthError::RateLimited(quota.refusal(ahead_ms)))
}

/// Forgets the shared sign-in allowances that are whole again: a spray of made-up usernames
/// leaves rows only for as long as they limit anything. Returns how many went.
pub async fn prune_login_allowances(db: &impl ConnectionTrait) -> Result<u64, DbErr> {
    store::prune_login_allowances(db).await
}

/// Runs `prune_login_allowances` every `interval`. Not at start-up: allowances are whole
/// again within a minute or two, so what a previous run left can wait one interval.
pub fn spawn_allowance_pruner(db: DatabaseConnection, interval: StdDuration) -> JoinHandle<()> {
    jobs::spawn_every(interval, FirstRun::AfterAnInterval, "pruning sign-in allowances", move || {
        let db = db.clone();
        async move { prune_login_allowances(&db).await }
    })
}

/// The session and its audit entry, in one transaction.
async fn open_session(
    db: &DatabaseConnection,
    agent: agent::Model,
    client_address: Option<IpAddr>,
) -> Result<SignedIn, AuthError> {
    let token = token::generate();
    let tx = db::begin_write(db).await?;
    let address = client_address.map(|address| address.to_string());
    let session_id = store::insert_session(&tx, agent.id, token.hash, address, Utc::now()).await?;
    let entry = Entry::sign_in(
        Action::SignInSucceeded,
        Some(agent.organization_id),
        Some(agent.id),
        &agent.username,
        client_address,
    );
    audit::record(&tx, entry).await?;
    tx.commit().await?;
    let viewer = Viewer {
        agent_id: agent.id,
        username: agent.username.clone(),
        organization_id: agent.organization_id,
        role: agent.role,
        session_id,
        show_real_phone_numbers: agent.show_real_phone_numbers,
    };
    Ok(SignedIn { token: token.secret, viewer, agent: agent.into() })
}

/// Ends the viewer's session; its WebSocket connections, on any instance, close.
pub async fn logout(db: &DatabaseConnection, bus: &EventBus, viewer: &Viewer) -> Result<(), DbErr> {
    let _ended = store::delete_session(db, viewer.session_id).await?;
    bus.publish(
        db,
        vec![SessionsRevoked::of_session(viewer.organization_id, viewer.agent_id, viewer.session_id)],
    )
    .await
}

/// A signed-in viewer, and when its session ends unless it is used again (None: never).
pub struct Authenticated {
    pub viewer: Viewer,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Whether a check of a token counts as a use of its session (a request does; a socket
/// looking again at the session it already holds does not).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SessionUse {
    Request,
    Recheck,
}

/// The viewer a bearer token stands for, if the token is known, its session has not expired
/// and its agent may still sign in; read from the database.
pub async fn authenticate(
    db: &impl ConnectionTrait,
    lifetime: SessionLifetime,
    token: &str,
    session_use: SessionUse,
) -> Result<Option<Authenticated>, DbErr> {
    let found = from_database(db, lifetime, &token::hash(token), session_use).await?;
    Ok(found.map(|session| authenticated(lifetime, session)))
}

/// `authenticate` for a request, answered from `cache` when it holds the token's session
/// (then without a statement, but the last-use stamp's once in a while); what the database
/// answers is kept there.
pub async fn authenticate_request(
    db: &impl ConnectionTrait,
    cache: &SessionCache,
    lifetime: SessionLifetime,
    token: &str,
) -> Result<Option<Authenticated>, DbErr> {
    let token_hash = token::hash(token);
    if let Some(cached) = cache.get(&token_hash)
        && let Some(session) = use_cached(db, cache, lifetime, &token_hash, cached).await
    {
        return Ok(Some(authenticated(lifetime, session)));
    }
    let ticket = cache.ticket();
    let found = from_database(db, lifetime, &token_hash, SessionUse::Request).await?;
    if let Some(session) = &found {
        cache.insert(ticket, token_hash, session.clone());
    }
    Ok(found.map(|session| authenticated(lifetime, session)))
}

fn authenticated(lifetime: SessionLifetime, session: CachedSession) -> Authenticated {
    Authenticated {
        expires_at: lifetime.expiry(session.created_at, session.last_seen_at),
        viewer: session.viewer,
    }
}

/// The cached session, used once more; None when the database must say: it expired (the
/// database forgets it), or its last-use stamp found it gone.
async fn use_cached(
    db: &impl ConnectionTrait,
    cache: &SessionCache,
    lifetime: SessionLifetime,
    token_hash: &str,
    mut session: CachedSession,
) -> Option<CachedSession> {
    let now = Utc::now();
    let recorded = if expired(lifetime, &session, now) {
        None
    } else {
        record_use(db, lifetime, session.viewer.session_id, session.last_seen_at, now).await
    };
    match recorded {
        Some(at) => {
            if at != session.last_seen_at {
                cache.touched(token_hash, at);
                session.last_seen_at = at;
            }
            Some(session)
        }
        None => {
            cache.forget(token_hash);
            None
        }
    }
}

fn expired(lifetime: SessionLifetime, session: &CachedSession, now: DateTime<Utc>) -> bool {
    lifetime.expiry(session.created_at, session.last_seen_at).is_some_and(|expiry| expiry <= now)
}

async fn from_database(
    db: &impl ConnectionTrait,
    lifetime: SessionLifetime,
    token_hash: &str,
    session_use: SessionUse,
) -> Result<Option<CachedSession>, DbErr> {
    let Some(found) = store::find_live_session(db, token_hash).await? else {
        return Ok(None);
    };
    let viewer = Viewer {
        agent_id: found.agent_id,
        username: found.username,
        organization_id: found.organization_id,
        role: found.role,
        session_id: found.session_id,
        show_real_phone_numbers: found.show_real_phone_numbers,
    };
    let mut session =
        CachedSession { viewer, created_at: found.created_at, last_seen_at: found.last_seen_at };
    let now = Utc::now();
    if expired(lifetime, &session, now) {
        // Forgotten at once rather than at the next prune.
        let _ended = store::delete_session(db, found.session_id).await;
        return Ok(None);
    }
    if session_use == SessionUse::Request {
        match record_use(db, lifetime, found.session_id, session.last_seen_at, now).await {
            Some(at) => session.last_seen_at = at,
            None => return Ok(None),
        }
    }
    Ok(Some(session))
}

/// Stamps a request's use of the session when its stamp is older than the resolution; when
/// the session was last used as recorded now, None when it is gone.
async fn record_use(
    db: &impl ConnectionTrait,
    lifetime: SessionLifetime,
    session_id: i64,
    last_seen_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    // Often enough that an idle limit is measured to within a quarter of itself.
    let resolution = match lifetime.idle {
        Some(idle) => LAST_SEEN_RESOLUTION.min(Duration::from_std(idle / 4).unwrap_or(LAST_SEEN_RESOLUTION)),
        None => LAST_SEEN_RESOLUTION,
    };
    if now - last_seen_at <= resolution {
        return Some(last_seen_at);
    }
    // Bookkeeping, not a condition of the read: when the database refuses the write (a full
    // disk) the request still goes on, and the next request past the resolution tries again.
    match store::touch_session(db, session_id, now).await {
        Ok(true) => Some(now),
        Ok(false) => None,
        Err(error) => {
            tracing::warn!(%error, "could not record a session's last use; retried on its next request");
            Some(last_seen_at)
        }
    }
}

/// Signs these agents out everywhere, except the session `keep`. Part of the caller's
/// transaction, so a disable or password change and the sign-out commit together.
pub async fn end_sessions(
    db: &impl ConnectionTrait,
    organization_id: i64,
    agent_ids: &[i64],
    keep: Option<i64>,
) -> Result<(), DbErr> {
    store::delete_sessions_of(db, organization_id, agent_ids, keep).await.map(drop)
}
