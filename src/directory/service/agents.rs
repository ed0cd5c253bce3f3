use std::{collections::HashMap, net::IpAddr};

use chrono::Utc;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, SqlErr, Statement};

use super::common::{GivenId, Rejections, check_bulk_size, lock_serving_organization, resolve_ids};
use crate::{
    audit::{
        model::{Action, Entry, TargetType},
        service as audit,
    },
    auth::{
        Password, PasswordHasher,
        events::{SessionsRevoked, ViewersChanged},
        service as auth,
    },
    db::page::{Cursor, PageRequest},
    directory::{
        error::{DirectoryError, Field, Problem, Rejection},
        events::{DirectoryChange, DirectoryChangeKind},
        model::{
            AgentCard, AgentFilter, AgentOrder, AgentPage, AgentPageReads, AgentRecord, AgentSortField,
            AgentToCreate, AgentUpdate, DisplayName, DisplayNameProblem, Email, MaxConcurrentSessions,
            QueueRecord, Username,
        },
        store,
    },
    events::{EventBus, EventTx},
    presence::{model::PresenceReason, service as presence},
    routing::{model::RemovalImpact, service as routing},
    viewer::{Role, Viewer},
};

pub struct NewAgent {
    pub display_name: String,
    pub username: String,
    pub password: String,
    pub email: Option<String>,
    pub role: Role,
    pub queue_ids: Vec<GivenId>,
    pub show_real_phone_numbers: bool,
    pub max_concurrent_sessions: Option<i32>,
}

impl NewAgent {
    /// The API names of the fields given a value, for the audit log.
    fn given_fields(&self) -> Vec<&'static str> {
        let optional = [
            ("email", self.email.is_some()),
            ("queueIds", !self.queue_ids.is_empty()),
            ("maxConcurrentSessions", self.max_concurrent_sessions.is_some()),
        ];
        ["displayName", "username", "password", "role", "showRealPhoneNumbers"]
            .into_iter()
            .chain(optional.into_iter().filter(|(_, given)| *given).map(|(name, _)| name))
            .collect()
    }
}

/// Fields to change; None leaves a field as it is. For nullable fields, `Some(None)` clears.
#[derive(Default)]
pub struct AgentChanges {
    pub display_name: Option<String>,
    pub new_password: Option<String>,
    pub email: Option<Option<String>>,
    pub show_real_phone_numbers: Option<bool>,
    pub max_concurrent_sessions: Option<Option<i32>>,
    pub enabled: Option<bool>,
    pub role: Option<Role>,
    pub queue_ids: Option<Vec<GivenId>>,
}

impl AgentChanges {
    /// What an AGENT may change on itself; an ADMIN may change everything.
    fn only_self_service(&self) -> bool {
        self.show_real_phone_numbers.is_none()
            && self.max_concurrent_sessions.is_none()
            && self.enabled.is_none()
            && self.role.is_none()
            && self.queue_ids.is_none()
    }
}

pub struct EnabledChange {
    /// The agents named, in the order given; read them with `agents_in_given_order` if
    /// needed (a client that asks only for the count should not pay for 1,000 rows).
    pub agent_ids: Vec<i64>,
    /// Agents whose state actually changed.
    pub affected: u64,
}

// ---- reads ----

pub async fn agent(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    agent_id: i64,
) -> Result<Option<AgentRecord>, DbErr> {
    store::find_agent(db, viewer.organization_id, agent_id).await
}

/// These agents as history names them (who handled a conversation, who did what): deleted
/// ones included, with `deleted_at` set, so that history never forgets who it was. In no
/// particular order. Nothing else reads deleted agents: not the directory, not the writes,
/// not routing.
pub async fn agents_in_history(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    agent_ids: &[i64],
) -> Result<Vec<AgentRecord>, DbErr> {
    store::find_agents_including_deleted(db, viewer.organization_id, agent_ids).await
}

/// The live agents among `agent_ids`, in that order.
pub async fn agents_in_given_order(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    agent_ids: &[i64],
) -> Result<Vec<AgentRecord>, DbErr> {
    let agents = store::find_agents(db, viewer.organization_id, agent_ids).await?;
    Ok(in_given_order(agents, agent_ids.iter().copied()))
}

/// A page of agents: their cards, and what else the page shows of them and of the listing.
pub async fn agents(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    filter: &AgentFilter,
    order: AgentOrder,
    page: &PageRequest,
    reads: AgentPageReads,
) -> Result<AgentPage, DbErr> {
    store::list_agents(db, viewer.organization_id, filter, order, page, reads).await
}

