//! agentdesk: the GraphQL API behind the Agents page of a live-chat customer-service product.
//!
//! Layers, outer to inner: `http` (transport) → `graphql` (schema assembly, context, errors)
//! → each capability's `schema` → its `service` (rules) → its `store` (SQL) → `db`.

pub mod app;
pub mod audit;
pub mod auth;
pub mod config;
pub mod db;
pub mod directory;
pub mod events;
pub mod graphql;
mod http;
pub mod phone;
pub mod presence;
pub mod routing;
pub mod telemetry;
