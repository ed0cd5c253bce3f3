//! Transport only: turns HTTP and WebSocket traffic into GraphQL requests with the viewer
//! attached, and serves GraphiQL and the health endpoints. No SQL and no rules here.

mod graphql;
mod health;
mod websocket;

use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::{HeaderMap, header::AUTHORIZATION},
    response::Html,
    routing::get,
};

use crate::{app::AppState, graphql::AppSchema};

pub fn router(state: AppState, schema: AppSchema) -> Router {
    let body_limit = state.config.max_body_bytes;
    Router::new()
        .route("/", get(graphiql))
        .route("/graphql", get(graphql::get).post(graphql::post))
        .route("/graphql/ws", get(websocket::upgrade))
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(HttpState { app: state, schema })
}

#[derive(Clone)]
pub(crate) struct HttpState {
    app: AppState,
    schema: AppSchema,
}

async fn graphiql() -> Html<String> {
    Html(
        async_graphql::http::GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql/ws")
            .title("agentdesk")
            .finish(),
    )
}

/// The token of `Bearer <token>`; the scheme is matched case-insensitively.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn bearer_from_headers(headers: &HeaderMap) -> Option<&str> {
    headers.get(AUTHORIZATION)?.to_str().ok().and_then(bearer_token)
}
