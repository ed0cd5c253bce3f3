//! `POST /graphql` and `GET /graphql`, as the GraphQL over HTTP specification has them: the
//! answer's media type follows `Accept` (`application/graphql-response+json` or
//! `application/json`, the default), a request that fails before execution has no `data`
//! (and, as `graphql-response+json`, a 400), a mutation over `GET` is a 405. Requests may
//! name their query by hash (`persisted`).

use std::net::SocketAddr;

use async_graphql::{BatchRequest, BatchResponse, ErrorExtensions, Request, ServerError, Value};
use axum::{
    Json,
    body::{Body, Bytes},
    extract::{ConnectInfo, Query, State, rejection::BytesRejection},
    http::{
        HeaderMap, HeaderValue, StatusCode, Uri,
        header::{ACCEPT, ALLOW, CACHE_CONTROL, CONTENT_TYPE},
    },
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{
    HttpState, bearer_from_headers,
    persisted::{NOT_FOUND_CODE, NOT_FOUND_MESSAGE, Outcome},
};
use crate::{
    auth::{model::SessionLifetime, service as auth},
    graphql::{
        ApiError, RequestContext, eager::Shapes, in_selection_order, operation_name, refuse_unless_read_only,
    },
    viewer::Viewer,
};

/// The media types a GraphQL response is sent as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MediaType {
    /// `application/json`: every well-formed request is answered 200, errors in the body.
    Json,
    /// `application/graphql-response+json`: the status tells a request error (4xx) from a
    /// response that executed (200).
    GraphqlResponse,
}

impl MediaType {
    const JSON: &str = "application/json";
    const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

    /// The one `Accept` prefers: `graphql-response+json` when named outright with at least the
    /// quality `application/json` gets (so `*/*` and `application/*` mean `application/json`).
    /// No `Accept`, or one that allows neither, gets `application/json`, as the specification
    /// recommends for servers that also serve older clients.
    fn negotiate(headers: &HeaderMap) -> Self {
        let ranges: Vec<(&str, f32)> = headers
            .get_all(ACCEPT)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(media_range)
            .collect();
        let quality = |media_type: &str| {
            // The most specific range that matches decides; None when none does.
            let (kind, _) = media_type.split_once('/').unwrap_or_default();
            ranges
                .iter()
                .filter_map(|&(range, quality)| {
                    let specificity = if range.eq_ignore_ascii_case(media_type) {
                        3
                    } else if range
                        .strip_suffix("/*")
                        .is_some_and(|range_kind| range_kind.eq_ignore_ascii_case(kind))
                    {
                        2
                    } else if range == "*/*" {
                        1
                    } else {
                        return None;
                    };
                    Some((specificity, quality))
                })
                .max_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)))
        };
        let json = quality(Self::JSON).map_or(0.0, |(_, quality)| quality);
        match quality(Self::GRAPHQL_RESPONSE) {
            Some((3, preferred)) if preferred > 0.0 && preferred >= json => Self::GraphqlResponse,
            _ => Self::Json,
        }
    }

    fn header(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Self::Json => "application/json; charset=utf-8",
            Self::GraphqlResponse => "application/graphql-response+json; charset=utf-8",
        })
    }
}

/// `type/subtype` and its `q` (1 when not given) of one element of `Accept`.
fn media_range(element: &str) -> Option<(&str, f32)> {
    let mut parts = element.split(';');
    let range = parts.next()?.trim();
    if range.is_empty() {
        return None;
    }
    let quality = parts
        .filter_map(|parameter| parameter.split_once('='))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
        .map_or(Some(1.0), |(_, value)| {
            value.trim().parse::<f32>().ok().filter(|q| (0.0..=1.0).contains(q))
        })?;
    Some((range, quality))
}

pub(super) async fn post(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let media = MediaType::negotiate(&headers);
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
            return transport_error(media, status, &message);
        }
    };
    if let Some(refusal) = refuse_content_type(media, &headers) {
        return refusal;
    }
    let request: BatchRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => {
            return transport_error(
                media,
                StatusCode::BAD_REQUEST,
                &format!(
                    "The body is not a GraphQL request in JSON ({{\"query\", \"variables\", \"operationName\"}}): {error}"
                ),
            );
        }
    };
    let max_batch = state.app.config.max_batch_size;
    if let BatchRequest::Batch(requests) = &request
        && requests.len() > max_batch
    {
        return transport_error(
            media,
            StatusCode::BAD_REQUEST,
            &format!("A batch may hold at most {max_batch} operations; this one has {}.", requests.len()),
        );
    }
    let operations = match request {
        BatchRequest::Single(request) => prepare(&state, request).map(Operations::Single),
        BatchRequest::Batch(requests) => requests
            .into_iter()
            .map(|request| prepare(&state, request))
            .collect::<Result<_, _>>()
            .map(Operations::Batch),
    };
    match operations {
        Ok(operations) => execute(&state, peer, &headers, media, operations).await,
        Err(message) => transport_error(media, StatusCode::BAD_REQUEST, &message),
    }
}

