//! What a database store's service declares about its table: indexes
//! (plain, compound, from code or from config) and unique fields, the
//! same declarations for SQLite and PostgreSQL. Each store turns them into
//! its own indexes; the builder methods are written once here
//! ([`declared_builder`]).

use std::sync::Arc;

use serde_json::Value;

use crate::{Error, Result};

/// A declared index: on one field, or (not unique) compound over several,
/// equality on all but the last and `$sort` on the last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Index {
    pub(crate) fields: Vec<String>,
    pub(crate) unique: bool,
    /// Made on the value in ASCII lower case: values differing only in
    /// ASCII case collide.
    pub(crate) ignore_case: bool,
}

/// The indexes of one service and what follows from them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Declared {
    pub(crate) indexes: Vec<Index>,
    /// Fields whose equality ignores case (from the case-insensitive
    /// unique indexes), shared with every call's query options.
    pub(crate) fold_case: Arc<[String]>,
}

impl Declared {
    /// True when a declared index covers `field`: a comparison of it is
    /// written the way the index is made, so the planner can use it.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) fn indexed(&self, field: &str) -> bool {
        self.indexes
            .iter()
            .any(|index| index.fields.iter().any(|f| f == field))
    }

    /// True when a declared index sorts by `field`: a plain index on it,
    /// or a compound index ending with it.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) fn sortable(&self, field: &str) -> bool {
        self.indexes
            .iter()
            .any(|index| !index.unique && index.fields.last().is_some_and(|f| f == field))
    }

    /// True when a unique index (of either kind) is on `field`.
    pub(crate) fn unique(&self, field: &str) -> bool {
        self.indexes
            .iter()
            .any(|index| index.unique && index.fields.first().is_some_and(|f| f == field))
    }

    /// One index per field.
    pub(crate) fn add_each(&mut self, fields: Vec<String>, unique: bool) {
        self.indexes.extend(fields.into_iter().map(|field| Index {
            fields: vec![field],
            unique,
            ignore_case: false,
        }));
    }

    /// One index over several fields.
    pub(crate) fn add_compound(&mut self, fields: Vec<String>) {
        self.indexes.push(Index {
            fields,
            unique: false,
            ignore_case: false,
        });
    }

    /// A unique index ignoring case per field.
    pub(crate) fn add_unique_ignoring_case(&mut self, fields: Vec<String>) {
        let mut folded: Vec<String> = self.fold_case.to_vec();
        for field in fields {
            if !folded.contains(&field) {
                folded.push(field.clone());
            }
            self.indexes.push(Index {
                fields: vec![field],
                unique: true,
                ignore_case: true,
            });
        }
        self.fold_case = Arc::from(folded);
    }

    /// Adds the indexes a configuration lists (see the builder's
    /// `indexes_from_config`); nothing is added when an entry is bad.
    pub(crate) fn add_from_config(&mut self, table: &str, entries: &Value) -> Result<()> {
        let bad = |entry: &Value| {
            Error::general(format!(
                "Invalid index {entry} for '{table}': use a field name, an array of field names, \
                 or {{\"unique\": \"field\", \"ignoreCase\": true}}"
            ))
        };
        let Value::Array(entries) = entries else {
            return Err(bad(entries));
        };
        let mut added = self.clone();
        for entry in entries {
            match entry {
                Value::String(field) => added.add_each(vec![field.clone()], false),
                Value::Array(fields) if !fields.is_empty() => {
                    let fields = fields
                        .iter()
                        .map(|f| f.as_str().map(str::to_owned).ok_or_else(|| bad(entry)))
                        .collect::<Result<Vec<_>>>()?;
                    if fields.len() == 1 {
                        added.add_each(fields, false);
                    } else {
                        added.add_compound(fields);
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
                        (Some(field), Some(true), true) => {
                            added.add_unique_ignoring_case(vec![field.to_owned()]);
                        }
                        (Some(field), Some(false), true) => {
                            added.add_each(vec![field.to_owned()], true);
                        }
                        _ => return Err(bad(entry)),
                    }
                }
                _ => return Err(bad(entry)),
            }
        }
        *self = added;
        Ok(())
    }
}

