use chrono::Utc;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};

use super::super::{
    error::DirectoryError,
    model::{
        AgentRecord, AgentToCreate, DisplayName, OrganizationRecord, OrganizationToCreate, Slug, Username,
    },
    store,
};
use crate::{
    audit::{
        model::{Action, Entry, TargetType},
        service as audit,
    },
    auth::{Password, PasswordHasher},
    db,
    directory::events::{DirectoryChange, DirectoryChangeKind},
    events::EventBus,
    viewer::{Role, Viewer},
};

pub struct NewOrganization {
    pub name: String,
    pub slug: String,
    pub seat_limit: u32,
    pub admin_username: String,
    pub admin_password: String,
}

/// Seats of the plan and how many agent accounts use one.
#[derive(Clone, Copy, Debug)]
pub struct SeatUsage {
    pub used: u64,
    pub limit: u64,
}

impl SeatUsage {
    pub fn remaining(self) -> u64 {
        self.limit.saturating_sub(self.used)
    }

    /// At or above 80 % of the plan.
    pub fn near_limit(self) -> bool {
        self.used * 100 >= self.limit * 80
    }
}

/// Agent accounts that use a seat: every live one, enabled or not.
pub fn seats_used(organization: &OrganizationRecord) -> u64 {
    u64::try_from(organization.agent_count).unwrap_or(0)
}

pub async fn organization(db: &impl ConnectionTrait, viewer: &Viewer) -> Result<OrganizationRecord, DbErr> {
    store::find_organization(db, viewer.organization_id).await?.ok_or_else(|| {
        DbErr::RecordNotFound(format!("organization {} of a signed-in viewer", viewer.organization_id))
    })
}

pub async fn seat_usage(db: &impl ConnectionTrait, viewer: &Viewer) -> Result<SeatUsage, DbErr> {
    let organization = organization(db, viewer).await?;
    Ok(SeatUsage { used: seats_used(&organization), limit: organization.seat_limit.max(0) as u64 })
}

/// Creates an organization and its first ADMIN in one transaction.
pub async fn create_organization(
    db: &DatabaseConnection,
    hasher: &PasswordHasher,
    new: NewOrganization,
) -> Result<(OrganizationRecord, AgentRecord), DirectoryError> {
    let slug = Slug::parse(&new.slug).ok_or(DirectoryError::InvalidSlug)?;
    let username = Username::parse(&new.admin_username).ok_or(DirectoryError::InvalidUsername)?;
    let password = Password::parse(new.admin_password).map_err(DirectoryError::InvalidPassword)?;
    if !(1..=100_000).contains(&new.seat_limit) {
        return Err(DirectoryError::InvalidSeatLimit);
    }
    let name = DisplayName::parse(&new.name).map_err(|_| DirectoryError::InvalidOrganizationName)?;
    let password_hash = hasher.hash(&password).await?;

    let tx = db::begin_write(db).await?;
    if store::slug_exists(&tx, &slug.to_string()).await? {
        return Err(DirectoryError::SlugTaken);
    }
    let now = Utc::now();
    let organization = store::insert_organization(
        &tx,
        OrganizationToCreate { name, slug, seat_limit: new.seat_limit as i32, at: now },
    )
    .await?;
    let admin = store::insert_agent(
        &tx,
        AgentToCreate {
            organization_id: organization.id,
            username,
            display_name: "Administrator".to_owned(),
            email: None,
            role: Role::Admin,
            password_hash,
            show_real_phone_numbers: true,
            max_concurrent_sessions: None,
            at: now,
        },
    )
    .await?;
    tx.commit().await?;
    Ok((organization, admin))
}

/// An organization as its operator sees it.
pub struct OrganizationOverview {
    pub organization: OrganizationRecord,
    pub seats_used: u64,
}

/// Every organization, by slug.
pub async fn list_organizations(db: &impl ConnectionTrait) -> Result<Vec<OrganizationOverview>, DbErr> {
    let found = store::organizations(db).await?;
    Ok(found
        .into_iter()
        .map(|organization| OrganizationOverview { seats_used: seats_used(&organization), organization })
        .collect())
}

