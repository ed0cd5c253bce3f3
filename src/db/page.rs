//! Keyset pagination: a page starts after (or before) the sort key and id of a row, so pages
//! stay stable while rows are added or removed, and cost the same at any depth.

/// Where a page starts: the sort key and id of the row just outside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub key: String,
    pub id: i64,
}

/// One page of a keyset-paginated listing.
#[derive(Clone, Debug)]
pub struct PageRequest {
    pub after: Option<Cursor>,
    pub before: Option<Cursor>,
    pub limit: u64,
    /// Take the page from the end (`last`), not the start (`first`).
    pub from_end: bool,
}

pub struct Page<T> {
    pub items: Vec<T>,
    /// More rows exist beyond the page in the direction it was read.
    pub has_more: bool,
}