/// The parameters of a GraphQL request in a query string; `variables` and `extensions` are
/// JSON.
#[derive(Deserialize)]
struct GetParameters {
    #[serde(default)]
    query: String,
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
    variables: Option<String>,
    extensions: Option<String>,
}

/// Queries only: see `refuse_unless_read_only`.
pub(super) async fn get(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let media = MediaType::negotiate(&headers);
    let request = match request_from_query_string(&uri) {
        Ok(request) => request,
        Err(error) => {
            return transport_error(
                media,
                StatusCode::BAD_REQUEST,
                &format!("The query string is not a GraphQL request (?query=…&variables=…): {error}"),
            );
        }
    };
    let mut operation = match prepare(&state, request) {
        Ok(operation) => operation,
        Err(message) => return transport_error(media, StatusCode::BAD_REQUEST, &message),
    };
    if let Operation::Run(request) = &mut operation
        && let Some(refusal) = refuse_unless_read_only(request)
    {
        let mut response = answer(media, BatchResponse::Single(refusal));
        *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        response.headers_mut().insert(ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    execute(&state, peer, &headers, media, Operations::Single(operation)).await
}

fn request_from_query_string(uri: &Uri) -> Result<Request, String> {
    let Query(parameters) = Query::<GetParameters>::try_from_uri(uri).map_err(|error| error.body_text())?;
    let mut request = Request::new(parameters.query);
    request.operation_name = parameters.operation_name;
    request.variables = json_parameter(parameters.variables, "variables")?;
    request.extensions = json_parameter(parameters.extensions, "extensions")?;
    Ok(request)
}

fn json_parameter<T: serde::de::DeserializeOwned + Default>(
    text: Option<String>,
    name: &str,
) -> Result<T, String> {
    match text {
        Some(text) => {
            serde_json::from_str(&text).map_err(|error| format!("`{name}` is not a JSON object: {error}"))
        }
        None => Ok(T::default()),
    }
}

/// A POST needs `Content-Type: application/json` (UTF-8): with none it is a 400, with another
/// a 415.
fn refuse_content_type(media: MediaType, headers: &HeaderMap) -> Option<Response> {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return Some(transport_error(
            media,
            StatusCode::BAD_REQUEST,
            "Send the request with `Content-Type: application/json`.",
        ));
    };
    let text = value.to_str().unwrap_or_default();
    let mut parts = text.split(';');
    let essence = parts.next().unwrap_or_default().trim();
    let utf8 = parts.filter_map(|parameter| parameter.split_once('=')).all(|(name, value)| {
        !name.trim().eq_ignore_ascii_case("charset")
            || value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
    });
    if essence.eq_ignore_ascii_case(MediaType::JSON) && utf8 {
        return None;
    }
    Some(transport_error(
        media,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "The request body must be `application/json` in UTF-8.",
    ))
}

/// One operation as read: to run, or named by a hash the server does not know.
#[expect(clippy::large_enum_variant, reason = "one per operation, moved a few times, as BatchRequest")]
enum Operation {
    Run(Request),
    PersistedQueryNotFound,
}

#[expect(clippy::large_enum_variant, reason = "one per HTTP request, as BatchRequest")]
enum Operations {
    Single(Operation),
    Batch(Vec<Operation>),
}

/// The operation a request asks for, its query filled in from the persisted queries; Err is a
/// request the server cannot read (no query, a malformed or wrong persisted-query hash).
fn prepare(state: &HttpState, mut request: Request) -> Result<Operation, String> {
    match state.persisted.resolve(&mut request)? {
        Outcome::NotFound => Ok(Operation::PersistedQueryNotFound),
        Outcome::Ready if request.query.trim().is_empty() => Err("The request has no `query`.".to_owned()),
        Outcome::Ready => Ok(Operation::Run(request)),
    }
}

async fn execute(
    state: &HttpState,
    peer: SocketAddr,
    headers: &HeaderMap,
    media: MediaType,
    operations: Operations,
) -> Response {
    let viewer = match bearer_from_headers(headers) {
        Some(token) => match viewer_for(state, token).await {
            Ok(viewer) => viewer,
            Err(response) => return response,
        },
        None => None,
    };
    let context = RequestContext::new(viewer).with_client_address(peer.ip());
    let response = match operations {
        Operations::Single(operation) => BatchResponse::Single(execute_one(state, operation, &context).await),
        // One after the other, as async-graphql's `execute_batch` runs them.
        Operations::Batch(operations) => {
            let mut responses = Vec::with_capacity(operations.len());
            for operation in operations {
                responses.push(execute_one(state, operation, &context).await);
            }
            BatchResponse::Batch(responses)
        }
    };
    answer(media, response)
}

/// One operation, counted and traced under its name.
async fn execute_one(
    state: &HttpState,
    operation: Operation,
    context: &RequestContext,
) -> async_graphql::Response {
    let mut request = match operation {
        // Shapes per execution: they name selections by address (see `Shapes`).
        Operation::Run(request) => request.data(context.clone()).data(Shapes::default()),
        Operation::PersistedQueryNotFound => {
            let error = async_graphql::Error::new(NOT_FOUND_MESSAGE)
                .extend_with(|_, ext| ext.set("code", NOT_FOUND_CODE));
            let mut server_error = ServerError::new(error.message, None);
            server_error.extensions = error.extensions;
            return async_graphql::Response::from_errors(vec![server_error]);
        }
    };
    // Kept to put the response's keys back in selection order (see `in_selection_order`).
    let document = state.documents.parse(&mut request);
    let name = operation_name(&mut request);
    let selected_operation = request.operation_name.clone();
    let mut response =
        state.app.metrics.observe_operation(name.as_deref(), state.schema.execute(request)).await;
    if let Some(document) = &document {
        in_selection_order(&mut response, document, selected_operation.as_deref());
    }
    response
}

/// Whether the request failed before it executed (it did not parse or validate, its
/// variables did not coerce, its operation or persisted query was not found): then the
/// response has no `data`. Field errors always carry the path of their field, even those that
/// make the whole `data` null.
fn failed_before_execution(response: &async_graphql::Response) -> bool {
    response.data == Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|error| error.path.is_empty())
}