/// What an operator changes of an organization; None leaves a field as it is.
pub struct OrganizationChanges {
    pub slug: String,
    pub name: Option<String>,
    pub seat_limit: Option<i64>,
    pub human_agent_service_enabled: Option<bool>,
}

/// An operator's change to an organization, in one transaction, audited as the operator's.
/// A seat limit below the seats in use is allowed: creating agents is then refused until
/// some are deleted. Switching the human-agent service takes effect with the commit on every
/// instance (each request reads the switch), and the organization's agents are announced as
/// UPDATED (whether they can be given conversations changed).
pub async fn update_organization(
    db: &DatabaseConnection,
    bus: &EventBus,
    operator: &str,
    changes: OrganizationChanges,
) -> Result<OrganizationOverview, DirectoryError> {
    let name = match changes.name {
        Some(raw) => Some(DisplayName::parse(&raw).map_err(|_| DirectoryError::InvalidOrganizationName)?),
        None => None,
    };
    if changes.seat_limit.is_some_and(|seats| !(1..=100_000).contains(&seats)) {
        return Err(DirectoryError::InvalidSeatLimit);
    }
    let mut tx = bus.begin(db).await?;
    let before = store::lock_organization_by_slug(&*tx, changes.slug.trim())
        .await?
        .ok_or(DirectoryError::OrganizationNotFound)?;
    let mut changed = Vec::new();
    if name.is_some() {
        changed.push("name");
    }
    if changes.seat_limit.is_some() {
        changed.push("seatLimit");
    }
    if changes.human_agent_service_enabled.is_some() {
        changed.push("humanAgentServiceEnabled");
    }
    let organization = store::update_organization(
        &*tx,
        before.id,
        name.map(DisplayName::into_inner),
        changes.seat_limit.and_then(|seats| i32::try_from(seats).ok()),
        changes.human_agent_service_enabled,
    )
    .await?;
    if organization.human_agent_service_enabled != before.human_agent_service_enabled {
        let agents = store::live_agent_ids(&*tx, organization.id).await?;
        tx.publish_all(DirectoryChange::of_agents(organization.id, DirectoryChangeKind::Updated, &agents))
            .await?;
    }
    let entry = Entry::by_operator(operator, organization.id, Action::OrganizationUpdated)
        .on(TargetType::Organization, [organization.id]);
    audit::record(&*tx, entry.fields(changed)).await?;
    tx.commit().await?;
    let seats_used = seats_used(&organization);
    Ok(OrganizationOverview { organization, seats_used })
}

/// What first start did, for the console.
pub struct Bootstrapped {
    pub organization_slug: String,
    pub admin_username: String,
    /// Present when it was generated, so it can be shown once.
    pub generated_password: Option<String>,
}

/// On a database with no organization, creates `demo` (25 seats) with the ADMIN `admin`, so a
/// fresh start is explorable at once.
pub async fn bootstrap_if_empty(
    db: &DatabaseConnection,
    hasher: &PasswordHasher,
    password: Option<String>,
) -> Result<Option<Bootstrapped>, DirectoryError> {
    if store::count_organizations(db).await? > 0 {
        return Ok(None);
    }
    let generated_password = password.is_none().then(crate::auth::token::generate_password);
    let admin_password = password.or_else(|| generated_password.clone()).unwrap_or_default();
    let created = create_organization(
        db,
        hasher,
        NewOrganization {
            name: "Demo".into(),
            slug: "demo".into(),
            seat_limit: 25,
            admin_username: "admin".into(),
            admin_password,
        },
    )
    .await;
    let (organization, admin) = match created {
        // Another instance starting on the same database got there first.
        Err(DirectoryError::SlugTaken) => return Ok(None),
        other => other?,
    };
    Ok(Some(Bootstrapped {
        organization_slug: organization.slug,
        admin_username: admin.card.username,
        generated_password,
    }))
}
