//! One module per table. Enums stored as text carry their database spelling here.

pub mod agent;
pub mod organization;
pub mod session;
