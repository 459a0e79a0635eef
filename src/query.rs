//! The Feathers query language, shared by every store.
//!
//! A query is a JSON object, usually [`Params::query`](crate::Params::query).
//! [`parse_query`] validates it and turns it into a [`ParsedQuery`]: the
//! [`Filters`] (`$limit`, `$skip`, `$sort`, `$select`) and a [`Condition`]
//! tree. The parsed form is plain data so that each store can evaluate it
//! in its own way: the memory store with [`matches()`], [`sort_records`] and
//! [`Filters::project`]; an SQL store by compiling the same tree. Every rule
//! below is chosen so that it can be written in SQL.
//!
//! # Grammar
//!
//! At the top level:
//!
//! | key | value |
//! |---|---|
//! | `$limit` | a non-negative integer, or a string of decimal digits |
//! | `$skip` | the same |
//! | `$sort` | an object of field names to `1` (ascending) or `-1` (descending), numbers or strings; keys apply in order |
//! | `$select` | a field name or an array of field names |
//! | `$or` | an array of objects; a record matches when it matches any of them |
//! | `$and` | an array of objects; a record matches when it matches all of them |
//! | `field` | a condition on the field (below) |
//!
//! Any other `$key` is 400 BadRequest `Invalid filter value $key`, as in
//! Feathers. The objects inside `$or` and `$and` have the same shape as the
//! top level but hold conditions only: fields, and nested `$or` / `$and`.
//! Any other `$key` there is `Invalid query parameter $key`. An empty `$or`
//! matches nothing and an empty `$and` matches everything (as `OR` and
//! `AND` over no terms).
//!
//! A field condition is one of:
//!
//! - a string, number, boolean or `null`: equality;
//! - an object whose keys are all operators: `$ne`, `$lt`, `$lte`, `$gt`,
//!   `$gte` with a string, number, boolean or `null`; `$in`, `$nin` with an
//!   array of those, or a single one (read as a one-element list). Several
//!   operators on one field must all hold. Any other `$key` is
//!   `Invalid query parameter $key`.
//!
//! An array, an empty object, or an object with a key that is not an
//! operator is 400: there is no deep-equality matching of objects or
//! arrays.
//!
//! Field names (in conditions, `$sort` and `$select`) are identifiers,
//! `[A-Za-z_][A-Za-z0-9_]*`, at most [`MAX_FIELD_NAME_LEN`] characters;
//! anything else is 400. This keeps an SQL compilation safe and every store
//! in agreement.
//!
//! # Comparison
//!
//! A condition compares the *stored* value of a field with the *query*
//! value (see [`compare`]):
//!
//! - Values of the same JSON type compare naturally: numbers numerically
//!   (as `f64`), strings by Unicode code point (which is byte order of
//!   UTF-8, SQL's `BINARY` collation), booleans with `false < true`.
//! - Query values from a URL are strings, so: when the query value is a
//!   string and the stored value a number, the string is read as a number
//!   if `str::parse::<f64>` reads it as a finite number ([`coerce_number`]):
//!   `"5"` equals `5`, `"2.5"` is less than `3`. When the query value is
//!   `"true"` or `"false"` and the stored value a boolean, it is read as
//!   that boolean ([`coerce_bool`]). The string `"null"` is never `null`,
//!   and a number in the query never matches a stored string.
//! - Otherwise values of different types are never equal and never
//!   ordered: `$lt`, `$lte`, `$gt`, `$gte` are false, `$ne` is true.
//! - A missing field is `null`. `{x: null}` matches a missing or `null`
//!   field; `{x: {$ne: null}}` a present, non-null one. `$lt`, `$lte`,
//!   `$gt` and `$gte` are false whenever either side is `null` (as in
//!   SQL). `$in` holds when the value equals any element, `$nin` when it
//!   equals none, so `$nin` holds on a missing field unless the list
//!   contains `null`.
//!
//! # Sorting
//!
//! [`sort_records`] orders values of different types as: missing or `null`
//! < booleans < numbers < strings < arrays < objects ([`sort_cmp`]). Within
//! a type, values compare as above; arrays and objects by their compact
//! JSON text. A descending key reverses this order. Later keys break ties
//! of earlier ones; records still tied keep their insertion order (the
//! sort is stable).
//!
//! # Pagination
//!
//! With [`QueryOptions::paginate`] set, a query without `$limit` gets the
//! default page size and `$limit` is clamped to the maximum (the default
//! too). `$limit: 0` is allowed: a page with only the total. Without
//! pagination, no `$limit` means no limit.
//!
//! # Protected fields
//!
//! [`QueryOptions::protected_fields`] names fields that external callers
//! ([`QueryOptions::external`], set from `params.provider`) may not filter,
//! sort or `$select` on: 400 BadRequest. Otherwise a client could learn a
//! password hash one comparison at a time (`?password[$gt]=$2`). Internal
//! calls may use them (a login strategy looks a user up by email and reads
//! the hash). Stores only return such fields; hiding them from results is
//! the job of a hook (`protect`).
//!
//! # Bounds
//!
//! To keep a query's cost bounded, a query over these limits is 400:
//! [`MAX_DEPTH`] levels of `$or`/`$and`, [`MAX_CONDITIONS`] conditions,
//! [`MAX_COMPARISONS`] field comparisons, [`MAX_IN_VALUES`] values in one
//! `$in`/`$nin` and [`MAX_VALUES`] in all comparisons together,
//! [`MAX_SORT`] `$sort` keys, [`MAX_SELECT`] `$select` fields. The first
//! five are the defaults of [`QueryLimits`], which a store may change.
//! Every query that passes them runs in the store's own query language:
//! none falls back to reading a whole table.
//!
//! ```
//! use plume::query::{Condition, Op, QueryOptions, SortOrder, parse_query};
//! use serde_json::json;
//!
//! let query = json!({"$limit": "5", "$sort": {"createdAt": "-1"}, "name": {"$in": ["a", "b"]}});
//! let parsed = parse_query(query.as_object().unwrap(), &QueryOptions::default()).unwrap();
//! assert_eq!(parsed.filters.limit, Some(5));
//! assert_eq!(parsed.filters.sort, vec![("createdAt".to_owned(), SortOrder::Desc)]);
//! assert_eq!(
//!     parsed.condition,
//!     Condition::And(vec![Condition::Field {
//!         field: "name".to_owned(),
//!         op: Op::In,
//!         value: json!(["a", "b"]),
//!         fold_case: false,
//!     }])
//! );
//! assert!(parsed.matches(json!({"name": "b"}).as_object().unwrap()));
//! ```

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Error, Paginate, Result};

/// The deepest nesting of `$or` / `$and`: a top-level `$or` is level 1, an
/// `$or` inside one of its entries level 2, and so on.
pub const MAX_DEPTH: usize = 4;

/// The most conditions in one query. Each field comparison (one per
/// operator), each `$or` / `$and` and each of their entries counts as one.
pub const MAX_CONDITIONS: usize = 200;

/// The most field comparisons in one query (one per operator, wherever it
/// is nested). A store with no index to use tests each of them on every
/// row, so this, not the number of values, sets the cost of a scan.
pub const MAX_COMPARISONS: usize = 10;

/// The most values in one `$in` or `$nin` list.
pub const MAX_IN_VALUES: usize = 500;

/// The most query values in all of a query's comparisons together: a plain
/// value counts one, an `$in` / `$nin` list its length.
pub const MAX_VALUES: usize = 1000;

/// The most fields in `$select`.
pub const MAX_SELECT: usize = 50;

/// The most keys in `$sort`. A sort no index serves computes every
/// matching row's key, so each key adds to the cost of a full scan; five
/// keep the worst query the other limits admit affordable (measured in
/// BENCHMARKS.md, "Conditions and sorts tested in Rust").
pub const MAX_SORT: usize = 5;

