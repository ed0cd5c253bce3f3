use async_graphql::{ComplexObject, Context, ID, InputObject, MaybeUndefined, Object, SimpleObject};

use super::{
    agent::Agent,
    enums::AgentRole,
    input::{agent_ids, queue_ids},
    queue::Queue,
};
use crate::{
    auth::guard::RoleGuard,
    directory::{
        model::{AgentRecord, QueueRecord},
        service::{self, AgentChanges, Membership, NewAgent},
    },
    graphql::{
        ContextExt, UserError, for_payload, for_query,
        id::{self, NodeKind},
    },
};

#[derive(InputObject)]
pub struct CreateAgentInput {
    display_name: String,
    username: String,
    password: String,
    email: Option<String>,
    #[graphql(default_with = "AgentRole::Agent")]
    role: AgentRole,
    queue_ids: Option<Vec<ID>>,
    #[graphql(default = false)]
    show_real_phone_numbers: bool,
    /// Null or absent: unlimited.
    max_concurrent_sessions: Option<i32>,
}

/// Absent fields stay as they are. `email: null` clears the e-mail;
/// `maxConcurrentSessions: null` makes it unlimited; `newPassword: ""` keeps the password
/// (the edit dialog's "leave it blank").
#[derive(InputObject)]
pub struct UpdateAgentInput {
    id: ID,
    display_name: Option<String>,
    new_password: Option<String>,
    email: MaybeUndefined<String>,
    show_real_phone_numbers: Option<bool>,
    max_concurrent_sessions: MaybeUndefined<i32>,
    enabled: Option<bool>,
    role: Option<AgentRole>,
    /// Replaces the agent's queues.
    queue_ids: Option<Vec<ID>>,
}

#[derive(InputObject)]
pub struct CreateQueueInput {
    name: String,
}

#[derive(InputObject)]
pub struct UpdateQueueInput {
    id: ID,
    name: Option<String>,
}

#[derive(SimpleObject)]
pub struct AgentPayload {
    agent: Option<Agent>,
    user_errors: Vec<UserError>,
}

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct SetAgentsEnabledPayload {
    #[graphql(skip)]
    agent_ids: Vec<i64>,
    /// How many actually changed (enabling an enabled agent changes nothing).
    affected_count: u64,
    user_errors: Vec<UserError>,
}

#[ComplexObject]
impl SetAgentsEnabledPayload {
    /// The named agents in their new state, in the order given. Read only when asked for.
    async fn agents(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Agent>> {
        let agents = service::agents_in_given_order(&ctx.app().db, ctx.viewer()?, &self.agent_ids).await;
        Ok(for_query(agents)?.into_iter().map(Agent::new).collect())
    }
}

#[derive(SimpleObject)]
pub struct DeleteAgentsPayload {
    deleted_ids: Vec<ID>,
    deleted_count: usize,
    user_errors: Vec<UserError>,
}

#[derive(SimpleObject)]
pub struct QueuePayload {
    queue: Option<Queue>,
    user_errors: Vec<UserError>,
}

#[derive(SimpleObject)]
pub struct DeleteQueuePayload {
    deleted_id: Option<ID>,
    user_errors: Vec<UserError>,
}

fn maybe<T>(value: MaybeUndefined<T>) -> Option<Option<T>> {
    match value {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(value) => Some(Some(value)),
    }
}

fn deleted_payload(outcome: Result<Vec<i64>, Vec<UserError>>) -> DeleteAgentsPayload {
    match outcome {
        Ok(ids) => DeleteAgentsPayload {
            deleted_count: ids.len(),
            deleted_ids: ids.into_iter().map(|id| id::encode(NodeKind::Agent, id)).collect(),
            user_errors: vec![],
        },
        Err(user_errors) => DeleteAgentsPayload { deleted_ids: vec![], deleted_count: 0, user_errors },
    }
}

fn queue_payload(outcome: Result<QueueRecord, Vec<UserError>>) -> QueuePayload {
    match outcome {
        Ok(queue) => QueuePayload { queue: Some(Queue::new(queue)), user_errors: vec![] },
        Err(user_errors) => QueuePayload { queue: None, user_errors },
    }
}

fn agent_payload(outcome: Result<AgentRecord, Vec<UserError>>) -> AgentPayload {
    match outcome {
        Ok(agent) => AgentPayload { agent: Some(Agent::new(agent)), user_errors: vec![] },
        Err(user_errors) => AgentPayload { agent: None, user_errors },
    }
}

#[derive(Default)]
pub struct DirectoryMutation;

#[Object]
impl DirectoryMutation {
    /// Creates an agent; it uses one seat.
    #[graphql(guard = "RoleGuard::Admin")]
    async fn create_agent(
        &self,
        ctx: &Context<'_>,
        input: CreateAgentInput,
    ) -> async_graphql::Result<AgentPayload> {
        let (app, viewer) = (ctx.app(), ctx.viewer()?);
        let new = NewAgent {
            display_name: input.display_name,
            username: input.username,
            password: input.password,
            email: input.email,
            role: input.role.into(),
            queue_ids: input.queue_ids.as_deref().map(queue_ids).unwrap_or_default(),
            show_real_phone_numbers: input.show_real_phone_numbers,
            max_concurrent_sessions: input.max_concurrent_sessions,
        };
        for_payload(
            service::create_agent(&app.db, &app.bus, &app.hasher, viewer, ctx.client_address(), new).await,
        )
        .map(agent_payload)
    }

