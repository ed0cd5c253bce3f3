//! Checks on a document before it runs, beyond the depth and complexity limits that
//! async-graphql enforces itself.

use std::sync::Arc;

use async_graphql::{
    ErrorExtensionValues, ServerError, ServerResult, Variables,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery},
    parser::types::{ExecutableDocument, OperationType},
};

/// Marks a request that arrived over `GET`, where only queries are allowed: a GET must be safe
/// to repeat and to prefetch, and it bypasses the CSRF protection a JSON POST body gives.
pub struct ReadOnlyTransport;

pub struct GetIsReadOnly;

impl ExtensionFactory for GetIsReadOnly {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(GetIsReadOnly)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for GetIsReadOnly {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        let over_get = ctx.data_opt::<ReadOnlyTransport>().is_some();
        if over_get && document.operations.iter().any(|(_, op)| op.node.ty != OperationType::Query) {
            let mut error =
                ServerError::new("Only queries may be sent with GET; send mutations with POST.", None);
            let mut extensions = ErrorExtensionValues::default();
            extensions.set("code", "BAD_REQUEST");
            error.extensions = Some(extensions);
            return Err(error);
        }
        Ok(document)
    }
}
