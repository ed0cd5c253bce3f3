//! One module per table. Enums stored as text carry their database spelling here.

pub mod agent;
pub mod agent_socket;
pub mod audit_entry;
pub mod conversation;
pub mod login_allowance;
pub mod organization;
pub mod presence_history;
pub mod presence_instance;
pub mod queue;
pub mod queue_member;
pub mod session;