/// The longest field name, in characters.
pub const MAX_FIELD_NAME_LEN: usize = 64;

/// How a store parses queries: its pagination, its id field and its
/// protected fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryOptions {
    /// The pagination in effect for this call, if any: it decides the
    /// default and the largest `$limit`.
    pub paginate: Option<Paginate>,
    /// The id field, which `$select` always keeps.
    pub id_field: String,
    /// Fields an external caller may not filter, sort or select on (see
    /// the [module docs](self#protected-fields)). Shared, because a store
    /// builds options on every call.
    pub protected_fields: Arc<[String]>,
    /// True when a transport made the call (`params.provider` is set):
    /// only then are [`protected_fields`](Self::protected_fields) refused.
    pub external: bool,
    /// The bounds on a query's size, for every caller.
    pub limits: QueryLimits,
    /// Fields whose strings compare ignoring ASCII case in equality,
    /// `$ne`, `$in` and `$nin` (a store's case-insensitive unique fields).
    pub fold_case: Arc<[String]>,
}

/// The bounds that keep one query's cost bounded; a query over any of them
/// is 400 BadRequest naming the bound. Every store parses with
/// [`parse_query`], so they hold for each store alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryLimits {
    /// Levels of `$or` / `$and` nesting ([`MAX_DEPTH`]).
    pub depth: usize,
    /// Conditions, groups and their entries included ([`MAX_CONDITIONS`]).
    pub conditions: usize,
    /// Field comparisons ([`MAX_COMPARISONS`]).
    pub comparisons: usize,
    /// Values in one `$in` / `$nin` list ([`MAX_IN_VALUES`]).
    pub in_values: usize,
    /// Values in all comparisons together ([`MAX_VALUES`]).
    pub values: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            depth: MAX_DEPTH,
            conditions: MAX_CONDITIONS,
            comparisons: MAX_COMPARISONS,
            in_values: MAX_IN_VALUES,
            values: MAX_VALUES,
        }
    }
}

impl QueryOptions {
    /// Options for a store whose id field is `id_field`, without pagination
    /// or protected fields, for an internal call.
    pub fn new(id_field: impl Into<String>) -> Self {
        Self {
            paginate: None,
            id_field: id_field.into(),
            protected_fields: Arc::from(Vec::new()),
            external: false,
            limits: QueryLimits::default(),
            fold_case: Arc::from(Vec::new()),
        }
    }

    /// Sets the fields compared ignoring case.
    #[must_use]
    pub fn fold_case(mut self, fields: Arc<[String]>) -> Self {
        self.fold_case = fields;
        self
    }

    /// Sets the bounds on a query's size.
    #[must_use]
    pub fn limits(mut self, limits: QueryLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets the pagination.
    #[must_use]
    pub fn paginate(mut self, paginate: Option<Paginate>) -> Self {
        self.paginate = paginate;
        self
    }

    /// Sets the protected fields.
    #[must_use]
    pub fn protected_fields(mut self, fields: Arc<[String]>) -> Self {
        self.protected_fields = fields;
        self
    }

    /// Marks the call as external (made by a transport) or internal.
    #[must_use]
    pub fn external(mut self, external: bool) -> Self {
        self.external = external;
        self
    }

    /// 400 when an external call names a protected field.
    fn check_protected(&self, field: &str) -> Result<()> {
        if self.external && self.protected_fields.iter().any(|f| f == field) {
            return Err(Error::bad_request(format!(
                "The field '{field}' is protected: it cannot be used to filter, sort or select"
            )));
        }
        Ok(())
    }
}

impl Default for QueryOptions {
    /// Id field `id`, no pagination.
    fn default() -> Self {
        Self::new("id")
    }
}

/// The direction of one `$sort` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortOrder {
    /// `1`: smallest first.
    Asc,
    /// `-1`: largest first.
    Desc,
}

/// A comparison of a field with a query value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Op {
    /// Equal (a plain value in the query).
    Eq,
    /// `$ne`: not equal.
    Ne,
    /// `$lt`: less than.
    Lt,
    /// `$lte`: less than or equal.
    Lte,
    /// `$gt`: greater than.
    Gt,
    /// `$gte`: greater than or equal.
    Gte,
    /// `$in`: equal to an element of the list.
    In,
    /// `$nin`: equal to no element of the list.
    Nin,
}

impl Op {
    /// The operator for a query key (`"$lt"`, ...). Equality has no key.
    pub fn from_key(key: &str) -> Option<Self> {
        match key {
            "$ne" => Some(Self::Ne),
            "$lt" => Some(Self::Lt),
            "$lte" => Some(Self::Lte),
            "$gt" => Some(Self::Gt),
            "$gte" => Some(Self::Gte),
            "$in" => Some(Self::In),
            "$nin" => Some(Self::Nin),
            _ => None,
        }
    }

    /// The query key of the operator; `None` for equality.
    pub fn key(self) -> Option<&'static str> {
        match self {
            Self::Eq => None,
            Self::Ne => Some("$ne"),
            Self::Lt => Some("$lt"),
            Self::Lte => Some("$lte"),
            Self::Gt => Some("$gt"),
            Self::Gte => Some("$gte"),
            Self::In => Some("$in"),
            Self::Nin => Some("$nin"),
        }
    }

    /// True for `$in` and `$nin`, whose value is a list.
    pub fn takes_list(self) -> bool {
        matches!(self, Self::In | Self::Nin)
    }
}

/// The condition part of a query, a tree of comparisons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Condition {
    /// Every condition holds (true when empty).
    And(Vec<Condition>),
    /// Some condition holds (false when empty).
    Or(Vec<Condition>),
    /// A comparison of a field's stored value with `value`.
    Field {
        /// The field, an identifier.
        field: String,
        /// The comparison.
        op: Op,
        /// The query value: a string, number, boolean or `null`; for
        /// [`Op::In`] and [`Op::Nin`] always an array of those.
        value: Value,
        /// Strings are compared ignoring ASCII case (equality, `$ne`,
        /// `$in`, `$nin` on a field the store declared case-insensitive,
        /// such as an email); the parser then gives `value` in lower case.
        fold_case: bool,
    },
}

impl Condition {
    /// True when `record` satisfies the condition; see [`matches()`].
    pub fn matches(&self, record: &Map<String, Value>) -> bool {
        matches(self, record)
    }
}

/// The filters of a query: what to return rather than which records match.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Filters {
    /// `$limit`, after pagination: the most records to return; `None` for
    /// no limit.
    pub limit: Option<usize>,
    /// `$skip`: how many matching records to skip (0 when absent).
    pub skip: usize,
    /// `$sort`: the sort keys, in order.
    pub sort: Vec<(String, SortOrder)>,
    /// `$select`: the fields to return, without duplicates and always
    /// ending with the id field when the query did not name it; `None`
    /// returns every field.
    pub select: Option<Vec<String>>,
}

impl Filters {
    /// Applies `$select` to a record: a copy with only the selected fields
    /// that it has, in `$select` order, or the whole record.
    pub fn project(&self, record: &Map<String, Value>) -> Map<String, Value> {
        match &self.select {
            Some(fields) => select_fields(record, fields),
            None => record.clone(),
        }
    }

    /// [`project`](Self::project) of a record the caller no longer needs:
    /// without `$select` it is returned as it is, not copied.
    pub fn project_owned(&self, record: Map<String, Value>) -> Map<String, Value> {
        match &self.select {
            Some(fields) => select_fields(&record, fields),
            None => record,
        }
    }
}

