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

impl PageRequest {
    /// Rows to read: one more than the page, which tells whether more exist.
    pub fn rows_to_read(&self) -> u64 {
        self.limit + 1
    }

    /// The page of `rows`, read in the listing's order (reversed when read from the end) with
    /// at most `rows_to_read()` of them.
    pub fn page_of<T>(&self, mut rows: Vec<T>) -> Page<T> {
        let has_more = rows.len() as u64 > self.limit;
        rows.truncate(self.limit as usize);
        if self.from_end {
            rows.reverse();
        }
        Page { items: rows, has_more }
    }
}

pub struct Page<T> {
    pub items: Vec<T>,
    /// More rows exist beyond the page in the direction it was read.
    pub has_more: bool,
}