pub async fn count_agents(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    filter: &AgentFilter,
) -> Result<u64, DbErr> {
    store::count_agents(db, viewer.organization_id, filter).await
}

/// The statement `agents` runs for this page, built for `backend`, without running it: for
/// the test that asks each database how it plans every order (`tests/api/query_plans.rs`).
pub fn agents_page_statement(
    backend: DbBackend,
    organization_id: i64,
    filter: &AgentFilter,
    order: AgentOrder,
    page: &PageRequest,
    reads: AgentPageReads,
) -> Statement {
    store::list_agents_statement(backend, organization_id, filter, order, page, reads)
}

/// Where an agent stands in a listing sorted by `field`.
pub fn agent_cursor(agent: &AgentCard, field: AgentSortField) -> Cursor {
    store::agent_cursor(agent, field)
}

// ---- writes ----

fn display_name_problem(problem: DisplayNameProblem) -> Problem {
    match problem {
        DisplayNameProblem::Required => Problem::DisplayNameRequired,
        DisplayNameProblem::TooLong => Problem::DisplayNameTooLong,
    }
}

/// Parses an optional e-mail: empty means none.
fn parse_email(raw: Option<String>) -> Result<Option<String>, ()> {
    match raw.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(raw) => Email::parse(raw).map(|email| Some(email.into_inner())).ok_or(()),
    }
}

/// A unique-index violation on insert means another request took the username between our
/// check and our write.
fn username_race(error: DbErr) -> DirectoryError {
    match error.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => {
            Rejection::of(Field::Username, Problem::UsernameTaken).into()
        }
        _ => error.into(),
    }
}

pub async fn create_agent(
    db: &DatabaseConnection,
    bus: &EventBus,
    hasher: &PasswordHasher,
    viewer: &Viewer,
    client_address: Option<IpAddr>,
    new: NewAgent,
) -> Result<AgentRecord, DirectoryError> {
    let audited = new.given_fields();
    let mut rejections = Rejections::default();
    let display_name =
        rejections.check(Field::DisplayName, DisplayName::parse(&new.display_name), display_name_problem);
    let username = rejections
        .check(Field::Username, Username::parse(&new.username).ok_or(()), |()| Problem::InvalidUsername);
    let password = rejections.check(Field::Password, Password::parse(new.password), Problem::Password);
    let email = rejections.check(Field::Email, parse_email(new.email), |()| Problem::InvalidEmail);
    let limit = rejections.check(
        Field::MaxConcurrentSessions,
        MaxConcurrentSessions::parse(new.max_concurrent_sessions).ok_or(()),
        |()| Problem::InvalidMaxConcurrentSessions,
    );
    rejections.finish()?;
    let (Some(display_name), Some(username), Some(password), Some(email), Some(limit)) =
        (display_name, username, password, email, limit)
    else {
        unreachable!("every field parsed when there is no rejection");
    };
    let password_hash = hasher.hash(&password).await?;

    let mut tx = bus.begin(db).await?;
    let organization = lock_serving_organization(&*tx, viewer).await?;
    let mut rejections = Rejections::default();
    let queues = store::find_queues(
        &*tx,
        viewer.organization_id,
        &new.queue_ids.iter().flatten().copied().collect::<Vec<_>>(),
    )
    .await?;
    let (queue_ids, missing) =
        resolve_ids(&new.queue_ids, &queues.iter().map(|q| q.id).collect::<Vec<_>>(), Field::QueueId);
    rejections.extend(missing);
    if store::username_taken(&*tx, viewer.organization_id, username.as_str()).await? {
        rejections.add(Field::Username, Problem::UsernameTaken);
    }
    // Checked inside the transaction, with the organization locked: two creations racing
    // for the last seat cannot both win.
    if super::seats_used(&organization) >= organization.seat_limit.max(0) as u64 {
        rejections.0.push(Rejection::whole(Problem::SeatLimitReached));
    }
    rejections.finish()?;

    let now = Utc::now();
    let created = store::insert_agent(
        &*tx,
        AgentToCreate {
            organization_id: viewer.organization_id,
            username,
            display_name: display_name.into_inner(),
            email,
            role: new.role,
            password_hash,
            show_real_phone_numbers: new.show_real_phone_numbers,
            max_concurrent_sessions: limit.get(),
            at: now,
        },
    )
    .await
    .map_err(username_race)?;
    if !queue_ids.is_empty() {
        store::add_memberships(&*tx, queue_ids.iter().map(|&queue_id| (queue_id, created.card.id)), now)
            .await?;
    }
    tx.publish_all(DirectoryChange::of_agents(
        viewer.organization_id,
        DirectoryChangeKind::Created,
        &[created.card.id],
    ))
    .await?;
    let entry =
        Entry::by(viewer, client_address, Action::AgentCreated).on(TargetType::Agent, [created.card.id]);
    audit::record(&*tx, entry.fields(audited)).await?;
    tx.commit().await?;
    Ok(created)
}

