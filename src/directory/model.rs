//! Values that can only hold what the rules allow: construct them with `parse` and the rest of
//! the code never checks again.

use std::{fmt, sync::Arc};

use chrono::{DateTime, Utc};

use crate::{auth::model::login_key, db::page::Page, viewer::Role};

/// 3–64 characters of `[a-z0-9._-]`, stored lower-case; input is accepted in any case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Option<Self> {
        let lower = login_key(raw);
        let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-');
        ((3..=64).contains(&lower.len()) && lower.chars().all(allowed)).then_some(Self(lower))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisplayNameProblem {
    Required,
    TooLong,
}

/// 1–100 characters after trimming.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(raw: &str) -> Result<Self, DisplayNameProblem> {
        let trimmed = raw.trim();
        match trimmed.chars().count() {
            0 => Err(DisplayNameProblem::Required),
            n if n > Self::MAX_CHARS => Err(DisplayNameProblem::TooLong),
            _ => Ok(Self(trimmed.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A syntactically valid e-mail address (RFC 5322 addr-spec), at most 254 bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Option<Self> {
        let trimmed = raw.trim();
        (trimmed.len() <= 254 && email_address::EmailAddress::is_valid(trimmed))
            .then(|| Self(trimmed.to_owned()))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// How many conversations an agent may hold at once: 1–1000, or unlimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxConcurrentSessions(Option<i32>);

impl MaxConcurrentSessions {
    pub const UNLIMITED: Self = Self(None);

    /// None for a number outside 1–1000.
    pub fn parse(raw: Option<i32>) -> Option<Self> {
        match raw {
            None => Some(Self::UNLIMITED),
            Some(limit) => (1..=1000).contains(&limit).then_some(Self(Some(limit))),
        }
    }

    pub fn get(self) -> Option<i32> {
        self.0
    }
}

/// 1–100 characters after trimming; unique in the organization case-insensitively.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueName(String);

impl QueueName {
    pub fn parse(raw: &str) -> Option<Self> {
        let trimmed = raw.trim();
        (1..=100).contains(&trimmed.chars().count()).then(|| Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What uniqueness is decided on.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

/// An organization's slug: what agents type to sign in. 2–64 of `[a-z0-9-]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slug(String);

impl Slug {
    pub fn parse(raw: &str) -> Option<Self> {
        let lower = login_key(raw);
        let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
        ((2..=64).contains(&lower.len()) && lower.chars().all(allowed)).then_some(Self(lower))
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The first letter of a display name, upper-cased the Unicode way ("ß" becomes "SS").
pub fn avatar_initial(display_name: &str) -> String {
    display_name.trim().chars().next().map(|c| c.to_uppercase().collect()).unwrap_or_default()
}

/// What an agent listing may be narrowed to.
#[derive(Clone, Debug, Default)]
pub struct AgentFilter {
    /// Case-insensitive substring of display name, username or e-mail.
    pub search: Option<String>,
    pub enabled: Option<bool>,
    pub presence: Option<crate::presence::model::Presence>,
    pub queue_id: Option<i64>,
    pub role: Option<Role>,
}

impl AgentFilter {
    /// The text searched for; blank searches for nothing.
    pub fn search_term(&self) -> Option<&str> {
        self.search.as_deref().map(str::trim).filter(|term| !term.is_empty())
    }

    /// Whether it leaves out any live agent.
    pub fn narrows(&self) -> bool {
        self.search_term().is_some()
            || self.enabled.is_some()
            || self.presence.is_some()
            || self.queue_id.is_some()
            || self.role.is_some()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AgentSortField {
    DisplayName,
    Username,
    CreatedAt,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AgentOrder {
    pub field: AgentSortField,
    pub descending: bool,
}

impl Default for AgentOrder {
    fn default() -> Self {
        Self { field: AgentSortField::DisplayName, descending: false }
    }
}

/// An agent as it is shown: no secret. Presence and sign-in show it too, from below the
/// directory, so its one definition lives with the agents table.
pub use crate::db::entities::agent::{AgentCard, AgentDetails, AgentRecord};

/// What a page of the directory reads beyond its agents' cards, each only when shown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AgentPageReads {
    /// The agents' `AgentDetails`.
    pub details: bool,
    /// How many agents match the filter on all pages.
    pub total: bool,
    /// The agents' live queues.
    pub queues: bool,
}

/// One agent of a page as read: its card, and what else the page asked for.
pub struct PageAgent {
    pub card: AgentCard,
    pub details: Option<AgentDetails>,
    /// Its live queues in name order, when asked.
    pub queues: Option<Vec<Arc<QueueRecord>>>,
}

/// A page of the directory as read.
pub struct AgentPage {
    pub agents: Page<PageAgent>,
    /// How many agents match the filter, when asked: read in the page's own statement, so
    /// it agrees with the page. None when not asked, or when the page came back empty (no
    /// row to carry it).
    pub total: Option<u64>,
}

/// An organization as its rules and its operator read it. The store maps rows to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrganizationRecord {
    pub id: i64,
    pub name: String,
    pub slug: String,
    pub seat_limit: i32,
    pub human_agent_service_enabled: bool,
    /// Live agents, each holding a seat.
    pub agent_count: i64,
}

/// A queue as it is shown. The store maps rows to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueRecord {
    pub id: i64,
    pub name: String,
    /// `name` lower-cased: what queues are ordered and kept unique by.
    pub name_key: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An agent the rules let in: its fields parsed, its password hashed. A new agent is enabled
/// and OFFLINE, and takes one of its organization's seats.
pub struct AgentToCreate {
    pub organization_id: i64,
    pub username: Username,
    pub display_name: String,
    pub email: Option<String>,
    pub role: Role,
    pub password_hash: String,
    pub show_real_phone_numbers: bool,
    pub max_concurrent_sessions: Option<i32>,
    pub at: DateTime<Utc>,
}

/// An organization the rules let in. It starts serving conversations, with no agent yet.
pub struct OrganizationToCreate {
    pub name: DisplayName,
    pub slug: Slug,
    pub seat_limit: i32,
    pub at: DateTime<Utc>,
}

/// A queue the rules let in: its name free in its organization.
pub struct QueueToCreate {
    pub organization_id: i64,
    pub name: QueueName,
    pub at: DateTime<Utc>,
}

/// What an update writes to an agent's row; None leaves a field as it is.
pub struct AgentUpdate {
    pub display_name: Option<String>,
    pub password_hash: Option<String>,
    /// `Some(None)` clears it.
    pub email: Option<Option<String>>,
    /// `Some(None)` is unlimited.
    pub max_concurrent_sessions: Option<Option<i32>>,
    pub show_real_phone_numbers: Option<bool>,
    pub role: Option<Role>,
    pub enabled: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_concurrent_sessions_is_1_to_1000_or_unlimited() {
        assert_eq!(MaxConcurrentSessions::parse(None), Some(MaxConcurrentSessions::UNLIMITED));
        assert_eq!(MaxConcurrentSessions::parse(Some(1)).map(MaxConcurrentSessions::get), Some(Some(1)));
        assert_eq!(
            MaxConcurrentSessions::parse(Some(1000)).map(MaxConcurrentSessions::get),
            Some(Some(1000))
        );
        assert!(MaxConcurrentSessions::parse(Some(0)).is_none());
        assert!(MaxConcurrentSessions::parse(Some(1001)).is_none());
    }

    #[test]
    fn queue_names_are_trimmed_and_keyed_case_insensitively() {
        let name = QueueName::parse("  Billing EU ").unwrap();
        assert_eq!(name.as_str(), "Billing EU");
        assert_eq!(name.key(), "billing eu");
        assert!(QueueName::parse(" ").is_none());
        assert!(QueueName::parse(&"q".repeat(101)).is_none());
    }

    #[test]
    fn usernames_are_lower_cased_and_restricted() {
        assert_eq!(Username::parse(" Jane.Doe_1 ").unwrap().as_str(), "jane.doe_1");
        // "\u{212A}" is the Kelvin sign, which Unicode lower-cases to an ASCII "k".
        for bad in ["ab", "jane doe", "jané", "jane@x", "\u{212A}elly", &"a".repeat(65)] {
            assert!(Username::parse(bad).is_none(), "{bad}");
        }
        assert!(Username::parse(&"a".repeat(64)).is_some());
    }

    #[test]
    fn display_names_are_trimmed_and_counted_in_characters() {
        assert_eq!(DisplayName::parse("  Ana  ").unwrap().as_str(), "Ana");
        assert_eq!(DisplayName::parse("   "), Err(DisplayNameProblem::Required));
        assert!(DisplayName::parse(&"é".repeat(100)).is_ok());
        assert_eq!(DisplayName::parse(&"é".repeat(101)), Err(DisplayNameProblem::TooLong));
    }

    #[test]
    fn emails_must_be_addresses() {
        assert!(Email::parse("ana@example.com").is_some());
        for bad in ["ana", "ana@", "@example.com", "a b@example.com"] {
            assert!(Email::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn avatar_initial_is_unicode_aware() {
        assert_eq!(avatar_initial("émile"), "É");
        assert_eq!(avatar_initial("ßen"), "SS");
        assert_eq!(avatar_initial("李雷"), "李");
    }
}
