//! Transport only: turns HTTP and WebSocket traffic into GraphQL requests with the viewer
//! attached, and serves GraphiQL, the Agents page, the health endpoints and the metrics. No
//! SQL and no rules here.

mod agents_page;
mod embedded;
mod graphiql;
mod graphql;
mod health;
mod persisted;
mod request_id;
mod serve;
mod websocket;

use axum::{
    Router,
    extract::DefaultBodyLimit,
    extract::State,
    http::{
        HeaderMap, StatusCode,
        header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE},
    },
    response::{IntoResponse, Response},
    routing::get,
};

pub use serve::serve;

use crate::{
    api::{AppSchema, SubscriptionExecutor},
    auth::token,
    graphql::ParsedDocuments,
    state::AppState,
};

pub fn router(state: AppState, schema: AppSchema) -> Router {
    let body_limit = state.config.max_body_bytes;
    let documents = std::sync::Arc::new(ParsedDocuments::default());
    Router::new()
        .route("/", get(graphiql::page))
        .route(graphiql::ASSETS, get(graphiql::asset))
        .route("/agents", get(agents_page::index))
        .route("/agents/{*path}", get(agents_page::asset))
        .route("/graphql", get(graphql::get).post(graphql::post))
        .route("/graphql/ws", get(websocket::upgrade))
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn(request_id::layer))
        .with_state(HttpState {
            subscriptions: SubscriptionExecutor::new(
                schema.clone(),
                state.metrics.clone(),
                documents.clone(),
            ),
            app: state,
            schema,
            persisted: std::sync::Arc::new(persisted::PersistedQueries::new()),
            documents,
        })
}

#[derive(Clone)]
pub(crate) struct HttpState {
    app: AppState,
    schema: AppSchema,
    /// Runs `/graphql/ws` subscriptions, shared between the sockets that ask the same.
    subscriptions: SubscriptionExecutor,
    /// Automatic persisted queries of `/graphql`, shared by every request.
    persisted: std::sync::Arc<persisted::PersistedQueries>,
    /// Parsed documents of `/graphql` and `/graphql/ws`, shared by every request.
    documents: std::sync::Arc<ParsedDocuments>,
}

/// Prometheus scrapes this; the text format is OpenMetrics, which Prometheus reads natively.
/// With `--metrics-token`, only a request bearing it may.
async fn metrics(State(state): State<HttpState>, headers: HeaderMap) -> Response {
    if let Some(expected) = &state.app.config.metrics_token
        && !bearer_from_headers(&headers).is_some_and(|given| same_secret(given, expected))
    {
        return (StatusCode::UNAUTHORIZED, [(WWW_AUTHENTICATE, "Bearer")], "Send the metrics token.")
            .into_response();
    }
    match state.app.metrics.render() {
        Ok(text) => ([(CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text)
            .into_response(),
        Err(error) => {
            tracing::error!(%error, "encoding the metrics failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The token of `Bearer <token>`; the scheme is matched case-insensitively.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Compared as digests, so the time taken tells nothing about how much of the secret matched.
fn same_secret(given: &str, expected: &str) -> bool {
    token::hash(given) == token::hash(expected)
}

fn bearer_from_headers(headers: &HeaderMap) -> Option<&str> {
    headers.get(AUTHORIZATION)?.to_str().ok().and_then(bearer_token)
}