pub async fn update_agent(
    db: &DatabaseConnection,
    bus: &EventBus,
    hasher: &PasswordHasher,
    viewer: &Viewer,
    client_address: Option<IpAddr>,
    agent_id: GivenId,
    changes: AgentChanges,
) -> Result<AgentRecord, DirectoryError> {
    let is_self = agent_id == Some(viewer.agent_id);
    if !(viewer.is_admin() || is_self && changes.only_self_service()) {
        return Err(DirectoryError::Forbidden);
    }
    let parsed = ParsedChanges::parse(&changes, viewer, is_self)?;
    // Hashed before the transaction: argon2 takes tens of milliseconds, and a write
    // transaction holds SQLite's only writer.
    let password_hash = match &parsed.password {
        Some(password) => Some(hasher.hash(password).await?),
        None => None,
    };

    let mut tx = bus.begin(db).await?;
    lock_serving_organization(&*tx, viewer).await?;
    let target = match agent_id {
        Some(id) => store::find_agent(&*tx, viewer.organization_id, id).await?,
        None => None,
    }
    .ok_or(Rejection::of(Field::InputId, Problem::NotFound))?;
    let queue_ids = check_against_current(&*tx, viewer, &target, &changes).await?;

    let now = Utc::now();
    let update = AgentUpdate {
        display_name: parsed.display_name.map(DisplayName::into_inner),
        password_hash,
        email: parsed.email,
        max_concurrent_sessions: parsed.limit.map(MaxConcurrentSessions::get),
        show_real_phone_numbers: changes.show_real_phone_numbers,
        role: changes.role,
        enabled: changes.enabled,
    };
    let updated = store::update_agent(&*tx, viewer.organization_id, target.card.id, update, now).await?;
    if let Some(queue_ids) = queue_ids {
        store::remove_all_memberships_of(&*tx, viewer.organization_id, &[target.card.id]).await?;
        store::add_memberships(&*tx, queue_ids.into_iter().map(|queue_id| (queue_id, target.card.id)), now)
            .await?;
    }
    let disabling = changes.enabled == Some(false) && target.card.enabled;
    let new_password = parsed.password.is_some();
    end_what_the_update_ends(&mut tx, viewer, &target, &updated, &changes, disabling, new_password).await?;
    let changed = changed_fields(&target, &updated, new_password, changes.queue_ids.is_some());
    let entry =
        Entry::by(viewer, client_address, Action::AgentUpdated).on(TargetType::Agent, [target.card.id]);
    audit::record(&*tx, entry.fields(changed)).await?;
    tx.publish_all(DirectoryChange::of_agents(
        viewer.organization_id,
        DirectoryChangeKind::Updated,
        &[target.card.id],
    ))
    .await?;
    tx.commit().await?;

    if disabling {
        routing::drain(db, bus, viewer.organization_id, None).await?;
    } else if changes.max_concurrent_sessions.is_some() || changes.queue_ids.is_some() {
        // A higher limit or new queues may let the agent take waiting conversations.
        routing::agent_available(db, bus, viewer.organization_id, target.card.id).await?;
    }
    let updated = store::find_agent(db, viewer.organization_id, target.card.id).await?;
    updated.ok_or_else(|| DbErr::RecordNotFound("agent just updated".into()).into())
}

/// The fields of an update that must parse, parsed; None where not given. Every problem is
/// reported at once, with the rules about changing oneself.
struct ParsedChanges {
    display_name: Option<DisplayName>,
    password: Option<Password>,
    email: Option<Option<String>>,
    limit: Option<MaxConcurrentSessions>,
}

