//! The Relay `Node` interface and `node(id:)`, which resolves any global ID the viewer may see.

use async_graphql::{Context, ID, Interface, Object};

use crate::{
    auth::guard::RoleGuard,
    directory::schema::{Agent, Organization, Queue},
    graphql::{
        ContextExt,
        id::{self, NodeKind},
    },
    routing::schema::Conversation,
};

#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID"))]
pub enum Node {
    Organization(Organization),
    Agent(Agent),
    Queue(Queue),
    Conversation(Conversation),
}

#[derive(Default)]
pub struct NodeQuery;

#[Object]
impl NodeQuery {
    /// Any object by its global ID; null when it does not exist or belongs to another organization.
    #[graphql(guard = "RoleGuard::SignedIn")]
    async fn node(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Node>> {
        let viewer = ctx.viewer()?;
        let Some((kind, number)) = id::decode(&id) else {
            return Ok(None);
        };
        Ok(match kind {
            NodeKind::Organization => {
                Organization::load_by_id(ctx, viewer, number).await?.map(Node::Organization)
            }
            NodeKind::Agent => Agent::load(ctx, viewer, number).await?.map(Node::Agent),
            NodeKind::Queue => Queue::load(ctx, viewer, number).await?.map(Node::Queue),
            NodeKind::Conversation => Conversation::load(ctx, number).await?.map(Node::Conversation),
            // Audit entries are read through `auditLog` only, where their admin rule lives.
            NodeKind::AuditEntry => None,
            // Sessions are read through `Agent.sessions`, where their rule lives.
            NodeKind::Session => None,
        })
    }
}
