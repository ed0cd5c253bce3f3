//! Who is asking: the signed-in agent of one organization, its role, and the audience that
//! decides what it may see. Below every capability: the audit log records a viewer, the
//! GraphQL kit carries one per request, and `auth` only finds out who it is.

use crate::spelling::spelled_enum;

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

spelled_enum! {
    /// What an agent may do in its organization.
    pub enum Role {
        Admin = "ADMIN",
        Agent = "AGENT",
    }
}