impl ParsedChanges {
    fn parse(changes: &AgentChanges, viewer: &Viewer, is_self: bool) -> Result<Self, DirectoryError> {
        let mut rejections = Rejections::default();
        let display_name = changes
            .display_name
            .as_ref()
            .map(|raw| rejections.check(Field::DisplayName, DisplayName::parse(raw), display_name_problem));
        // The edit dialog's "leave it blank to keep the current password": an empty new
        // password changes nothing, as an absent one.
        let password = changes
            .new_password
            .clone()
            .filter(|raw| !raw.is_empty())
            .map(|raw| rejections.check(Field::NewPassword, Password::parse(raw), Problem::Password));
        let email = changes
            .email
            .clone()
            .map(|raw| rejections.check(Field::Email, parse_email(raw), |()| Problem::InvalidEmail));
        let limit = changes.max_concurrent_sessions.map(|raw| {
            rejections.check(
                Field::MaxConcurrentSessions,
                MaxConcurrentSessions::parse(raw).ok_or(()),
                |()| Problem::InvalidMaxConcurrentSessions,
            )
        });
        if is_self && changes.enabled == Some(false) {
            rejections.add(Field::Enabled, Problem::CannotModifySelf);
        }
        if is_self && changes.role == Some(Role::Agent) && viewer.is_admin() {
            rejections.add(Field::Role, Problem::CannotModifySelf);
        }
        rejections.finish()?;
        // With no rejection, every given field parsed.
        Ok(Self {
            display_name: display_name.flatten(),
            password: password.flatten(),
            email: email.flatten(),
            limit: limit.flatten(),
        })
    }
}

/// What can be refused only against the organization as it is now, inside the update's
/// transaction: the last enabled ADMIN may not be demoted or disabled, and the queues named
/// must exist. Returns the queues to set, when given.
async fn check_against_current(
    tx: &impl ConnectionTrait,
    viewer: &Viewer,
    target: &AgentRecord,
    changes: &AgentChanges,
) -> Result<Option<Vec<i64>>, DirectoryError> {
    let mut rejections = Rejections::default();
    let loses_admin = target.card.role == Role::Admin
        && target.card.enabled
        && (changes.enabled == Some(false) || changes.role == Some(Role::Agent));
    if loses_admin
        && store::count_enabled_admins_except(tx, viewer.organization_id, &[target.card.id]).await? == 0
    {
        let field = if changes.enabled == Some(false) { Field::Enabled } else { Field::Role };
        rejections.add(field, Problem::LastAdmin);
    }
    let queue_ids = match &changes.queue_ids {
        Some(given) => {
            let wanted: Vec<i64> = given.iter().flatten().copied().collect();
            let found: Vec<i64> =
                store::find_queues(tx, viewer.organization_id, &wanted).await?.iter().map(|q| q.id).collect();
            let (ids, missing) = resolve_ids(given, &found, Field::QueueId);
            rejections.extend(missing);
            Some(ids)
        }
        None => None,
    };
    rejections.finish()?;
    Ok(queue_ids)
}

/// What an update ends, in its transaction: a disable signs the agent out everywhere (and
/// takes it offline, re-queueing its conversations); a new password ends every session but
/// the caller's own; changed permissions make open sockets run as the agent is now.
async fn end_what_the_update_ends(
    tx: &mut EventTx<'_>,
    viewer: &Viewer,
    before: &AgentRecord,
    after: &AgentRecord,
    changes: &AgentChanges,
    disabling: bool,
    new_password: bool,
) -> Result<(), DbErr> {
    if disabling {
        return sign_out_everywhere(tx, viewer, &[before.card.id], PresenceReason::Disabled).await;
    }
    if new_password {
        let keep = (viewer.agent_id == before.card.id).then_some(viewer.session_id);
        auth::end_sessions(&**tx, viewer.organization_id, &[before.card.id], keep).await?;
        tx.publish_all(SessionsRevoked::of_agents(viewer.organization_id, &[before.card.id], keep)).await?;
    }
    let permissions_changed = after.card.role != before.card.role
        || after.details.show_real_phone_numbers != before.details.show_real_phone_numbers
        || changes.queue_ids.is_some();
    if permissions_changed {
        tx.publish(ViewersChanged::of_agent(viewer.organization_id, before.card.id)).await?;
    }
    Ok(())
}

