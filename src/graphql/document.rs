//! What the server reads from a request's document before it runs: whether it may run over
//! `GET`, and the name of its operation (for metrics). The depth and complexity limits are
//! async-graphql's own (see `build`).
//!
//! They work on the request before `execute`, not as an async-graphql extension: with any
//! extension registered, async-graphql sends every field through the extension chain, 18% of
//! the agents page (BENCHMARKS.md). `Request::parsed_query` keeps the parsed document in the
//! request, so the schema does not parse it again.

use async_graphql::{
    Positioned, Request, Response,
    parser::types::{DocumentOperations, ExecutableDocument, OperationDefinition, OperationType},
};

use super::ApiError;

/// None when the request may run over `GET`, else the refusal to send: only queries may, since
/// a GET must be safe to repeat and to prefetch, and it bypasses the CSRF protection a JSON
/// POST body gives. A document that does not parse is left to `execute`, which reports it.
pub fn refuse_unless_read_only(request: &mut Request) -> Option<Response> {
    let document = request.parsed_query().ok()?;
    if document.operations.iter().all(|(_, operation)| operation.node.ty == OperationType::Query) {
        return None;
    }
    let refusal = "Only queries may be sent with GET; send mutations with POST.";
    Some(ApiError::BadRequest(refusal.to_owned()).into_response())
}

/// The name the request's operation goes by: its `operationName`, or else the name of the
/// document's only operation. None for an anonymous one (or a document that does not parse).
pub fn operation_name(request: &mut Request) -> Option<String> {
    if let Some(name) = &request.operation_name {
        return Some(name.clone());
    }
    match &request.parsed_query().ok()?.operations {
        DocumentOperations::Multiple(operations) if operations.len() == 1 => {
            operations.keys().next().map(|name| name.to_string())
        }
        _ => None,
    }
}

/// The operation of the document that runs for `operation_name`: the one so named, or without
/// a name the document's only one (async-graphql refuses the others).
pub fn operation_that_runs<'a>(
    document: &'a ExecutableDocument,
    operation_name: Option<&str>,
) -> Option<&'a Positioned<OperationDefinition>> {
    let only_one = document.operations.iter().len() == 1;
    document.operations.iter().find_map(|(name, operation)| {
        let runs = operation_name.map_or(only_one, |wanted| name.is_some_and(|name| name == wanted));
        runs.then_some(operation)
    })
}

/// Whether the operation that runs is a subscription (false for a document that does not
/// parse).
pub fn is_subscription(request: &mut Request) -> bool {
    let operation_name = request.operation_name.clone();
    let Ok(document) = request.parsed_query() else { return false };
    operation_that_runs(document, operation_name.as_deref())
        .is_some_and(|operation| operation.node.ty == OperationType::Subscription)
}