/// The declaration methods of a database store's service, written once: a
/// service type implements `fn with_declared(self, change: impl
/// FnOnce(&mut Declared)) -> Self` and `fn table(&self) -> &str`, and gets
/// these as its own methods.
macro_rules! declared_builder {
    ($service:ty) => {
        impl $service {
            /// Declares an index on each of these fields, for fast
            /// equality, `$in` and range lookups and `$sort` on the field.
            /// Field names are identifiers; a bad one fails the table's
            /// creation.
            ///
            /// An index no longer declared is dropped when the service is
            /// set up: the declarations of the last service set up over a
            /// table decide its indexes.
            #[must_use]
            pub fn index<I, S>(self, fields: I) -> Self
            where
                I: IntoIterator<Item = S>,
                S: Into<String>,
            {
                let fields = fields.into_iter().map(Into::into).collect();
                self.with_declared(|d| d.add_each(fields, false))
            }

            /// Declares one index over these fields together: equality
            /// (`field: value`) on every field but the last, and `$sort` on
            /// the last. For a page of one user's messages, newest first
            /// (`{userId: 7, $sort: {createdAt: -1}}`),
            /// `compound_index(["userId", "createdAt"])` reads `$limit`
            /// records, however many the user has.
            #[must_use]
            pub fn compound_index<I, S>(self, fields: I) -> Self
            where
                I: IntoIterator<Item = S>,
                S: Into<String>,
            {
                let fields = fields.into_iter().map(Into::into).collect();
                self.with_declared(|d| d.add_compound(fields))
            }

            /// Declares the indexes a configuration lists for this
            /// service (as `sqlite.indexes.<service>` in the default app's
            /// config), on top of those declared in code. Each entry is a
            /// field name (as [`index`](Self::index)), an array of field
            /// names (as [`compound_index`](Self::compound_index)), or
            /// `{"unique": "field"}`, optionally with `"ignoreCase": true`
            /// (as [`unique`](Self::unique) and
            /// [`unique_ignoring_case`](Self::unique_ignoring_case)):
            ///
            /// ```json
            /// ["createdAt", ["userId", "createdAt"], {"unique": "email", "ignoreCase": true}]
            /// ```
            ///
            /// Anything else is a GeneralError naming the entry.
            pub fn indexes_from_config(self, entries: &serde_json::Value) -> $crate::Result<Self> {
                let mut declared = self.declared().clone();
                declared.add_from_config(self.table(), entries)?;
                Ok(self.with_declared(|d| *d = declared))
            }

            /// Declares a unique index on each of these fields: a create,
            /// update or patch that would give two records the same
            /// non-null value is 409 Conflict. Records without the field
            /// (or with `null`) never conflict.
            #[must_use]
            pub fn unique<I, S>(self, fields: I) -> Self
            where
                I: IntoIterator<Item = S>,
                S: Into<String>,
            {
                let fields = fields.into_iter().map(Into::into).collect();
                self.with_declared(|d| d.add_each(fields, true))
            }

            /// Declares a unique index on each of these fields that
            /// ignores ASCII case, for emails and login names: `ADA@x`
            /// conflicts with `ada@x` (409), the value is stored as given,
            /// and equality, `$ne`, `$in` and `$nin` on the field ignore
            /// case too, so a lookup finds the record whatever case it is
            /// typed in (through the same index). Characters outside ASCII
            /// are compared as they are.
            #[must_use]
            pub fn unique_ignoring_case<I, S>(self, fields: I) -> Self
            where
                I: IntoIterator<Item = S>,
                S: Into<String>,
            {
                let fields = fields.into_iter().map(Into::into).collect();
                self.with_declared(|d| d.add_unique_ignoring_case(fields))
            }
        }
    };
}

pub(crate) use declared_builder;

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn config_entries_add_all_or_nothing() {
        let mut declared = Declared::default();
        declared
            .add_from_config(
                "t",
                &json!(["a", ["b"], ["c", "d"], {"unique": "e", "ignoreCase": true}, {"unique": "f"}]),
            )
            .unwrap();
        assert!(declared.indexed("a") && declared.sortable("b") && declared.sortable("d"));
        assert!(!declared.sortable("c") && declared.indexed("c"));
        assert!(declared.unique("e") && !declared.sortable("e"));
        assert_eq!(&*declared.fold_case, ["e".to_owned()]);
        assert!(declared.unique("f"));
        let before = declared.indexes.len();
        let error = declared
            .add_from_config("t", &json!(["g", {"unique": "h", "other": 1}]))
            .unwrap_err();
        assert!(error.message().contains("Invalid index"), "{error}");
        assert_eq!(declared.indexes.len(), before);
        assert!(!declared.indexed("g"));
    }
}
