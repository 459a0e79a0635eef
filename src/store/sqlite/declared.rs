//! What a [`SqliteService`] declares about its table: indexes (plain,
//! compound, from code or from config) and unique fields, and the settings
//! its calls share.

use std::sync::Arc;

use serde_json::Value;

use super::SqliteService;
use crate::store::base::StoreOptions;
use crate::{Error, Result};

/// A declared index: on one field, or (not unique) compound over several,
/// equality on all but the last and `$sort` on the last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Index {
    pub(super) fields: Vec<String>,
    pub(super) unique: bool,
    /// Made on `lower(value)`: values differing only in ASCII case collide.
    pub(super) ignore_case: bool,
}

/// A service's settings, shared with its blocking tasks.
#[derive(Debug, Clone)]
pub(super) struct Config {
    pub(super) table: String,
    /// The table's key in the record cache: its name in lower case, since
    /// SQLite's names ignore case (`Users` and `users` are one table).
    pub(super) cache_key: String,
    /// What every store has (`store::base`); its first id is used when the
    /// table's id counter is created, i.e. the first time the table is.
    pub(super) options: StoreOptions,
    pub(super) indexes: Vec<Index>,
    /// Fields whose equality ignores case (from the case-insensitive
    /// unique indexes), shared with every call's query options.
    pub(super) fold_case: Arc<[String]>,
}

impl Config {
    /// True when a declared index covers `field`: a comparison of it is
    /// left in SQL, where the planner can use the index (see
    /// [`sql::condition`]).
    pub(super) fn indexed(&self, field: &str) -> bool {
        self.indexes
            .iter()
            .any(|index| index.fields.iter().any(|f| f == field))
    }

    /// True when a declared index sorts by `field`: a plain index on it,
    /// or a compound index ending with it (see `schema`).
    pub(super) fn sortable(&self, field: &str) -> bool {
        self.indexes
            .iter()
            .any(|index| !index.unique && index.fields.last().is_some_and(|f| f == field))
    }
}

impl SqliteService {
    /// Declares an index on each of these fields, for fast equality,
    /// `$in` and range lookups and `$sort` on the field: two expression
    /// indexes, on `json_extract(data, '$.field')` with the value's JSON
    /// type (a filtered `total` is counted from the index alone) and on
    /// the field's sort key. Field names are identifiers; a bad one fails
    /// the table's creation.
    ///
    /// An index no longer declared is dropped when the service is set up:
    /// the declarations of the last service set up over a table decide its
    /// indexes.
    #[must_use]
    pub fn index<I, S>(self, fields: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.declare(fields, false)
    }

    /// Declares one index over these fields together: equality (`field:
    /// value`) on every field but the last, and `$sort` on the last. For a
    /// page of one user's messages, newest first (`{userId: 7, $sort:
    /// {createdAt: -1}}`), `compound_index(["userId", "createdAt"])` reads
    /// `$limit` records, however many the user has.
    ///
    /// ```
    /// # use plume::store::SqliteStore;
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let store = SqliteStore::open(":memory:").await?;
    /// let messages = store.service("messages")?.compound_index(["userId", "createdAt"]);
    /// messages.ensure_schema().await?;
    /// # Ok::<(), plume::Error>(())
    /// # }).unwrap();
    /// ```
    #[must_use]
    pub fn compound_index<I, S>(self, fields: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let index = Index {
            fields: fields.into_iter().map(Into::into).collect(),
            unique: false,
            ignore_case: false,
        };
        self.configure(|c| c.indexes.push(index))
    }

    /// Declares the indexes a configuration lists for this service (as
    /// `sqlite.indexes.<service>` in the default app's config), on top of
    /// those declared in code. Each entry is a field name (as
    /// [`index`](Self::index)), an array of field names (as
    /// [`compound_index`](Self::compound_index)), or
    /// `{"unique": "field"}`, optionally with `"ignoreCase": true` (as
    /// [`unique`](Self::unique) and
    /// [`unique_ignoring_case`](Self::unique_ignoring_case)):
    ///
    /// ```json
    /// ["createdAt", ["userId", "createdAt"], {"unique": "email", "ignoreCase": true}]
    /// ```
    ///
    /// Anything else is a GeneralError naming the entry.
    pub fn indexes_from_config(self, entries: &Value) -> Result<Self> {
        let table = self.config.table.clone();
        let bad = |entry: &Value| {
            Error::general(format!(
                "Invalid index {entry} for '{table}': use a field name, an array of field names, \
                 or {{\"unique\": \"field\", \"ignoreCase\": true}}"
            ))
        };
        let Value::Array(entries) = entries else {
            return Err(bad(entries));
        };
        let mut service = self;
        for entry in entries {
            service = match entry {
                Value::String(field) => service.index([field.as_str()]),
                Value::Array(fields) if !fields.is_empty() => {
                    let fields = fields
                        .iter()
                        .map(|f| f.as_str().map(str::to_owned).ok_or_else(|| bad(entry)))
                        .collect::<Result<Vec<_>>>()?;
                    if fields.len() == 1 {
                        service.index(fields)
                    } else {
                        service.compound_index(fields)
                    }
                }
                Value::Object(object) => {
                    let field = object.get("unique").and_then(Value::as_str);
                    let ignore_case = match object.get("ignoreCase") {
                        None => Some(false),
                        Some(flag) => flag.as_bool(),
                    };
                    let known = object.keys().all(|k| k == "unique" || k == "ignoreCase");
                    match (field, ignore_case, known) {
                        (Some(field), Some(true), true) => service.unique_ignoring_case([field]),
                        (Some(field), Some(false), true) => service.unique([field]),
                        _ => return Err(bad(entry)),
                    }
                }
                _ => return Err(bad(entry)),
            };
        }
        Ok(service)
    }

    /// Declares a unique index on each of these fields: a create, update or
    /// patch that would give two records the same non-null value is 409
    /// Conflict. Records without the field (or with `null`) never conflict.
    #[must_use]
    pub fn unique<I, S>(self, fields: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.declare(fields, true)
    }

    /// Declares a unique index on each of these fields that ignores ASCII
    /// case, for emails and login names: `ADA@x` conflicts with `ada@x`
    /// (409), the value is stored as given, and equality, `$ne`, `$in` and
    /// `$nin` on the field ignore case too, so a lookup finds the record
    /// whatever case it is typed in (through the same index). Characters
    /// outside ASCII are compared as they are (SQLite's `lower()`).
    #[must_use]
    pub fn unique_ignoring_case<I, S>(self, fields: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let fields: Vec<String> = fields.into_iter().map(Into::into).collect();
        self.configure(|c| {
            let mut folded: Vec<String> = c.fold_case.to_vec();
            for field in &fields {
                c.indexes.push(Index {
                    fields: vec![field.clone()],
                    unique: true,
                    ignore_case: true,
                });
                if !folded.contains(field) {
                    folded.push(field.clone());
                }
            }
            c.fold_case = Arc::from(folded);
        })
    }

    fn declare<I, S>(self, fields: I, unique: bool) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let new: Vec<Index> = fields
            .into_iter()
            .map(|field| Index {
                fields: vec![field.into()],
                unique,
                ignore_case: false,
            })
            .collect();
        self.configure(|c| c.indexes.extend(new))
    }
}