    /// Changes an agent. An AGENT may change its own display name, password and e-mail only.
    #[graphql(guard = "RoleGuard::SignedIn")]
    async fn update_agent(
        &self,
        ctx: &Context<'_>,
        input: UpdateAgentInput,
    ) -> async_graphql::Result<AgentPayload> {
        let (app, viewer) = (ctx.app(), ctx.viewer()?);
        let changes = AgentChanges {
            display_name: input.display_name,
            new_password: input.new_password,
            email: maybe(input.email),
            show_real_phone_numbers: input.show_real_phone_numbers,
            max_concurrent_sessions: maybe(input.max_concurrent_sessions),
            enabled: input.enabled,
            role: input.role.map(Into::into),
            queue_ids: input.queue_ids.as_deref().map(queue_ids),
        };
        let agent_id = id::decode_as(&input.id, NodeKind::Agent);
        for_payload(
            service::update_agent(
                &app.db,
                &app.bus,
                &app.hasher,
                viewer,
                ctx.client_address(),
                agent_id,
                changes,
            )
            .await,
        )
        .map(agent_payload)
    }

    /// Deletes one agent; see `deleteAgents`.
    #[graphql(guard = "RoleGuard::Admin")]
    async fn delete_agent(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<DeleteAgentsPayload> {
        let (app, viewer) = (ctx.app(), ctx.viewer()?);
        let outcome = for_payload(
            service::delete_agents(&app.db, &app.bus, viewer, ctx.client_address(), &agent_ids(&[id])).await,
        )?;
        // The bulk rules speak of `ids.0`; this mutation's argument is `id`.
        Ok(deleted_payload(outcome.map_err(|errors| {
            errors
                .into_iter()
                .map(|error| UserError { field: error.field.map(|_| vec!["id".to_owned()]), ..error })
                .collect()
        })))
    }

    /// Enables or disables agents, all or none. Disabling signs them out at once.
    #[graphql(guard = "RoleGuard::Admin")]
    async fn set_agents_enabled(
        &self,
        ctx: &Context<'_>,
        ids: Vec<ID>,
        enabled: bool,
    ) -> async_graphql::Result<SetAgentsEnabledPayload> {
        let (app, viewer) = (ctx.app(), ctx.viewer()?);
        let outcome = for_payload(
            service::set_agents_enabled(
                &app.db,
                &app.bus,
                viewer,
                ctx.client_address(),
                &agent_ids(&ids),
                enabled,
            )
            .await,
        )?;
        Ok(match outcome {
            Ok(change) => SetAgentsEnabledPayload {
                agent_ids: change.agent_ids,
                affected_count: change.affected,
                user_errors: vec![],
            },
            Err(user_errors) => SetAgentsEnabledPayload { agent_ids: vec![], affected_count: 0, user_errors },
        })
    }

    /// Deletes agents, all or none: their seats are freed, they are signed out, and the
    /// conversations they handled keep them in their history.
    #[graphql(guard = "RoleGuard::Admin")]
    async fn delete_agents(
        &self,
        ctx: &Context<'_>,
        ids: Vec<ID>,
    ) -> async_graphql::Result<DeleteAgentsPayload> {
        let (app, viewer) = (ctx.app(), ctx.viewer()?);
        for_payload(
            service::delete_agents(&app.db, &app.bus, viewer, ctx.client_address(), &agent_ids(&ids)).await,
        )
        .map(deleted_payload)
    }

    #[graphql(guard = "RoleGuard::Admin")]
    async fn create_queue(
        &self,
        ctx: &Context<'_>,
        input: CreateQueueInput,
    ) -> async_graphql::Result<QueuePayload> {
        let (app, viewer) = (ctx.app(), ctx.viewer()?);
        for_payload(service::create_queue(&app.db, viewer, ctx.client_address(), &input.name).await)
            .map(queue_payload)
    }

    #[graphql(guard = "RoleGuard::Admin")]
    async fn update_queue(
        &self,
        ctx: &Context<'_>,
        input: UpdateQueueInput,
    ) -> async_graphql::Result<QueuePayload> {
        let (app, viewer) = (ctx.app(), ctx.viewer()?);
        let queue_id = id::decode_as(&input.id, NodeKind::Queue);
        for_payload(
            service::rename_queue(
                &app.db,
                &app.bus,
                viewer,
                ctx.client_address(),
                queue_id,
                input.name.as_deref(),
            )
            .await,
        )
        .map(queue_payload)
    }

    /// Deletes a queue. While conversations wait in it, `moveWaitingTo` must name another
    /// queue of the organization: they move there (and are routed) as the queue goes;
    /// without it the deletion is refused (`QUEUE_HAS_WAITING_CONVERSATIONS`).
    #[graphql(guard = "RoleGuard::Admin")]
    async fn delete_queue(
        &self,
        ctx: &Context<'_>,
        id: ID,
        move_waiting_to: Option<ID>,
    ) -> async_graphql::Result<DeleteQueuePayload> {
        let (app, viewer) = (ctx.app(), ctx.viewer()?);
        let queue_id = id::decode_as(&id, NodeKind::Queue);
        let target = move_waiting_to.map(|target| id::decode_as(&target, NodeKind::Queue));
        let outcome =
            service::delete_queue(&app.db, &app.bus, viewer, ctx.client_address(), queue_id, target).await;
        Ok(match for_payload(outcome)? {
            Ok(id) => {
                DeleteQueuePayload { deleted_id: Some(id::encode(NodeKind::Queue, id)), user_errors: vec![] }
            }
            Err(user_errors) => DeleteQueuePayload { deleted_id: None, user_errors },
        })
    }

    /// Adds agents to a queue, all or none; members already in it stay.
    #[graphql(guard = "RoleGuard::Admin")]
    async fn add_agents_to_queue(
        &self,
        ctx: &Context<'_>,
        queue_id: ID,
        agent_ids: Vec<ID>,
    ) -> async_graphql::Result<QueuePayload> {
        change_membership(ctx, queue_id, agent_ids, Membership::Add).await
    }

    /// Removes agents from a queue, all or none.
    #[graphql(guard = "RoleGuard::Admin")]
    async fn remove_agents_from_queue(
        &self,
        ctx: &Context<'_>,
        queue_id: ID,
        agent_ids: Vec<ID>,
    ) -> async_graphql::Result<QueuePayload> {
        change_membership(ctx, queue_id, agent_ids, Membership::Remove).await
    }
}

async fn change_membership(
    ctx: &Context<'_>,
    queue_id: ID,
    agents: Vec<ID>,
    change: Membership,
) -> async_graphql::Result<QueuePayload> {
    let (app, viewer) = (ctx.app(), ctx.viewer()?);
    let queue_id = id::decode_as(&queue_id, NodeKind::Queue);
    let outcome = service::change_membership(
        &app.db,
        &app.bus,
        viewer,
        ctx.client_address(),
        queue_id,
        &agent_ids(&agents),
        change,
    )
    .await;
    for_payload(outcome).map(queue_payload)
}