/// A validated query.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedQuery {
    /// `$limit`, `$skip`, `$sort`, `$select`.
    pub filters: Filters,
    /// Everything else: the top level is always an [`Condition::And`] of
    /// the query's conditions, in the query's key order.
    pub condition: Condition,
}

impl ParsedQuery {
    /// True when `record` satisfies the query's conditions.
    pub fn matches(&self, record: &Map<String, Value>) -> bool {
        matches(&self.condition, record)
    }
}

/// Validates a Feathers query and parses it; 400 BadRequest for anything
/// outside the grammar or the bounds (see the [module docs](self)).
pub fn parse_query(query: &Map<String, Value>, options: &QueryOptions) -> Result<ParsedQuery> {
    let mut parser = Parser {
        conditions: 0,
        comparisons: 0,
        values: 0,
        options,
    };
    let mut filters = Filters::default();
    let mut limit = None;
    let mut conditions = Vec::new();
    for (key, value) in query {
        match key.as_str() {
            "$limit" => limit = Some(parse_count("$limit", value)?),
            "$skip" => filters.skip = parse_count("$skip", value)?,
            "$sort" => filters.sort = parse_sort(value, options)?,
            "$select" => filters.select = Some(parse_select(value, options)?),
            "$or" | "$and" => conditions.push(parser.group(key, value, 1)?),
            other if other.starts_with('$') => {
                return Err(Error::bad_request(format!(
                    "Invalid filter value {}",
                    shown(other)
                )));
            }
            field => parser.field(field, value, &mut conditions)?,
        }
    }
    filters.limit = match options.paginate {
        Some(paginate) => Some(limit.unwrap_or(paginate.default).min(paginate.max)),
        None => limit,
    };
    Ok(ParsedQuery {
        filters,
        condition: Condition::And(conditions),
    })
}

/// Counts conditions, comparisons and values against the
/// [`QueryLimits`] while parsing, so that an oversized query is refused
/// before more of it is copied.
struct Parser<'o> {
    conditions: usize,
    comparisons: usize,
    values: usize,
    options: &'o QueryOptions,
}

impl Parser<'_> {
    fn count(&mut self) -> Result<()> {
        self.conditions += 1;
        let max = self.options.limits.conditions;
        if self.conditions > max {
            return Err(Error::bad_request(format!(
                "Query has too many conditions: at most {max} are allowed"
            )));
        }
        Ok(())
    }

    /// Counts one comparison of `values` query values.
    fn compare(&mut self, values: usize) -> Result<()> {
        self.count()?;
        self.comparisons += 1;
        let limits = &self.options.limits;
        if self.comparisons > limits.comparisons {
            return Err(Error::bad_request(format!(
                "Query has too many comparisons: at most {} are allowed",
                limits.comparisons
            )));
        }
        self.values = self.values.saturating_add(values);
        if self.values > limits.values {
            return Err(Error::bad_request(format!(
                "Query has too many values: at most {} in all its comparisons are allowed",
                limits.values
            )));
        }
        Ok(())
    }

    /// `$or` / `$and` at nesting level `depth`.
    fn group(&mut self, key: &str, value: &Value, depth: usize) -> Result<Condition> {
        let max = self.options.limits.depth;
        if depth > max {
            return Err(Error::bad_request(format!(
                "Query is nested too deeply: at most {max} levels of $or/$and are allowed"
            )));
        }
        self.count()?;
        let Value::Array(entries) = value else {
            return Err(Error::bad_request(format!(
                "{key} must be an array of objects"
            )));
        };
        let mut parsed = Vec::with_capacity(entries.len());
        for entry in entries {
            let Value::Object(entry) = entry else {
                return Err(Error::bad_request(format!(
                    "{key} must be an array of objects"
                )));
            };
            self.count()?;
            let mut conditions = Vec::with_capacity(entry.len());
            for (key, value) in entry {
                match key.as_str() {
                    "$or" | "$and" => conditions.push(self.group(key, value, depth + 1)?),
                    other if other.starts_with('$') => {
                        return Err(invalid_parameter(other, entry));
                    }
                    field => self.field(field, value, &mut conditions)?,
                }
            }
            parsed.push(Condition::And(conditions));
        }
        Ok(if key == "$or" {
            Condition::Or(parsed)
        } else {
            Condition::And(parsed)
        })
    }

    /// True when `op` on `field` compares strings ignoring case.
    fn folds(&self, field: &str, op: Op) -> bool {
        matches!(op, Op::Eq | Op::Ne | Op::In | Op::Nin)
            && self.options.fold_case.iter().any(|f| f == field)
    }

    /// A condition on `field`, pushed onto `out` (one per operator).
    fn field(&mut self, field: &str, value: &Value, out: &mut Vec<Condition>) -> Result<()> {
        check_field_name(field)?;
        self.options.check_protected(field)?;
        match value {
            Value::Array(_) => Err(Error::bad_request(format!(
                "Invalid value for '{field}': an array is not a query value (use $in)"
            ))),
            Value::Object(operators) => {
                if operators.is_empty() || operators.keys().any(|key| !key.starts_with('$')) {
                    return Err(Error::bad_request(format!(
                        "Invalid value for '{field}': an object must contain only operators \
                         ($in, $nin, $lt, $lte, $gt, $gte, $ne)"
                    )));
                }
                for (key, operand) in operators {
                    let op = Op::from_key(key).ok_or_else(|| invalid_parameter(key, operators))?;
                    let value = if op.takes_list() {
                        let list = parse_list(field, key, operand, self.options.limits.in_values)?;
                        self.compare(list.as_array().map_or(1, Vec::len))?;
                        list
                    } else if is_scalar(operand) {
                        self.compare(1)?;
                        operand.clone()
                    } else {
                        return Err(Error::bad_request(format!(
                            "Invalid value for {key} on '{field}': expected a string, number, \
                             boolean or null"
                        )));
                    };
                    let fold_case = self.folds(field, op);
                    out.push(Condition::Field {
                        field: field.to_owned(),
                        op,
                        value: if fold_case { folded(&value) } else { value },
                        fold_case,
                    });
                }
                Ok(())
            }
            scalar => {
                self.compare(1)?;
                let fold_case = self.folds(field, Op::Eq);
                out.push(Condition::Field {
                    field: field.to_owned(),
                    op: Op::Eq,
                    value: if fold_case {
                        folded(scalar)
                    } else {
                        scalar.clone()
                    },
                    fold_case,
                });
                Ok(())
            }
        }
    }
}

/// Feathers' error for an unknown operator (adapter-commons `query.ts`,
/// `validateQueryProperty`): its data is the object that holds the key.
fn invalid_parameter(key: &str, within: &Map<String, Value>) -> Error {
    Error::bad_request(format!("Invalid query parameter {}", shown(key)))
        .with_data(Value::Object(within.clone()))
}

/// A string for an error message, cut short if a client sent a long one.
fn shown(text: &str) -> String {
    const MAX: usize = 64;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

fn is_scalar(value: &Value) -> bool {
    !matches!(value, Value::Array(_) | Value::Object(_))
}

/// True when `name` is a valid field name (see the [module docs](self)).
pub fn is_field_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    name.len() <= MAX_FIELD_NAME_LEN
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn check_field_name(name: &str) -> Result<()> {
    if is_field_name(name) {
        Ok(())
    } else {
        Err(Error::bad_request(format!(
            "Invalid field name '{}': a field name is letters, digits and _, not starting with a \
             digit, at most {MAX_FIELD_NAME_LEN} characters",
            shown(name)
        )))
    }
}

/// `$limit` / `$skip`: a non-negative integer or a string of digits.
fn parse_count(name: &str, value: &Value) -> Result<usize> {
    let parsed = match value {
        Value::Number(n) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse::<usize>().ok()
        }
        _ => None,
    };
    parsed.ok_or_else(|| Error::bad_request(format!("{name} must be a non-negative integer")))
}

