//! Schema assembly: each capability contributes its Query / Mutation roots, merged here, with
//! the limits every document is held to.

mod context;
mod document;
mod error;
pub mod id;
mod node;
pub mod pagination;
mod shared_subscriptions;

use async_graphql::{MergedObject, MergedSubscription, Schema};

pub use context::{ContextExt, RequestContext};
pub use document::{is_subscription, operation_name, refuse_unless_read_only};
pub use error::{ApiError, UserError, UserErrorCode, for_payload, for_query};
pub use shared_subscriptions::{
    Ending, Membership, Operation, Recipient, ResponseJson, Responses, SubscriptionExecutor, UNREAD_LIMIT,
};

use crate::{app::AppState, audit, auth, config::Config, directory, presence, routing};

#[derive(MergedObject, Default)]
pub struct Query(
    auth::schema::AuthQuery,
    directory::schema::DirectoryQuery,
    routing::schema::RoutingQuery,
    node::NodeQuery,
    audit::schema::AuditQuery,
);

#[derive(MergedObject, Default)]
pub struct Mutation(
    auth::schema::AuthMutation,
    directory::schema::DirectoryMutation,
    presence::schema::PresenceMutation,
    routing::schema::RoutingMutation,
);

#[derive(MergedSubscription, Default)]
pub struct Subscription(
    presence::schema::PresenceSubscription,
    directory::schema::DirectorySubscription,
    routing::schema::RoutingSubscription,
);

pub type AppSchema = Schema<Query, Mutation, Subscription>;

pub fn build(config: &Config, state: Option<AppState>) -> AppSchema {
    let builder = Schema::build(Query::default(), Mutation::default(), Subscription::default())
        .limit_depth(config.max_query_depth)
        .limit_complexity(config.max_query_complexity);
    // No extensions (see `document`): the GET rule and the operation metrics run around
    // `execute`, in the HTTP handler.
    match state {
        Some(state) => builder.data(state).finish(),
        None => builder.finish(),
    }
}

/// The SDL of the schema, as committed in `schema.graphql`.
pub fn sdl() -> String {
    build(&Config::defaults(), None).sdl()
}

#[cfg(test)]
mod tests {
    /// `schema.graphql` is what frontends generate types from; it must be the code's schema.
    #[test]
    fn schema_file_matches_the_code() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == super::sdl(),
            "schema.graphql is out of date: run `cargo run -- schema > schema.graphql`"
        );
    }
}
