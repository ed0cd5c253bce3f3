//! The API as one schema: each capability contributes its Query, Mutation and Subscription
//! roots, merged here with the limits every document is held to (`schema`), and the executor
//! that runs subscriptions over WebSocket, sharing one execution among sockets that ask the
//! same (`subscriptions`). This is the one module that knows every capability; nothing below
//! it imports it.

mod node;
mod schema;
pub mod subscriptions;

pub use schema::{AppSchema, Mutation, Query, Subscription, build, sdl};
pub use subscriptions::{
    Ending, Membership, Operation, Recipient, ResponseJson, Responses, SubscriptionExecutor, UNREAD_LIMIT,
};
