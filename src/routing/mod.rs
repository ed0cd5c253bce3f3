//! Conversations and who gets them: capacity-aware assignment, waiting and re-routing, and
//! the monthly count of sessions handled.

pub mod events;
pub mod model;
pub mod schema;
pub mod service;
mod store;