/// The API names of the fields an update changed, for the audit log. A new password and new
/// queues count as changes whenever given (neither is compared: a hash cannot be, and the
/// queues would cost a read).
fn changed_fields(
    before: &AgentRecord,
    after: &AgentRecord,
    password: bool,
    queues: bool,
) -> Vec<&'static str> {
    [
        ("displayName", before.card.display_name != after.card.display_name),
        ("password", password),
        ("email", before.card.email != after.card.email),
        (
            "showRealPhoneNumbers",
            before.details.show_real_phone_numbers != after.details.show_real_phone_numbers,
        ),
        (
            "maxConcurrentSessions",
            before.details.max_concurrent_sessions != after.details.max_concurrent_sessions,
        ),
        ("enabled", before.card.enabled != after.card.enabled),
        ("role", before.card.role != after.card.role),
        ("queueIds", queues),
    ]
    .into_iter()
    .filter(|(_, changed)| *changed)
    .map(|(name, _)| name)
    .collect()
}

/// Refuses removing the viewer itself (`CANNOT_MODIFY_SELF` at its position) or every
/// enabled admin (`LAST_ADMIN`).
async fn check_removable(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    given: &[GivenId],
    targets: &[AgentRecord],
    rejections: &mut Rejections,
) -> Result<(), DbErr> {
    let mut includes_self = false;
    for (index, id) in given.iter().enumerate() {
        if *id == Some(viewer.agent_id) {
            rejections.add(Field::Ids(index), Problem::CannotModifySelf);
            includes_self = true;
        }
    }
    // With the viewer refused, the rest cannot be the last admins: the viewer still is one.
    if includes_self {
        return Ok(());
    }
    let removes_admin = targets.iter().any(|agent| agent.card.role == Role::Admin && agent.card.enabled);
    let ids: Vec<i64> = targets.iter().map(|agent| agent.card.id).collect();
    if removes_admin && store::count_enabled_admins_except(db, viewer.organization_id, &ids).await? == 0 {
        rejections.0.push(Rejection { field: None, problem: Problem::LastAdmin });
    }
    Ok(())
}

/// Looks up the agents of a bulk call; `NOT_FOUND` for each position that names none.
async fn bulk_targets(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    given: &[GivenId],
    rejections: &mut Rejections,
) -> Result<Vec<AgentRecord>, DbErr> {
    let wanted: Vec<i64> = given.iter().flatten().copied().collect();
    let targets = store::find_agents(db, viewer.organization_id, &wanted).await?;
    let found: Vec<i64> = targets.iter().map(|agent| agent.card.id).collect();
    let (_, missing) = resolve_ids(given, &found, Field::Ids);
    rejections.extend(missing);
    Ok(targets)
}

/// What disabling or deleting the given agents would do, before it is done.
pub struct RemovalPreview {
    /// Positions of the given ids that name no agent of the organization.
    pub not_found: Vec<usize>,
    /// The agents found, in the order given.
    pub agents: Vec<AgentRecord>,
    pub impact: RemovalImpact,
    /// The queues of `impact.stranded_queue_ids`, by name.
    pub stranded_queues: Vec<QueueRecord>,
}

/// `previewAgentRemoval`: the same id rules as the bulk calls (1–1000, else `TOO_MANY_IDS`),
/// but ids that name no agent are listed rather than refusing the preview. Writes nothing.
pub async fn preview_removal(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    given: &[GivenId],
) -> Result<RemovalPreview, DirectoryError> {
    check_bulk_size(given, Field::IdList)?;
    let mut rejections = Rejections::default();
    let targets = bulk_targets(db, viewer, given, &mut rejections).await?;
    let not_found = rejections
        .0
        .iter()
        .filter_map(|rejection| match rejection.field {
            Some(Field::Ids(index)) => Some(index),
            _ => None,
        })
        .collect();
    let ids: Vec<i64> = targets.iter().map(|agent| agent.card.id).collect();
    let impact = routing::removal_impact(db, viewer, &ids).await?;
    let mut stranded_queues =
        store::find_queues(db, viewer.organization_id, &impact.stranded_queue_ids).await?;
    stranded_queues.sort_by(|a, b| a.name_key.cmp(&b.name_key).then(a.id.cmp(&b.id)));
    let agents = in_given_order(targets, given.iter().flatten().copied());
    Ok(RemovalPreview { not_found, agents, impact, stranded_queues })
}