fn parse_sort(value: &Value, options: &QueryOptions) -> Result<Vec<(String, SortOrder)>> {
    let Value::Object(keys) = value else {
        return Err(Error::bad_request(
            "$sort must be an object of field names to 1 or -1",
        ));
    };
    if keys.len() > MAX_SORT {
        return Err(Error::bad_request(format!(
            "$sort has too many fields: at most {MAX_SORT} are allowed"
        )));
    }
    keys.iter()
        .map(|(field, order)| {
            check_field_name(field)?;
            options.check_protected(field)?;
            let order = match order {
                Value::Number(n) if n.as_i64() == Some(1) => SortOrder::Asc,
                Value::Number(n) if n.as_i64() == Some(-1) => SortOrder::Desc,
                Value::String(s) if s == "1" => SortOrder::Asc,
                Value::String(s) if s == "-1" => SortOrder::Desc,
                _ => {
                    return Err(Error::bad_request(format!(
                        "Invalid $sort value for '{field}': expected 1 or -1"
                    )));
                }
            };
            Ok((field.clone(), order))
        })
        .collect()
}

fn parse_select(value: &Value, options: &QueryOptions) -> Result<Vec<String>> {
    let id_field = options.id_field.as_str();
    let invalid = || Error::bad_request("$select must be a field name or an array of field names");
    let names: Vec<&str> = match value {
        Value::String(name) => vec![name.as_str()],
        Value::Array(names) => names
            .iter()
            .map(|name| name.as_str().ok_or_else(invalid))
            .collect::<Result<_>>()?,
        _ => return Err(invalid()),
    };
    if names.len() > MAX_SELECT {
        return Err(Error::bad_request(format!(
            "$select has too many fields: at most {MAX_SELECT} are allowed"
        )));
    }
    let mut fields: Vec<String> = Vec::with_capacity(names.len() + 1);
    for name in names {
        check_field_name(name)?;
        options.check_protected(name)?;
        if !fields.iter().any(|f| f == name) {
            fields.push(name.to_owned());
        }
    }
    if !fields.iter().any(|f| f == id_field) {
        fields.push(id_field.to_owned());
    }
    Ok(fields)
}

/// `$in` / `$nin`: an array of scalars, or one scalar.
fn parse_list(field: &str, key: &str, value: &Value, max: usize) -> Result<Value> {
    let items = match value {
        Value::Array(items) => items.as_slice(),
        other => std::slice::from_ref(other),
    };
    if items.len() > max {
        return Err(Error::bad_request(format!(
            "{key} on '{field}' has too many values: at most {max} are allowed"
        )));
    }
    if !items.iter().all(is_scalar) {
        return Err(Error::bad_request(format!(
            "Invalid value for {key} on '{field}': expected an array of strings, numbers, \
             booleans or nulls"
        )));
    }
    Ok(Value::Array(items.to_vec()))
}

/// True when `record` satisfies `condition`. A missing field is `null`;
/// the comparison rules are in the [module docs](self).
pub fn matches(condition: &Condition, record: &Map<String, Value>) -> bool {
    match condition {
        Condition::And(conditions) => conditions.iter().all(|c| matches(c, record)),
        Condition::Or(conditions) => conditions.iter().any(|c| matches(c, record)),
        Condition::Field {
            field,
            op,
            value,
            fold_case,
        } => {
            let stored = record.get(field).unwrap_or(&Value::Null);
            match stored {
                // The parser lowered the query's strings already.
                Value::String(text) if *fold_case => {
                    compare_op(*op, &Value::String(text.to_ascii_lowercase()), value)
                }
                _ => compare_op(*op, stored, value),
            }
        }
    }
}

/// A value with its strings (and those of a list) in ASCII lower case,
/// as SQLite's `lower()` folds them.
fn folded(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(s.to_ascii_lowercase()),
        Value::Array(items) => Value::Array(items.iter().map(folded).collect()),
        other => other.clone(),
    }
}

/// True when a stored value (`null` when missing) satisfies `op` with the
/// query value `query`. For `$in` / `$nin` a non-array `query` is a
/// one-element list.
pub fn compare_op(op: Op, stored: &Value, query: &Value) -> bool {
    match op {
        Op::Eq => equals(stored, query),
        Op::Ne => !equals(stored, query),
        Op::Lt => ordered(stored, query) == Some(Ordering::Less),
        Op::Lte => matches!(
            ordered(stored, query),
            Some(Ordering::Less | Ordering::Equal)
        ),
        Op::Gt => ordered(stored, query) == Some(Ordering::Greater),
        Op::Gte => matches!(
            ordered(stored, query),
            Some(Ordering::Greater | Ordering::Equal)
        ),
        Op::In => list(query).iter().any(|q| equals(stored, q)),
        Op::Nin => !list(query).iter().any(|q| equals(stored, q)),
    }
}

fn list(query: &Value) -> &[Value] {
    match query {
        Value::Array(items) => items,
        other => std::slice::from_ref(other),
    }
}

fn equals(stored: &Value, query: &Value) -> bool {
    compare(stored, query) == Some(Ordering::Equal)
}

/// [`compare`] for `$lt` and friends: never ordered when a side is null.
fn ordered(stored: &Value, query: &Value) -> Option<Ordering> {
    if stored.is_null() || query.is_null() {
        None
    } else {
        compare(stored, query)
    }
}

/// Compares a stored value with a query value by the comparison rules of
/// the [module docs](self): `None` when they cannot be compared. `null`
/// equals `null`; arrays and objects (which queries never contain) are only
/// equal to an identical value.
pub fn compare(stored: &Value, query: &Value) -> Option<Ordering> {
    match (stored, query) {
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        (Value::Number(a), Value::Number(b)) => a.as_f64()?.partial_cmp(&b.as_f64()?),
        (Value::String(a), Value::String(b)) => Some(a.as_str().cmp(b.as_str())),
        (Value::Number(a), Value::String(b)) => a.as_f64()?.partial_cmp(&coerce_number(b)?),
        (Value::Bool(a), Value::String(b)) => Some(a.cmp(&coerce_bool(b)?)),
        (Value::Array(_), Value::Array(_)) | (Value::Object(_), Value::Object(_)) => {
            (stored == query).then_some(Ordering::Equal)
        }
        _ => None,
    }
}

