//! The kit every capability's GraphQL types use: the per-request context, the error model
//! (`userErrors` and top-level codes), global IDs, Relay pagination, and what is read from a
//! document before it runs. It knows no capability: the schema is assembled above them, in
//! `api`.

pub mod bounded;
mod context;
mod document;
mod documents;
pub mod eager;
mod error;
pub mod id;
mod order;
pub mod pagination;

pub use context::{ContextExt, RequestContext};
pub use document::{is_subscription, operation_name, operation_that_runs, refuse_unless_read_only};
pub use documents::ParsedDocuments;
pub use error::{ApiError, UserError, UserErrorCode, for_payload, for_query};
pub use order::in_selection_order;