/// A response as sent: without `data` when it failed before execution.
#[derive(Serialize)]
#[serde(untagged)]
enum Sent<'a> {
    Executed(&'a async_graphql::Response),
    Refused {
        errors: &'a [ServerError],
        #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        extensions: &'a std::collections::BTreeMap<String, Value>,
    },
}

impl<'a> From<&'a async_graphql::Response> for Sent<'a> {
    fn from(response: &'a async_graphql::Response) -> Self {
        if failed_before_execution(response) {
            Sent::Refused { errors: &response.errors, extensions: &response.extensions }
        } else {
            Sent::Executed(response)
        }
    }
}

/// The HTTP response of GraphQL responses. As `graphql-response+json`, a single request that
/// failed before execution is a 400 (an unknown persisted query excepted: that is the normal
/// first step of the protocol, and Apollo's servers answer it 200 too).
fn answer(media: MediaType, response: BatchResponse) -> Response {
    let (encoded, refused) = match &response {
        BatchResponse::Single(single) => {
            let not_found = single.errors.iter().any(|error| error.message == NOT_FOUND_MESSAGE);
            (serde_json::to_vec(&Sent::from(single)), failed_before_execution(single) && !not_found)
        }
        BatchResponse::Batch(all) => {
            (serde_json::to_vec(&all.iter().map(Sent::from).collect::<Vec<_>>()), false)
        }
    };
    let encoded = match encoded {
        Ok(encoded) => encoded,
        Err(error) => {
            tracing::error!(%error, "encoding a GraphQL response failed");
            return transport_error(media, StatusCode::INTERNAL_SERVER_ERROR, "Internal server error.");
        }
    };
    let mut http = Response::new(Body::from(encoded));
    if media == MediaType::GraphqlResponse && refused {
        *http.status_mut() = StatusCode::BAD_REQUEST;
    }
    http.headers_mut().insert(CONTENT_TYPE, media.header());
    if response.is_ok()
        && let Some(cache_control) = response.cache_control().value()
        && let Ok(value) = HeaderValue::from_str(&cache_control)
    {
        http.headers_mut().insert(CACHE_CONTROL, value);
    }
    http.headers_mut().extend(response.http_headers());
    http
}

async fn viewer_for(state: &HttpState, token: &str) -> Result<Option<Viewer>, Response> {
    let lifetime = SessionLifetime::from_config(&state.app.config);
    let authenticated = auth::authenticate_request(&state.app.db, &state.app.sessions, lifetime, token).await;
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

/// A request that never reached GraphQL, answered in the GraphQL error shape (without
/// `data`) so clients need one error path.
fn transport_error(media: MediaType, status: StatusCode, message: &str) -> Response {
    let code = if status.is_server_error() { "INTERNAL" } else { "BAD_REQUEST" };
    let body = json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
    (status, [(CONTENT_TYPE, media.header())], body.to_string()).into_response()
}