/// A query string read as a number, for comparison with a stored number:
/// whatever `str::parse::<f64>` reads as a finite number (`"5"`, `"-2.5"`,
/// `"1e3"`, `"+4"`, `".5"`; not `" 5"`, `"NaN"`, `"inf"`).
pub fn coerce_number(query: &str) -> Option<f64> {
    query.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// A query string read as a boolean, for comparison with a stored boolean:
/// exactly `"true"` or `"false"`.
pub fn coerce_bool(query: &str) -> Option<bool> {
    match query {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// The total order used for sorting: missing or `null` < booleans <
/// numbers < strings < arrays < objects; within a type, natural order
/// (arrays and objects by their compact JSON text). `None` is a missing
/// field.
pub fn sort_cmp(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    let a = a.unwrap_or(&Value::Null);
    let b = b.unwrap_or(&Value::Null);
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
            _ => Ordering::Equal,
        },
        (Value::String(x), Value::String(y)) => x.as_str().cmp(y.as_str()),
        (Value::Array(_), Value::Array(_)) | (Value::Object(_), Value::Object(_)) => {
            a.to_string().cmp(&b.to_string())
        }
        _ => type_rank(a).cmp(&type_rank(b)),
    }
}

fn type_rank(value: &Value) -> u8 {
    match value {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    }
}

/// Compares two records by the `$sort` keys, in order.
pub fn compare_records(
    a: &Map<String, Value>,
    b: &Map<String, Value>,
    sort: &[(String, SortOrder)],
) -> Ordering {
    for (field, order) in sort {
        let ordering = sort_cmp(a.get(field), b.get(field));
        let ordering = match order {
            SortOrder::Asc => ordering,
            SortOrder::Desc => ordering.reverse(),
        };
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    Ordering::Equal
}

/// Sorts records by the `$sort` keys; a stable sort, so ties keep their
/// order.
pub fn sort_records<R: Borrow<Map<String, Value>>>(
    records: &mut [R],
    sort: &[(String, SortOrder)],
) {
    if !sort.is_empty() {
        records.sort_by(|a, b| compare_records(a.borrow(), b.borrow(), sort));
    }
}

/// A copy of `record` with only `fields` (those it has), in `fields`
/// order. [`Filters::select`](Filters::select) already ends with the id field.
pub fn select_fields(record: &Map<String, Value>, fields: &[String]) -> Map<String, Value> {
    fields
        .iter()
        .filter_map(|field| {
            record
                .get(field)
                .map(|value| (field.clone(), value.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use serde_json::json;

    fn obj(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    fn parse(query: Value) -> Result<ParsedQuery> {
        parse_query(&obj(query), &QueryOptions::default())
    }

    fn parse_paginated(query: Value, default: usize, max: usize) -> Result<ParsedQuery> {
        let options = QueryOptions::default().paginate(Some(Paginate { default, max }));
        parse_query(&obj(query), &options)
    }

    fn error(query: Value) -> String {
        let err = parse(query).expect_err("query should be rejected");
        assert_eq!(err.kind(), ErrorKind::BadRequest);
        err.message().to_owned()
    }

    /// True when `query` matches `record`.
    fn hit(query: Value, record: Value) -> bool {
        parse(query).expect("valid query").matches(&obj(record))
    }

    fn field(field: &str, op: Op, value: Value) -> Condition {
        Condition::Field {
            field: field.to_owned(),
            op,
            value,
            fold_case: false,
        }
    }

    #[test]
    fn declared_fields_compare_ignoring_case() {
        let options = QueryOptions::default().fold_case(Arc::from(vec!["email".to_owned()]));
        let query = |q: Value| parse_query(&obj(q), &options).unwrap();
        let record = obj(json!({"email": "Ada@Example.com", "name": "Ada"}));
        assert!(query(json!({"email": "ada@example.COM"})).matches(&record));
        assert!(query(json!({"email": {"$in": ["x", "ADA@example.com"]}})).matches(&record));
        assert!(!query(json!({"email": {"$ne": "ada@example.com"}})).matches(&record));
        // Only the declared field, and only equality.
        assert!(!query(json!({"name": "ada"})).matches(&record));
        assert!(!query(json!({"email": {"$gte": "b"}})).matches(&record));
    }

    #[test]
    fn parses_the_url_form() {
        let parsed = parse(json!({
            "$limit": "5", "$skip": "2", "$sort": {"createdAt": "-1", "name": 1},
            "$select": ["name", "name", "age"], "name": {"$in": ["a", "b"]}, "age": {"$gte": "18", "$lt": 65}
        }))
        .unwrap();
        assert_eq!(
            parsed.filters,
            Filters {
                limit: Some(5),
                skip: 2,
                sort: vec![
                    ("createdAt".to_owned(), SortOrder::Desc),
                    ("name".to_owned(), SortOrder::Asc)
                ],
                select: Some(vec!["name".to_owned(), "age".to_owned(), "id".to_owned()]),
            }
        );
        assert_eq!(
            parsed.condition,
            Condition::And(vec![
                field("name", Op::In, json!(["a", "b"])),
                field("age", Op::Gte, json!("18")),
                field("age", Op::Lt, json!(65)),
            ])
        );
    }

    #[test]
    fn parses_or_and_nested_groups() {
        let parsed = parse(json!({
            "$or": [{"a": 1}, {"b": {"$ne": null}, "$and": [{"c": true}]}],
            "d": "x"
        }))
        .unwrap();
        assert_eq!(
            parsed.condition,
            Condition::And(vec![
                Condition::Or(vec![
                    Condition::And(vec![field("a", Op::Eq, json!(1))]),
                    Condition::And(vec![
                        field("b", Op::Ne, Value::Null),
                        Condition::And(vec![Condition::And(vec![field("c", Op::Eq, json!(true))])]),
                    ]),
                ]),
                field("d", Op::Eq, json!("x")),
            ])
        );
        assert!(parse(json!({"$and": [{"$or": [{"a": 1}]}]})).is_ok());
    }

    #[test]
    fn empty_query_matches_everything() {
        let parsed = parse(json!({})).unwrap();
        assert_eq!(parsed.filters, Filters::default());
        assert_eq!(parsed.condition, Condition::And(vec![]));
        assert!(parsed.matches(&obj(json!({"a": 1}))));
    }

    #[test]
    fn empty_or_matches_nothing_and_empty_and_everything() {
        assert!(!hit(json!({"$or": []}), json!({"a": 1})));
        assert!(hit(json!({"$and": []}), json!({"a": 1})));
        assert!(hit(json!({"$or": [{}]}), json!({"a": 1})));
    }

    #[test]
    fn unknown_filter_and_operator_messages() {
        assert_eq!(error(json!({"$foo": 1})), "Invalid filter value $foo");
        assert_eq!(error(json!({"$eq": 1})), "Invalid filter value $eq");
        assert_eq!(
            error(json!({"age": {"$foo": 1}})),
            "Invalid query parameter $foo"
        );
        assert_eq!(
            error(json!({"age": {"$eq": 1}})),
            "Invalid query parameter $eq"
        );
        assert_eq!(
            error(json!({"age": {"$or": []}})),
            "Invalid query parameter $or"
        );
        assert_eq!(
            error(json!({"$or": [{"$limit": 1}]})),
            "Invalid query parameter $limit"
        );
        assert_eq!(
            error(json!({"$or": [{"a": {"$bar": 1}}]})),
            "Invalid query parameter $bar"
        );
        let long = format!("${}", "x".repeat(500));
        let message = error(json!({ long: 1 }));
        assert!(message.len() < 100, "{message}");
    }

    #[test]
    fn limit_and_skip_accept_integers_and_digit_strings() {
        for (value, expected) in [
            (json!(5), 5),
            (json!("5"), 5),
            (json!(0), 0),
            (json!("0"), 0),
        ] {
            let parsed = parse(json!({"$limit": value.clone(), "$skip": value})).unwrap();
            assert_eq!(parsed.filters.limit, Some(expected));
            assert_eq!(parsed.filters.skip, expected);
        }
        for bad in [
            json!(-1),
            json!("-1"),
            json!(1.5),
            json!("1.5"),
            json!(""),
            json!("+5"),
            json!(" 5"),
            json!("abc"),
            json!(null),
            json!(true),
            json!([5]),
            json!({"a": 1}),
            json!("99999999999999999999999999"),
        ] {
            assert_eq!(
                error(json!({"$limit": bad.clone()})),
                "$limit must be a non-negative integer"
            );
            assert_eq!(
                error(json!({"$skip": bad})),
                "$skip must be a non-negative integer"
            );
        }
    }

    #[test]
    fn sort_accepts_one_and_minus_one() {
        let parsed = parse(json!({"$sort": {"a": 1, "b": -1, "c": "1", "d": "-1"}})).unwrap();
        let orders: Vec<SortOrder> = parsed.filters.sort.iter().map(|(_, o)| *o).collect();
        assert_eq!(
            orders,
            [
                SortOrder::Asc,
                SortOrder::Desc,
                SortOrder::Asc,
                SortOrder::Desc
            ]
        );
        for bad in [json!(0), json!(2), json!("asc"), json!(1.5), json!(null)] {
            assert_eq!(
                error(json!({"$sort": {"a": bad}})),
                "Invalid $sort value for 'a': expected 1 or -1"
            );
        }
        for bad in [json!("a"), json!(["a"]), json!(1)] {
            assert_eq!(
                error(json!({"$sort": bad})),
                "$sort must be an object of field names to 1 or -1"
            );
        }
        assert!(error(json!({"$sort": {"a-b": 1}})).starts_with("Invalid field name 'a-b'"));
    }

    #[test]
    fn select_accepts_a_string_or_an_array_and_keeps_the_id() {
        let parsed = parse(json!({"$select": "name"})).unwrap();
        assert_eq!(
            parsed.filters.select,
            Some(vec!["name".to_owned(), "id".to_owned()])
        );
        let parsed = parse(json!({"$select": ["id", "name"]})).unwrap();
        assert_eq!(
            parsed.filters.select,
            Some(vec!["id".to_owned(), "name".to_owned()])
        );
        let parsed = parse_query(&obj(json!({"$select": []})), &QueryOptions::new("_id")).unwrap();
        assert_eq!(parsed.filters.select, Some(vec!["_id".to_owned()]));
        for bad in [json!(1), json!([1]), json!(["a", null]), json!({"a": 1})] {
            assert_eq!(
                error(json!({"$select": bad})),
                "$select must be a field name or an array of field names"
            );
        }
        assert!(error(json!({"$select": ["a.b"]})).starts_with("Invalid field name 'a.b'"));
    }

    #[test]
    fn select_projects_in_select_order() {
        let parsed = parse(json!({"$select": ["b", "missing", "a"]})).unwrap();
        let record = obj(json!({"id": 1, "a": 1, "b": null, "c": 3}));
        let selected = parsed.filters.project(&record);
        assert_eq!(
            serde_json::to_string(&selected).unwrap(),
            r#"{"b":null,"a":1,"id":1}"#
        );
        let all = parse(json!({})).unwrap().filters.project(&record);
        assert_eq!(all, record);
    }

    #[test]
    fn or_and_and_must_be_arrays_of_objects() {
        for key in ["$or", "$and"] {
            for bad in [
                json!({"a": 1}),
                json!("a"),
                json!([1]),
                json!([{"a": 1}, []]),
            ] {
                assert_eq!(
                    error(json!({ key: bad })),
                    format!("{key} must be an array of objects")
                );
            }
        }
    }

    #[test]
    fn field_values_must_be_scalars_or_operator_objects() {
        assert_eq!(
            error(json!({"tags": ["a"]})),
            "Invalid value for 'tags': an array is not a query value (use $in)"
        );
        let plain = "Invalid value for 'address': an object must contain only operators \
                     ($in, $nin, $lt, $lte, $gt, $gte, $ne)";
        assert_eq!(error(json!({"address": {"city": "x"}})), plain);
        assert_eq!(error(json!({"address": {"$ne": 1, "city": "x"}})), plain);
        assert_eq!(error(json!({"address": {}})), plain);
        for op in ["$ne", "$lt", "$lte", "$gt", "$gte"] {
            assert_eq!(
                error(json!({"a": { op: [1] }})),
                format!(
                    "Invalid value for {op} on 'a': expected a string, number, boolean or null"
                )
            );
            assert!(parse(json!({"a": { op: {"b": 1} }})).is_err());
        }
        for op in ["$in", "$nin"] {
            assert_eq!(
                error(json!({"a": { op: [1, [2]] }})),
                format!(
                    "Invalid value for {op} on 'a': expected an array of strings, numbers, \
                     booleans or nulls"
                )
            );
            assert!(parse(json!({"a": { op: {"b": 1} }})).is_err());
        }
    }

    #[test]
    fn field_names_must_be_identifiers() {
        for good in ["a", "_", "_id", "createdAt", "a1_b2", &"x".repeat(64)] {
            assert!(is_field_name(good), "{good}");
            assert!(parse(json!({ good: 1 })).is_ok(), "{good}");
        }
        for bad in [
            "",
            "1a",
            "a-b",
            "a.b",
            "a b",
            "é",
            "a;drop",
            &"x".repeat(65),
        ] {
            assert!(!is_field_name(bad), "{bad}");
            let message = error(json!({ bad: 1 }));
            assert!(message.starts_with("Invalid field name"), "{message}");
        }
        assert!(error(json!({"$or": [{"a.b": 1}]})).starts_with("Invalid field name 'a.b'"));
    }

    #[test]
    fn in_and_nin_take_a_list_or_one_value() {
        let parsed = parse(json!({"a": {"$in": "x", "$nin": 5}})).unwrap();
        assert_eq!(
            parsed.condition,
            Condition::And(vec![
                field("a", Op::In, json!(["x"])),
                field("a", Op::Nin, json!([5])),
            ])
        );
        assert!(hit(json!({"a": {"$in": "x"}}), json!({"a": "x"})));
        assert!(!hit(json!({"a": {"$in": []}}), json!({"a": "x"})));
        assert!(hit(json!({"a": {"$nin": []}}), json!({"a": "x"})));
    }

    #[test]
    fn every_operator_on_numbers() {
        let rec = json!({"n": 5});
        let cases = [
            (json!(5), true),
            (json!({"$ne": 5}), false),
            (json!({"$ne": 4}), true),
            (json!({"$lt": 6}), true),
            (json!({"$lt": 5}), false),
            (json!({"$lte": 5}), true),
            (json!({"$lte": 4.5}), false),
            (json!({"$gt": 4}), true),
            (json!({"$gt": 5}), false),
            (json!({"$gte": 5}), true),
            (json!({"$gte": 5.5}), false),
            (json!({"$in": [1, 5]}), true),
            (json!({"$in": [1, 2]}), false),
            (json!({"$nin": [1, 5]}), false),
            (json!({"$nin": [1, 2]}), true),
            (json!({"$gt": 1, "$lt": 10}), true),
            (json!({"$gt": 1, "$lt": 3}), false),
            (json!(5.0), true),
        ];
        for (condition, expected) in cases {
            assert_eq!(
                hit(json!({ "n": condition.clone() }), rec.clone()),
                expected,
                "{condition}"
            );
        }
    }

    #[test]
    fn strings_and_booleans_compare_naturally() {
        assert!(hit(json!({"s": {"$lt": "b"}}), json!({"s": "a"})));
        assert!(
            hit(json!({"s": {"$gt": "B"}}), json!({"s": "a"})),
            "code point order"
        );
        assert!(hit(json!({"s": {"$gt": "z"}}), json!({"s": "é"})));
        assert!(hit(json!({"s": {"$gte": "ab"}}), json!({"s": "abc"})));
        assert!(hit(json!({"b": {"$lt": true}}), json!({"b": false})));
        assert!(!hit(json!({"b": {"$gt": true}}), json!({"b": true})));
        assert!(hit(json!({"b": false}), json!({"b": false})));
    }

    #[test]
    fn numeric_strings_coerce_against_stored_numbers() {
        assert!(hit(json!({"n": "5"}), json!({"n": 5})));
        assert!(hit(json!({"n": "5.0"}), json!({"n": 5})));
        assert!(hit(json!({"n": {"$lt": "3"}}), json!({"n": 2.5})));
        assert!(hit(json!({"n": {"$gt": "2.5"}}), json!({"n": 3})));
        assert!(hit(json!({"n": {"$in": ["1", "5"]}}), json!({"n": 5})));
        assert!(!hit(json!({"n": {"$nin": ["5"]}}), json!({"n": 5})));
        assert!(hit(json!({"n": "1e3"}), json!({"n": 1000})));
        assert!(hit(json!({"n": "-2"}), json!({"n": -2})));
        // Not numbers: never equal, never ordered.
        for text in ["abc", " 5", "5 ", "NaN", "inf", "", "0x5"] {
            assert!(!hit(json!({ "n": text }), json!({"n": 5})), "{text}");
            assert!(hit(json!({"n": {"$ne": text}}), json!({"n": 5})), "{text}");
            assert!(!hit(json!({"n": {"$lt": text}}), json!({"n": 5})), "{text}");
            assert!(
                !hit(json!({"n": {"$gte": text}}), json!({"n": 5})),
                "{text}"
            );
        }
        // A number in the query never matches a stored string.
        assert!(!hit(json!({"s": 5}), json!({"s": "5"})));
        assert!(!hit(json!({"s": {"$lt": 6}}), json!({"s": "5"})));
        assert!(hit(json!({"s": {"$ne": 5}}), json!({"s": "5"})));
        assert!(hit(json!({"s": "5"}), json!({"s": "5"})));
        assert_eq!(coerce_number("2.5"), Some(2.5));
        assert_eq!(coerce_number("1e999"), None);
    }

    #[test]
    fn boolean_strings_coerce_against_stored_booleans() {
        assert!(hit(json!({"b": "true"}), json!({"b": true})));
        assert!(hit(json!({"b": "false"}), json!({"b": false})));
        assert!(!hit(json!({"b": "true"}), json!({"b": false})));
        assert!(hit(json!({"b": {"$lt": "true"}}), json!({"b": false})));
        assert!(hit(json!({"b": {"$in": ["true"]}}), json!({"b": true})));
        assert!(!hit(json!({"b": "TRUE"}), json!({"b": true})));
        assert!(!hit(json!({"b": "1"}), json!({"b": true})));
        assert!(!hit(json!({"b": 1}), json!({"b": true})));
        // A boolean string is a plain string for stored strings.
        assert!(hit(json!({"s": "true"}), json!({"s": "true"})));
        assert!(!hit(json!({"s": true}), json!({"s": "true"})));
    }

    #[test]
    fn different_types_are_never_equal_or_ordered() {
        let records = [
            json!({"v": "x"}),
            json!({"v": 1}),
            json!({"v": true}),
            json!({"v": [1]}),
            json!({"v": {"a": 1}}),
        ];
        for record in records {
            for query in [json!(false), json!(2)] {
                if record["v"] == json!(true) && query == json!(false)
                    || record["v"] == json!(1) && query == json!(2)
                {
                    continue;
                }
                assert!(!hit(json!({ "v": query.clone() }), record.clone()));
                assert!(hit(json!({"v": {"$ne": query.clone()}}), record.clone()));
                for op in ["$lt", "$lte", "$gt", "$gte"] {
                    assert!(
                        !hit(json!({"v": { op: query.clone() }}), record.clone()),
                        "{op} {query} on {record}"
                    );
                }
            }
        }
    }

    #[test]
    fn null_is_not_coerced_and_missing_is_null() {
        assert!(hit(json!({"x": null}), json!({})));
        assert!(hit(json!({"x": null}), json!({"x": null})));
        assert!(!hit(json!({"x": null}), json!({"x": 0})));
        assert!(!hit(json!({"x": "null"}), json!({})));
        assert!(!hit(json!({"x": "null"}), json!({"x": null})));
        assert!(!hit(json!({"x": {"$ne": null}}), json!({})));
        assert!(!hit(json!({"x": {"$ne": null}}), json!({"x": null})));
        assert!(hit(json!({"x": {"$ne": null}}), json!({"x": false})));
        assert!(hit(json!({"x": {"$ne": 1}}), json!({})));
        for op in ["$lt", "$lte", "$gt", "$gte"] {
            assert!(!hit(json!({"x": { op: 1 }}), json!({})), "{op}");
            assert!(!hit(json!({"x": { op: null }}), json!({})), "{op}");
            assert!(!hit(json!({"x": { op: null }}), json!({"x": null})), "{op}");
            assert!(!hit(json!({"x": { op: null }}), json!({"x": 1})), "{op}");
        }
        assert!(hit(json!({"x": {"$nin": [1]}}), json!({})));
        assert!(!hit(json!({"x": {"$nin": [1, null]}}), json!({})));
        assert!(hit(json!({"x": {"$in": [null]}}), json!({})));
        assert!(!hit(json!({"x": {"$in": [1]}}), json!({})));
    }

    #[test]
    fn or_and_and_combine() {
        let query = json!({"$or": [{"a": 1}, {"b": {"$gt": 5}}], "c": {"$ne": "x"}});
        assert!(hit(query.clone(), json!({"a": 1})));
        assert!(hit(query.clone(), json!({"b": 6})));
        assert!(!hit(query.clone(), json!({"b": 5})));
        assert!(!hit(query, json!({"a": 1, "c": "x"})));
        let query = json!({"$and": [{"a": {"$gt": 1}}, {"a": {"$lt": 3}}]});
        assert!(hit(query.clone(), json!({"a": 2})));
        assert!(!hit(query, json!({"a": 3})));
        let nested =
            json!({"$or": [{"$or": [{"a": 1}, {"a": 2}]}, {"$and": [{"b": 1}, {"c": 1}]}]});
        assert!(hit(nested.clone(), json!({"a": 2})));
        assert!(hit(nested.clone(), json!({"b": 1, "c": 1})));
        assert!(!hit(nested, json!({"b": 1})));
    }

    #[test]
    fn pagination_defaults_and_clamps_the_limit() {
        let page = |query| parse_paginated(query, 10, 50).unwrap().filters.limit;
        assert_eq!(page(json!({})), Some(10));
        assert_eq!(page(json!({"$limit": 20})), Some(20));
        assert_eq!(page(json!({"$limit": "1000"})), Some(50));
        assert_eq!(page(json!({"$limit": 0})), Some(0));
        // A default above the maximum is clamped too.
        let limit = parse_paginated(json!({}), 100, 20).unwrap().filters.limit;
        assert_eq!(limit, Some(20));
        // Without pagination there is no default limit.
        assert_eq!(parse(json!({})).unwrap().filters.limit, None);
        assert_eq!(
            parse(json!({"$limit": 1000})).unwrap().filters.limit,
            Some(1000)
        );
    }

    #[test]
    fn depth_is_bounded() {
        fn nested(levels: usize) -> Value {
            let mut query = json!({"a": 1});
            for _ in 0..levels {
                query = json!({"$or": [query]});
            }
            query
        }
        assert!(parse(nested(MAX_DEPTH)).is_ok());
        assert_eq!(
            error(nested(MAX_DEPTH + 1)),
            "Query is nested too deeply: at most 4 levels of $or/$and are allowed"
        );
    }

    #[test]
    fn condition_count_is_bounded() {
        let message = "Query has too many conditions: at most 200 are allowed";
        // Empty entries count too.
        let entries: Vec<Value> = (0..MAX_CONDITIONS).map(|_| json!({})).collect();
        assert_eq!(error(json!({"$or": entries})), message);
        // Comparisons count, with the comparison bound lifted.
        let options = QueryOptions::default().limits(QueryLimits {
            comparisons: usize::MAX,
            values: usize::MAX,
            ..QueryLimits::default()
        });
        let fields = |n: usize| -> Map<String, Value> {
            (0..n).map(|i| (format!("f{i}"), json!(i))).collect()
        };
        assert!(parse_query(&fields(MAX_CONDITIONS), &options).is_ok());
        let err = parse_query(&fields(MAX_CONDITIONS + 1), &options).unwrap_err();
        assert_eq!(err.message(), message);
    }

    #[test]
    fn comparisons_and_values_are_bounded() {
        let fields = |n: usize, values: usize| -> Value {
            let list: Vec<String> = (0..values).map(|v| v.to_string()).collect();
            Value::Object(
                (0..n)
                    .map(|i| (format!("f{i}"), json!({ "$nin": list })))
                    .collect(),
            )
        };
        // At the bounds: 10 comparisons, 1000 values.
        assert!(parse(fields(MAX_COMPARISONS, MAX_VALUES / MAX_COMPARISONS)).is_ok());
        assert!(parse(fields(2, MAX_IN_VALUES)).is_ok());
        let comparisons = "Query has too many comparisons: at most 10 are allowed";
        assert_eq!(error(fields(MAX_COMPARISONS + 1, 1)), comparisons);
        // Each operator is a comparison, wherever it is nested.
        let ops: Vec<Value> = (0..MAX_COMPARISONS / 2 + 1)
            .map(|i| json!({"a": {"$gt": i, "$lt": i}}))
            .collect();
        assert_eq!(error(json!({"$or": [{"$and": ops}]})), comparisons);
        let values = "Query has too many values: at most 1000 in all its comparisons are allowed";
        assert_eq!(error(fields(3, MAX_IN_VALUES)), values);
        // The probe of the issue: 31 fields x $nin of 500.
        assert_eq!(error(fields(31, 500)), values);
        let err = parse(fields(31, 500)).unwrap_err();
        assert_eq!(err.code(), 400);
    }

    #[test]
    fn limits_are_configurable() {
        let tight = QueryOptions::default().limits(QueryLimits {
            depth: 1,
            comparisons: 2,
            in_values: 3,
            values: 4,
            ..QueryLimits::default()
        });
        let run =
            |query: Value| parse_query(&obj(query), &tight).map_err(|e| e.message().to_owned());
        assert!(run(json!({"a": 1, "b": {"$in": [1, 2, 3]}})).is_ok());
        assert_eq!(
            run(json!({"a": 1, "b": 2, "c": 3})).unwrap_err(),
            "Query has too many comparisons: at most 2 are allowed"
        );
        assert_eq!(
            run(json!({"b": {"$in": [1, 2, 3, 4]}})).unwrap_err(),
            "$in on 'b' has too many values: at most 3 are allowed"
        );
        assert_eq!(
            run(json!({"a": {"$in": [1, 2]}, "b": {"$nin": [1, 2, 3]}})).unwrap_err(),
            "Query has too many values: at most 4 in all its comparisons are allowed"
        );
        assert_eq!(
            run(json!({"$or": [{"$or": [{"a": 1}]}]})).unwrap_err(),
            "Query is nested too deeply: at most 1 levels of $or/$and are allowed"
        );
    }

    #[test]
    fn list_select_and_sort_sizes_are_bounded() {
        let list: Vec<usize> = (0..MAX_IN_VALUES).collect();
        assert!(parse(json!({"a": {"$in": list}})).is_ok());
        let list: Vec<usize> = (0..=MAX_IN_VALUES).collect();
        assert_eq!(
            error(json!({"a": {"$nin": list}})),
            "$nin on 'a' has too many values: at most 500 are allowed"
        );
        let names: Vec<String> = (0..MAX_SELECT).map(|i| format!("f{i}")).collect();
        assert!(parse(json!({ "$select": names })).is_ok());
        let names: Vec<String> = (0..=MAX_SELECT).map(|i| format!("f{i}")).collect();
        assert_eq!(
            error(json!({ "$select": names })),
            "$select has too many fields: at most 50 are allowed"
        );
        let sort: Map<String, Value> = (0..MAX_SORT).map(|i| (format!("f{i}"), json!(1))).collect();
        assert!(parse(json!({ "$sort": sort })).is_ok());
        let sort: Map<String, Value> = (0..=MAX_SORT)
            .map(|i| (format!("f{i}"), json!(1)))
            .collect();
        assert_eq!(
            error(json!({ "$sort": sort })),
            "$sort has too many fields: at most 5 are allowed"
        );
    }

    #[test]
    fn sorting_orders_types_and_is_stable() {
        let records: Vec<Map<String, Value>> = [
            json!({"i": 0, "v": "b"}),
            json!({"i": 1, "v": 2}),
            json!({"i": 2}),
            json!({"i": 3, "v": {"a": 1}}),
            json!({"i": 4, "v": [1]}),
            json!({"i": 5, "v": true}),
            json!({"i": 6, "v": null}),
            json!({"i": 7, "v": "a"}),
            json!({"i": 8, "v": 1.5}),
            json!({"i": 9, "v": false}),
            json!({"i": 10, "v": 2}),
        ]
        .into_iter()
        .map(obj)
        .collect();
        let order = |sort: Value| -> Vec<i64> {
            let parsed = parse(json!({ "$sort": sort })).unwrap();
            let mut refs: Vec<&Map<String, Value>> = records.iter().collect();
            sort_records(&mut refs, &parsed.filters.sort);
            refs.iter().map(|r| r["i"].as_i64().unwrap()).collect()
        };
        assert_eq!(order(json!({"v": 1})), [2, 6, 9, 5, 8, 1, 10, 7, 0, 4, 3]);
        assert_eq!(order(json!({"v": -1})), [3, 4, 0, 7, 1, 10, 8, 5, 9, 2, 6]);
        assert_eq!(order(json!({})), (0..=10).collect::<Vec<_>>());
    }

    #[test]
    fn multiple_sort_keys_apply_in_order() {
        let records: Vec<Map<String, Value>> = [
            json!({"i": 0, "a": 1, "b": "x"}),
            json!({"i": 1, "a": 2, "b": "y"}),
            json!({"i": 2, "a": 1, "b": "z"}),
            json!({"i": 3, "a": 2, "b": "x"}),
            json!({"i": 4, "a": 1, "b": "x"}),
        ]
        .into_iter()
        .map(obj)
        .collect();
        let parsed = parse(json!({"$sort": {"a": -1, "b": 1}})).unwrap();
        let mut sorted = records;
        sort_records(&mut sorted, &parsed.filters.sort);
        let ids: Vec<i64> = sorted.iter().map(|r| r["i"].as_i64().unwrap()).collect();
        assert_eq!(ids, [3, 1, 0, 4, 2]);
    }

    #[test]
    fn protected_fields_are_refused_to_external_callers_only() {
        let protected: Arc<[String]> = Arc::from(vec!["password".to_owned()]);
        let external = QueryOptions::default()
            .protected_fields(Arc::clone(&protected))
            .external(true);
        let message = "The field 'password' is protected: it cannot be used to filter, sort or \
                       select";
        for query in [
            json!({"password": "x"}),
            json!({"password": {"$gt": "$2"}}),
            json!({"$or": [{"a": 1}, {"$and": [{"password": {"$lt": "$3"}}]}]}),
            json!({"$sort": {"password": 1}}),
            json!({"$select": ["name", "password"]}),
            json!({"$select": "password"}),
        ] {
            let err = parse_query(&obj(query.clone()), &external).expect_err("refused");
            assert_eq!(
                (err.kind(), err.message()),
                (ErrorKind::BadRequest, message)
            );
            let internal = QueryOptions::default().protected_fields(Arc::clone(&protected));
            assert!(parse_query(&obj(query), &internal).is_ok());
        }
        assert!(parse_query(&obj(json!({"email": "a", "$sort": {"name": 1}})), &external).is_ok());
    }

    #[test]
    fn op_keys_round_trip() {
        for op in [Op::Ne, Op::Lt, Op::Lte, Op::Gt, Op::Gte, Op::In, Op::Nin] {
            assert_eq!(op.key().and_then(Op::from_key), Some(op));
        }
        assert_eq!(Op::Eq.key(), None);
        assert_eq!(Op::from_key("$or"), None);
    }
}
