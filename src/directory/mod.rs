//! Organizations, agents and (later) queues: who works here and what they may do.

pub mod error;
pub mod events;
pub mod loaders;
pub mod model;
pub mod schema;
pub mod service;
mod store;
