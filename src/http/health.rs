use std::time::Duration;

use axum::{extract::State, http::StatusCode};

use super::HttpState;
use crate::db::{self, Readiness};

/// A load balancer polls readiness every few seconds and must hear back in time, whatever
/// the database does (a pool waiting for a server that is down would take longer).
const ANSWER_WITHIN: Duration = Duration::from_secs(1);

/// The process is up.
pub(super) async fn live() -> &'static str {
    "ok"
}

/// The database answers within a second, every migration is applied, and (SQLite) its file
/// system has room for writes.
pub(super) async fn ready(State(state): State<HttpState>) -> (StatusCode, &'static str) {
    let unavailable = StatusCode::SERVICE_UNAVAILABLE;
    match tokio::time::timeout(ANSWER_WITHIN, db::readiness(&state.app.db)).await {
        Ok(Ok(Readiness::Ready)) => (StatusCode::OK, "ready"),
        Ok(Ok(Readiness::MigrationsPending)) => (unavailable, "migrations pending"),
        Ok(Ok(Readiness::StorageFull)) => (unavailable, "storage full"),
        Ok(Err(error)) => {
            tracing::warn!(%error, "readiness check failed");
            (unavailable, "database unreachable")
        }
        Err(_) => (unavailable, "database unreachable"),
    }
}