/// Enables or disables agents, all or none. Enabling an enabled agent is not an error.
pub async fn set_agents_enabled(
    db: &DatabaseConnection,
    bus: &EventBus,
    viewer: &Viewer,
    client_address: Option<IpAddr>,
    given: &[GivenId],
    enabled: bool,
) -> Result<EnabledChange, DirectoryError> {
    check_bulk_size(given, Field::IdList)?;
    let mut tx = bus.begin(db).await?;
    lock_serving_organization(&*tx, viewer).await?;
    let mut rejections = Rejections::default();
    let targets = bulk_targets(&*tx, viewer, given, &mut rejections).await?;
    if !enabled {
        check_removable(&*tx, viewer, given, &targets, &mut rejections).await?;
    }
    rejections.finish()?;
    let ids: Vec<i64> = targets.iter().map(|agent| agent.card.id).collect();
    let changing: Vec<i64> =
        targets.iter().filter(|agent| agent.card.enabled != enabled).map(|agent| agent.card.id).collect();
    if !enabled {
        sign_out_everywhere(&mut tx, viewer, &changing, PresenceReason::Disabled).await?;
    }
    let affected = store::set_enabled(&*tx, viewer.organization_id, &ids, enabled, Utc::now()).await?;
    tx.publish_all(DirectoryChange::of_agents(
        viewer.organization_id,
        DirectoryChangeKind::Updated,
        &changing,
    ))
    .await?;
    let action = if enabled { Action::AgentEnabled } else { Action::AgentDisabled };
    let entry = Entry::by(viewer, client_address, action).on(TargetType::Agent, ids.iter().copied());
    audit::record(&*tx, entry.fields(["enabled"])).await?;
    tx.commit().await?;
    if !enabled && !changing.is_empty() {
        routing::drain(db, bus, viewer.organization_id, None).await?;
    }
    let agent_ids =
        in_given_order(targets, given.iter().flatten().copied()).iter().map(|agent| agent.card.id).collect();
    Ok(EnabledChange { agent_ids, affected })
}

/// Deletes agents, all or none: they free their seats and can no longer sign in; the rows
/// stay for the history that refers to them.
pub async fn delete_agents(
    db: &DatabaseConnection,
    bus: &EventBus,
    viewer: &Viewer,
    client_address: Option<IpAddr>,
    given: &[GivenId],
) -> Result<Vec<i64>, DirectoryError> {
    check_bulk_size(given, Field::IdList)?;
    let mut tx = bus.begin(db).await?;
    lock_serving_organization(&*tx, viewer).await?;
    let mut rejections = Rejections::default();
    let targets = bulk_targets(&*tx, viewer, given, &mut rejections).await?;
    check_removable(&*tx, viewer, given, &targets, &mut rejections).await?;
    rejections.finish()?;
    let ids: Vec<i64> = targets.iter().map(|agent| agent.card.id).collect();
    sign_out_everywhere(&mut tx, viewer, &ids, PresenceReason::Deleted).await?;
    store::soft_delete_agents(&*tx, viewer.organization_id, &ids, Utc::now()).await?;
    store::remove_all_memberships_of(&*tx, viewer.organization_id, &ids).await?;
    let entry =
        Entry::by(viewer, client_address, Action::AgentDeleted).on(TargetType::Agent, ids.iter().copied());
    audit::record(&*tx, entry).await?;
    tx.publish_all(DirectoryChange::of_agents(viewer.organization_id, DirectoryChangeKind::Deleted, &ids))
        .await?;
    tx.commit().await?;
    routing::drain(db, bus, viewer.organization_id, None).await?;
    Ok(ids)
}

/// What disabling or deleting does to agents, in the same transaction: OFFLINE for `reason`
/// (with a presence event each), their conversations back to WAITING, every session ended,
/// and their open sockets told to close. Drain the organization after it commits.
async fn sign_out_everywhere(
    tx: &mut EventTx<'_>,
    viewer: &Viewer,
    agent_ids: &[i64],
    reason: PresenceReason,
) -> Result<(), DbErr> {
    presence::take_offline(tx, viewer.organization_id, agent_ids, reason).await?;
    routing::release_agents(tx, viewer.organization_id, agent_ids).await?;
    auth::end_sessions(&**tx, viewer.organization_id, agent_ids, None).await?;
    tx.publish_all(SessionsRevoked::of_agents(viewer.organization_id, agent_ids, None)).await
}

/// Orders agents by where the caller first named them.
fn in_given_order(mut agents: Vec<AgentRecord>, given: impl Iterator<Item = i64>) -> Vec<AgentRecord> {
    // A map, not a search per comparison: a bulk call may name 1,000 ids.
    let mut position = HashMap::new();
    for (index, id) in given.enumerate() {
        position.entry(id).or_insert(index);
    }
    agents.sort_by_key(|agent| position.get(&agent.card.id).copied());
    agents
}
