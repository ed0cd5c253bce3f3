//! Live presence: what an agent's workspace reports, when it lapses (TTL, last socket
//! closed, agent disabled or deleted), and the `presenceChanged` feed. Changes travel over
//! the cluster event bus (`crate::events`), so every instance's subscribers see them.

pub mod events;
pub mod model;
pub mod schema;
pub mod service;
mod store;
