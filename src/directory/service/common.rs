//! What the directory's rules share: ids as clients give them, collected rejections, the
//! bulk-size rule, and the locked read of a serving organization.

use std::collections::HashSet;

use sea_orm::ConnectionTrait;

use super::super::{
    error::{DirectoryError, Field, Problem, Rejection},
    model::OrganizationRecord,
    store,
};
use crate::viewer::Viewer;

/// Most ids one bulk call may name.
pub const MAX_BULK_IDS: usize = 1000;

/// An id as the client gave it: None when it was not an id of the expected kind (treated
/// exactly like an id that does not exist).
pub type GivenId = Option<i64>;

/// Reads the viewer's organization, locked for the rest of the transaction, and refuses
/// when its human-agent service is switched off.
pub(super) async fn lock_serving_organization(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
) -> Result<OrganizationRecord, DirectoryError> {
    let organization = store::lock_organization(db, viewer.organization_id)
        .await?
        .ok_or(Rejection::whole(Problem::NotFound))?;
    if !organization.human_agent_service_enabled {
        return Err(Rejection::whole(Problem::ServiceDisabled).into());
    }
    Ok(organization)
}

/// 1–1000 ids, else `TOO_MANY_IDS` on `field`.
pub(super) fn check_bulk_size(ids: &[GivenId], field: Field) -> Result<(), DirectoryError> {
    if ids.is_empty() || ids.len() > MAX_BULK_IDS {
        return Err(Rejection { field: Some(field), problem: Problem::TooManyIds }.into());
    }
    Ok(())
}

/// The given ids that exist among `found`, and a `NOT_FOUND` for each position that does not.
pub(super) fn resolve_ids(
    given: &[GivenId],
    found: &[i64],
    field: impl Fn(usize) -> Field,
) -> (Vec<i64>, Vec<Rejection>) {
    let found: HashSet<i64> = found.iter().copied().collect();
    let mut seen = HashSet::new();
    let mut ids = Vec::with_capacity(given.len());
    let mut missing = Vec::new();
    for (index, id) in given.iter().enumerate() {
        match id.filter(|id| found.contains(id)) {
            Some(id) => {
                if seen.insert(id) {
                    ids.push(id);
                }
            }
            None => missing.push(Rejection::of(field(index), Problem::NotFound)),
        }
    }
    (ids, missing)
}

/// Collects rejections; `finish` fails with all of them, or succeeds when there are none.
#[derive(Default)]
pub(super) struct Rejections(pub(super) Vec<Rejection>);

impl Rejections {
    pub(super) fn add(&mut self, field: Field, problem: Problem) {
        self.0.push(Rejection::of(field, problem));
    }

    pub(super) fn extend(&mut self, rejections: impl IntoIterator<Item = Rejection>) {
        self.0.extend(rejections);
    }

    /// The parsed value, or None after recording `problem` on `field`.
    pub(super) fn check<T, E>(
        &mut self,
        field: Field,
        parsed: Result<T, E>,
        problem: impl FnOnce(E) -> Problem,
    ) -> Option<T> {
        parsed.map_err(|error| self.add(field, problem(error))).ok()
    }

    pub(super) fn finish(self) -> Result<(), DirectoryError> {
        if self.0.is_empty() { Ok(()) } else { Err(DirectoryError::Rejected(self.0)) }
    }
}
