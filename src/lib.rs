//! agentdesk: the GraphQL API behind the Agents page of a live-chat customer-service product.
//!
//! Layers, outer to inner: `app` (start-up) → `http` (transport) → `api` (the assembled
//! schema) → each capability's `schema` → its `service` (rules) → its `store` (SQL) → `db`.
//! The capabilities share `graphql` (the kit: context, errors, ids, pagination), `events`,
//! `state` and `viewer`; below their GraphQL types they use each other one way only (README,
//! Layout). `tests/architecture.rs` enforces the arrows.

pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod config;
pub mod db;
pub mod directory;
pub mod events;
pub mod graphql;
mod http;
mod jobs;
pub mod phone;
pub mod presence;
pub mod routing;
mod spelling;
pub mod state;
pub mod telemetry;
pub mod viewer;

/// mimalloc rather than glibc's malloc: a fan-out to 10,000 sockets spent 13% of the server's
/// time in malloc and free, and with mimalloc its CPU per change fell by ~17%
/// (BENCHMARKS.md). Set here rather than in `main` so that every program built on the server
/// (the benchmarks, the integration tests) runs with the allocator production runs with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
