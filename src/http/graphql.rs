//! `POST /graphql` and `GET /graphql`.

use std::net::SocketAddr;

use async_graphql::{BatchRequest, BatchResponse, Request, http::parse_query_string};
use async_graphql_axum::GraphQLResponse;
use axum::{
    Json,
    body::Bytes,
    extract::{ConnectInfo, RawQuery, State, rejection::BytesRejection},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::json;

use super::{HttpState, bearer_from_headers};
use crate::{
    auth::{
        Viewer,
        model::SessionLifetime,
        service::{self as auth, SessionUse},
    },
    graphql::{ApiError, RequestContext, operation_name, refuse_unless_read_only},
};

/// How a request arrived: over `GET`, only queries may run (`refuse_unless_read_only`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Post,
}

pub(super) async fn post(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let status = rejection.status();
            let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
                format!(
                    "The request body is larger than the limit of {} bytes.",
                    state.app.config.max_body_bytes
                )
            } else {
                format!("The request body could not be read: {rejection}")
            };
            return transport_error(status, &message);
        }
    };
    let request: BatchRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => {
            return transport_error(
                StatusCode::BAD_REQUEST,
                &format!(
                    "The body is not a GraphQL request in JSON ({{\"query\", \"variables\", \"operationName\"}}): {error}"
                ),
            );
        }
    };
    if request.iter().any(|single| single.query.trim().is_empty()) {
        return transport_error(StatusCode::BAD_REQUEST, "The request has no `query`.");
    }
    let max_batch = state.app.config.max_batch_size;
    if let BatchRequest::Batch(requests) = &request
        && requests.len() > max_batch
    {
        return transport_error(
            StatusCode::BAD_REQUEST,
            &format!("A batch may hold at most {max_batch} operations; this one has {}.", requests.len()),
        );
    }
    execute(&state, peer, &headers, request, Method::Post).await
}

/// Queries only: see `refuse_unless_read_only`.
pub(super) async fn get(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    match parse_query_string(query.as_deref().unwrap_or_default()) {
        Ok(request) => execute(&state, peer, &headers, BatchRequest::Single(request), Method::Get).await,
        Err(error) => transport_error(
            StatusCode::BAD_REQUEST,
            &format!("The query string is not a GraphQL request (?query=…&variables=…): {error}"),
        ),
    }
}

async fn execute(
    state: &HttpState,
    peer: SocketAddr,
    headers: &HeaderMap,
    request: BatchRequest,
    method: Method,
) -> Response {
    let viewer = match bearer_from_headers(headers) {
        Some(token) => match viewer_for(state, token).await {
            Ok(viewer) => viewer,
            Err(response) => return response,
        },
        None => None,
    };
    let request = request.data(RequestContext::new(viewer).with_client_address(peer.ip()));
    let response = match request {
        BatchRequest::Single(request) => BatchResponse::Single(execute_one(state, request, method).await),
        // One after the other, as async-graphql's `execute_batch` runs them.
        BatchRequest::Batch(requests) => {
            let mut responses = Vec::with_capacity(requests.len());
            for request in requests {
                responses.push(execute_one(state, request, method).await);
            }
            BatchResponse::Batch(responses)
        }
    };
    GraphQLResponse(response).into_response()
}

/// One operation, counted and traced under its name.
async fn execute_one(state: &HttpState, mut request: Request, method: Method) -> async_graphql::Response {
    let name = operation_name(&mut request);
    let metrics = &state.app.metrics;
    metrics
        .observe_operation(name.as_deref(), async {
            if method == Method::Get
                && let Some(refusal) = refuse_unless_read_only(&mut request)
            {
                return refusal;
            }
            state.schema.execute(request).await
        })
        .await
}

async fn viewer_for(state: &HttpState, token: &str) -> Result<Option<Viewer>, Response> {
    let lifetime = SessionLifetime::from_config(&state.app.config);
    let authenticated = auth::authenticate(&state.app.db, lifetime, token, SessionUse::Request).await;
    authenticated.map(|found| found.map(|found| found.viewer)).map_err(|error| {
        tracing::error!(%error, "authenticating a request failed");
        // The same error as any request the database cannot take now (UNAVAILABLE).
        let error = ApiError::from(error);
        let status = match error {
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (status, Json(error.into_response())).into_response()
    })
}

/// A request that never reached GraphQL, answered in the GraphQL error shape so clients
/// need one error path.
fn transport_error(status: StatusCode, message: &str) -> Response {
    let code = if status.is_server_error() { "INTERNAL" } else { "BAD_REQUEST" };
    (status, Json(json!({ "errors": [{ "message": message, "extensions": { "code": code } }] })))
        .into_response()
}
