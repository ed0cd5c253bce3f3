//! GraphQL types and thin resolvers of the directory: read the viewer, call the service, map
//! the result. Directory errors become `userErrors` or top-level errors in `input`, and only
//! there.

mod agent;
mod enums;
mod input;
mod mutations;
mod organization;
mod queue;
mod subscription;

pub use agent::{Agent, AgentConnection, AgentQuery};
pub use enums::{AgentRole, PresenceReason, PresenceStatus};
pub use mutations::DirectoryMutation;
pub use organization::{Organization, OrganizationQuery};
pub use queue::{Queue, QueueQuery};
pub use subscription::DirectorySubscription;

#[derive(async_graphql::MergedObject, Default)]
pub struct DirectoryQuery(OrganizationQuery, AgentQuery, QueueQuery);
