use std::{fmt, time::Duration};

use chrono::{DateTime, Utc};

use crate::config::Config;

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
