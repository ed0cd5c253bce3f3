use std::{fmt, time::Duration};

use chrono::{DateTime, Utc};

use crate::{
    config::Config,
    db::entities::agent::{self, Role},
};

/// How long a session lives: since its last use, and since its sign-in. None: no limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionLifetime {
    pub idle: Option<Duration>,
    pub max_age: Option<Duration>,
}

impl SessionLifetime {
    /// The configured limits, where zero means none.
    pub fn from_config(config: &Config) -> Self {
        let limit = |duration: Duration| (!duration.is_zero()).then_some(duration);
        Self { idle: limit(config.session_idle_timeout), max_age: limit(config.session_max_age) }
    }

    /// When a session signed in at `created_at` and last used at `last_seen_at` ends; None:
    /// never.
    pub fn expiry(&self, created_at: DateTime<Utc>, last_seen_at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // A limit too far out to add is no limit.
        let after = |from: DateTime<Utc>, limit: Option<Duration>| {
            from.checked_add_signed(chrono::Duration::from_std(limit?).ok()?)
        };
        [after(created_at, self.max_age), after(last_seen_at, self.idle)].into_iter().flatten().min()
    }
}

/// Who is asking: the signed-in agent of one organization. Every service call that reads or
/// writes tenant data takes it, so there is no way to ask without saying for whom.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Viewer {
    pub agent_id: i64,
    /// As the agent row says; the audit log keeps it with every action.
    pub username: String,
    pub organization_id: i64,
    pub role: Role,
    pub session_id: i64,
    pub show_real_phone_numbers: bool,
}

impl Viewer {
    /// The agent as the viewer of its session `session_id`.
    pub fn of(agent: &agent::Model, session_id: i64) -> Self {
        Self {
            agent_id: agent.id,
            username: agent.username.clone(),
            organization_id: agent.organization_id,
            role: agent.role,
            session_id,
            show_real_phone_numbers: agent.show_real_phone_numbers,
        }
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    pub fn audience(&self) -> Audience {
        Audience {
            organization_id: self.organization_id,
            role: self.role,
            show_real_phone_numbers: self.show_real_phone_numbers,
            agent_id: (!self.is_admin()).then_some(self.agent_id),
        }
    }
}

/// What decides what a viewer may see: viewers of one audience get the same answer to the
/// same question. ADMINs of an organization with the same phone-number permission are one
/// audience; an AGENT is its own, since it may read its own presence history and nobody
/// else's.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Audience {
    organization_id: i64,
    role: Role,
    show_real_phone_numbers: bool,
    agent_id: Option<i64>,
}

/// How a username or an organization slug is keyed, when stored and at sign-in: trimmed,
/// ASCII letters lower-cased. Only ASCII: Unicode lower-casing maps a few other characters
/// into ASCII (the Kelvin sign "K" becomes "k"), which would let a look-alike pass for an
/// existing name; left as they are, they match nothing and fail the directory's rules.
pub fn login_key(raw: &str) -> String {
    raw.trim().to_ascii_lowercase()
}

/// A password that meets the policy: at least 6 characters (Unicode scalar values), at most
/// 1024 bytes (argon2 accepts more, but an unbounded input is a cheap way to burn CPU).
#[derive(Clone)]
pub struct Password(String);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasswordProblem {
    TooShort,
    TooLong,
}

impl Password {
    pub const MIN_CHARS: usize = 6;
    pub const MAX_BYTES: usize = 1024;

    pub fn parse(raw: String) -> Result<Self, PasswordProblem> {
        if raw.len() > Self::MAX_BYTES {
            Err(PasswordProblem::TooLong)
        } else if raw.chars().count() < Self::MIN_CHARS {
            Err(PasswordProblem::TooShort)
        } else {
            Ok(Self(raw))
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Never print a password, not even by accident in a log line.
impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_characters_not_bytes() {
        assert!(Password::parse("ééééé".into()).is_err(), "5 characters in 10 bytes");
        assert!(Password::parse("éééééé".into()).is_ok());
    }

    #[test]
    fn refuses_more_than_1024_bytes() {
        assert_eq!(Password::parse("a".repeat(1025)).unwrap_err(), PasswordProblem::TooLong);
        assert!(Password::parse("a".repeat(1024)).is_ok());
    }

    #[test]
    fn debug_hides_the_secret() {
        let password = Password::parse("hunter22".into()).unwrap();
        assert!(!format!("{password:?}").contains("hunter"));
    }
}
