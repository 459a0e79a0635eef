//! The record cache: recently read records by table and id, so that a
//! `get` of a hot record (the user behind every authenticated request, a
//! popular message) costs a hash lookup instead of a trip to a reader
//! thread.
//!
//! Correctness rests on one rule: every write through the store empties
//! the cache of the table it wrote to (a write of arbitrary SQL through
//! [`SqliteStore::write`](super::SqliteStore::write) empties every table),
//! on the writer thread, after its transaction has ended and before its
//! caller is answered, so that no call that started after a write returned
//! can see what the write replaced. A read that raced with a write must not
//! put back what it read before the write: each table has a generation,
//! bumped by every invalidation, and a read stores its record only if the
//! generation it saw before reading is still current.
//!
//! Another process writing to the same database file is not seen by this
//! rule, so entries also expire after a time to live (one second by
//! default): such a change shows within that time. A TTL of zero turns the
//! cache off.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::table::Record;
use crate::Id;

/// How long an entry is trusted, unless set otherwise.
pub(super) const DEFAULT_TTL: Duration = Duration::from_secs(1);

/// Entries kept per table; a full table starts over empty (cheaper than
/// tracking recency, and the hot records come back at once).
const CAPACITY: usize = 4096;

#[derive(Debug)]
pub(super) struct RecordCache {
    tables: Mutex<HashMap<String, Table>>,
    /// The TTL in milliseconds; 0 turns the cache off.
    ttl_ms: AtomicU64,
}

#[derive(Debug, Default)]
struct Table {
    generation: u64,
    entries: HashMap<Id, Entry>,
}

#[derive(Debug)]
struct Entry {
    stored: Instant,
    record: Arc<Record>,
}

/// What a read saw before it read: see the module docs.
#[derive(Debug, Clone, Copy)]
pub(super) struct Generation(u64);

impl Default for RecordCache {
    fn default() -> Self {
        Self {
            tables: Mutex::default(),
            ttl_ms: AtomicU64::new(millis(DEFAULT_TTL)),
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl RecordCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Table>> {
        // Every critical section leaves the maps consistent.
        self.tables.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn ttl(&self) -> Option<Duration> {
        match self.ttl_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }

    /// Sets the time to live; zero turns the cache off and empties it.
    pub(super) fn set_ttl(&self, ttl: Duration) {
        self.ttl_ms.store(millis(ttl), Ordering::Relaxed);
        if ttl.is_zero() {
            self.invalidate(None);
        }
    }

    /// The fresh record cached for `id` in `table`.
    pub(super) fn get(&self, table: &str, id: &Id) -> Option<Arc<Record>> {
        let ttl = self.ttl()?;
        let tables = self.lock();
        let entry = tables.get(table)?.entries.get(id)?;
        (entry.stored.elapsed() < ttl).then(|| Arc::clone(&entry.record))
    }

    /// To be taken before reading `table` from the database.
    pub(super) fn generation(&self, table: &str) -> Generation {
        let mut tables = self.lock();
        // Created here so that a later invalidation of every table bumps
        // this one too.
        let generation = match tables.get(table) {
            Some(t) => t.generation,
            None => {
                tables.insert(table.to_owned(), Table::default());
                0
            }
        };
        Generation(generation)
    }

    /// Stores what a read found, unless a write to `table` has ended since
    /// `seen` was taken.
    pub(super) fn insert(&self, table: &str, id: Id, record: Arc<Record>, seen: Generation) {
        if self.ttl().is_none() {
            return;
        }
        let mut tables = self.lock();
        let Some(t) = tables.get_mut(table) else {
            return;
        };
        if t.generation != seen.0 {
            return;
        }
        if t.entries.len() >= CAPACITY {
            t.entries.clear();
        }
        t.entries.insert(
            id,
            Entry {
                stored: Instant::now(),
                record,
            },
        );
    }

    /// Empties `table`'s entries, or every table's for `None`.
    pub(super) fn invalidate(&self, table: Option<&str>) {
        let mut tables = self.lock();
        let bump = |t: &mut Table| {
            t.generation = t.generation.wrapping_add(1);
            t.entries.clear();
        };
        match table {
            Some(name) => {
                if let Some(t) = tables.get_mut(name) {
                    bump(t);
                }
            }
            None => tables.values_mut().for_each(bump),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(n: i64) -> Arc<Record> {
        match json!({"id": n}) {
            serde_json::Value::Object(map) => Arc::new(map),
            _ => unreachable!(),
        }
    }

    #[test]
    fn a_read_that_raced_with_a_write_is_not_stored() {
        let cache = RecordCache::default();
        let seen = cache.generation("t");
        cache.invalidate(Some("t"));
        cache.insert("t", Id::Number(1), record(1), seen);
        assert!(cache.get("t", &Id::Number(1)).is_none());

        let seen = cache.generation("t");
        cache.insert("t", Id::Number(1), record(1), seen);
        assert!(cache.get("t", &Id::Number(1)).is_some());
    }

    #[test]
    fn invalidating_every_table_reaches_tables_read_but_not_yet_stored() {
        let cache = RecordCache::default();
        let seen = cache.generation("t");
        cache.invalidate(None);
        cache.insert("t", Id::Number(1), record(1), seen);
        assert!(cache.get("t", &Id::Number(1)).is_none());
    }

    #[test]
    fn a_write_to_one_table_keeps_the_others() {
        let cache = RecordCache::default();
        for table in ["a", "b"] {
            let seen = cache.generation(table);
            cache.insert(table, Id::Number(1), record(1), seen);
        }
        cache.invalidate(Some("a"));
        assert!(cache.get("a", &Id::Number(1)).is_none());
        assert!(cache.get("b", &Id::Number(1)).is_some());
    }

    #[test]
    fn zero_ttl_turns_the_cache_off_and_entries_expire() {
        let cache = RecordCache::default();
        cache.set_ttl(Duration::ZERO);
        let seen = cache.generation("t");
        cache.insert("t", Id::Number(1), record(1), seen);
        assert!(cache.get("t", &Id::Number(1)).is_none());

        cache.set_ttl(Duration::from_millis(1));
        let seen = cache.generation("t");
        cache.insert("t", Id::Number(2), record(2), seen);
        std::thread::sleep(Duration::from_millis(5));
        assert!(cache.get("t", &Id::Number(2)).is_none());
    }

    #[test]
    fn a_full_table_starts_over() {
        let cache = RecordCache::default();
        let seen = cache.generation("t");
        for n in 0..=i64::try_from(CAPACITY).unwrap() {
            cache.insert("t", Id::Number(n), record(n), seen);
        }
        assert!(cache.get("t", &Id::Number(0)).is_none());
        let last = i64::try_from(CAPACITY).unwrap();
        assert!(cache.get("t", &Id::Number(last)).is_some());
    }
}
