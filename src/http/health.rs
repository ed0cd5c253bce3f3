use axum::{extract::State, http::StatusCode};

use super::HttpState;
use crate::db;

/// The process is up.
pub(super) async fn live() -> &'static str {
    "ok"
}

/// The database answers and every migration is applied.
pub(super) async fn ready(State(state): State<HttpState>) -> (StatusCode, &'static str) {
    match db::is_migrated(&state.app.db).await {
        Ok(true) => (StatusCode::OK, "ready"),
        Ok(false) => (StatusCode::SERVICE_UNAVAILABLE, "migrations pending"),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable")
        }
    }
}
