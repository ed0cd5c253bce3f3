//! The merged roots and the schema built from them, with the limits every document is held
//! to.

use async_graphql::{MergedObject, MergedSubscription, Schema};

use super::node;
use crate::{audit, auth, config::Config, directory, presence, routing, state::AppState};

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
