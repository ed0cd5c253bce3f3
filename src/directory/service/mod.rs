//! Directory rules: organizations, agents, queues and seats. Every function takes the viewer
//! (and so the organization) explicitly; writes validate everything first, then run in one
//! transaction, so a refused request changes nothing.

mod agents;
mod common;
mod organizations;
mod queues;
mod watch;

pub use agents::*;
pub use common::{GivenId, MAX_BULK_IDS};
pub use organizations::*;
pub use queues::*;
pub use watch::*;
