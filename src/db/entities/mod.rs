//! One module per table. Enums stored as text carry their database spelling here.

pub mod agent;
pub mod audit_entry;
pub mod organization;
pub mod queue;
pub mod queue_member;
pub mod session;
