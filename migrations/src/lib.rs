//! Schema changes, one file per change, applied in order at start-up and by `agentdesk migrate`.
//! The same migrations run on SQLite and PostgreSQL: write them with the schema builder, or
//! with SQL both dialects accept.

pub use sea_orm_migration::prelude::*;

mod m0001_organizations_agents_sessions;
mod m0002_queues;
mod m0003_presence;
mod m0004_conversations;
mod m0005_audit_log;
mod m0006_presence_reason;
mod m0007_login_allowances;
mod m0008_session_client_address;
mod m0009_agent_order_indexes;
mod m0010_organization_agent_count;
mod m0011_presence_deadline_indexes;
mod m0012_conversation_indexes;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_organizations_agents_sessions::Migration),
            Box::new(m0002_queues::Migration),
            Box::new(m0003_presence::Migration),
            Box::new(m0004_conversations::Migration),
            Box::new(m0005_audit_log::Migration),
            Box::new(m0006_presence_reason::Migration),
            Box::new(m0007_login_allowances::Migration),
            Box::new(m0008_session_client_address::Migration),
            Box::new(m0009_agent_order_indexes::Migration),
            Box::new(m0010_organization_agent_count::Migration),
            Box::new(m0011_presence_deadline_indexes::Migration),
            Box::new(m0012_conversation_indexes::Migration),
        ]
    }
}
