use chrono::Utc;
use sea_orm::{ActiveValue::Set, ConnectionTrait, DatabaseConnection, DbErr, NotSet};

use super::super::{
    error::DirectoryError,
    model::{DisplayName, Slug, Username},
    store,
};
use crate::{
    auth::{Password, PasswordHasher, Viewer},
    db::{
        self,
        entities::{
            agent::{self, Presence, Role},
            organization,
        },
    },
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

pub async fn organization(db: &impl ConnectionTrait, viewer: &Viewer) -> Result<organization::Model, DbErr> {
    store::find_organization(db, viewer.organization_id).await?.ok_or_else(|| {
        DbErr::RecordNotFound(format!("organization {} of a signed-in viewer", viewer.organization_id))
    })
}

pub async fn seat_usage(db: &impl ConnectionTrait, viewer: &Viewer) -> Result<SeatUsage, DbErr> {
    let organization = organization(db, viewer).await?;
    let used = store::count_seats_used(db, viewer.organization_id).await?;
    Ok(SeatUsage { used, limit: organization.seat_limit.max(0) as u64 })
}

/// Creates an organization and its first ADMIN in one transaction.
pub async fn create_organization(
    db: &DatabaseConnection,
    hasher: &PasswordHasher,
    new: NewOrganization,
) -> Result<(organization::Model, agent::Model), DirectoryError> {
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
        organization::ActiveModel {
            id: NotSet,
            name: Set(name.into_inner()),
            slug: Set(slug.to_string()),
            seat_limit: Set(new.seat_limit as i32),
            human_agent_service_enabled: Set(true),
            created_at: Set(now),
        },
    )
    .await?;
    let admin = store::insert_agent(
        &tx,
        agent::ActiveModel {
            username: Set(username.as_str().to_owned()),
            display_name: Set("Administrator".to_owned()),
            email: Set(None),
            role: Set(Role::Admin),
            enabled: Set(true),
            password_hash: Set(password_hash),
            presence: Set(Presence::Offline),
            presence_changed_at: Set(None),
            show_real_phone_numbers: Set(true),
            max_concurrent_sessions: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            deleted_at: Set(None),
            ..Default::default()
        },
        organization.id,
    )
    .await?;
    tx.commit().await?;
    Ok((organization, admin))
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
        admin_username: admin.username,
        generated_password,
    }))
}
