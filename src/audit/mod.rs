//! The audit log: every administrative write and every sign-in attempt, recorded in the
//! transaction of the action itself (so a refused or rolled-back action leaves no entry), and
//! readable by the organization's admins.

pub mod model;
pub mod schema;
pub mod service;
mod store;
