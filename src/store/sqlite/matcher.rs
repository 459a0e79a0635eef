//! Tests a query's conditions against a stored record in Rust, as the SQL
//! function `plume_match(data, program)`, so that a query costs one pass
//! over each record it reads however many fields it compares.
//!
//! Written as SQL, each comparison of an unindexed field is a
//! `json_extract` (and often a `json_type`) call per row, each a lookup in
//! the JSONB record, so a scan's cost grows with the number of fields the
//! query compares (BENCHMARKS.md, "Conditions and sorts tested in Rust",
//! has the measurements). Here the record's compared fields are found in
//! one walk over its JSONB ([`super::jsonb`]) and the whole condition tree
//! is tested on them, with `$in` / `$nin` lists looked up in sets rather
//! than scanned.
//!
//! [`sql::condition`](super::sql::condition) keeps the comparisons that
//! an index can serve in SQL (so that SQLite's planner sees them) and
//! hands the rest to this function; the `program` argument is the
//! condition as JSON, a bound parameter, read once per statement (SQLite
//! keeps it as the function's auxiliary data).
//!
//! The rules are [`crate::query`]'s, the memory store's: numbers compare
//! as `f64`, strings by code point, and different types never equal or
//! order against each other, except a query string read as the number or
//! boolean it spells.

use std::cmp::Ordering;
use std::collections::HashSet;

use rusqlite::Connection;
use rusqlite::functions::FunctionFlags;
use rusqlite::types::ValueRef;
use serde_json::{Map, Value};

use super::db_error;
use super::jsonb::{FieldSet, Scalar};
use crate::query::{self, Condition, Op};
use crate::{Error, Result};

/// The SQL function's name.
pub(super) const FUNCTION: &str = "plume_match";

/// How many fields one walk over a record looks for; a query that
/// compares more fields walks the record again for the next ones.
const FIELDS_PER_PASS: usize = 16;

/// Registers [`FUNCTION`] on `connection`.
pub(super) fn install(connection: &Connection) -> Result<()> {
    install_function(connection, FUNCTION, Program::decode, Program::matches)
}

/// Registers `name(data, program)`: `program` (text, a bound parameter or
/// a literal) is read with `decode` once per statement, SQLite keeping
/// it as the function's auxiliary data, and each row's answer is
/// `apply(program, data)`. Deterministic and innocuous: it reads nothing
/// but its arguments.
pub(super) fn install_function<P, R>(
    connection: &Connection,
    name: &'static str,
    decode: fn(&str) -> Result<P>,
    apply: fn(&P, ValueRef<'_>) -> R,
) -> Result<()>
where
    P: Send + Sync + 'static,
    R: rusqlite::ToSql + 'static,
{
    connection
        .create_scalar_function(
            name,
            2,
            FunctionFlags::SQLITE_UTF8
                | FunctionFlags::SQLITE_DETERMINISTIC
                | FunctionFlags::SQLITE_INNOCUOUS,
            move |ctx| {
                let program = ctx.get_or_create_aux(1, |program: ValueRef<'_>| {
                    decode(program.as_str().map_err(Error::internal)?)
                })?;
                Ok(apply(&program, ctx.get_raw(0)))
            },
        )
        .map_err(db_error)
}

/// The program text for `condition`: what [`FUNCTION`]'s second argument
/// is bound to.
pub(super) fn encode(condition: &Condition) -> Result<String> {
    serde_json::to_string(condition).map_err(Error::internal)
}

/// A condition compiled for testing records: its fields numbered, its
/// query values sorted into what each stored type can equal.
#[derive(Debug)]
pub(super) struct Program {
    /// The fields the condition reads, each once, in sets of
    /// [`FIELDS_PER_PASS`]: a [`Node::Test`]'s slot counts across them.
    fields: Vec<FieldSet>,
    /// How many fields there are in all.
    count: usize,
    root: Node,
    /// The condition as given, for a record stored as JSON text (written
    /// before records were JSONB; the schema migration rewrites those).
    condition: Condition,
}

#[derive(Debug)]
enum Node {
    And(Vec<Node>),
    Or(Vec<Node>),
    Test {
        /// Index into [`Program::names`].
        slot: usize,
        /// Stored strings are lowered (ASCII) before the test.
        fold_case: bool,
        test: Test,
    },
}

#[derive(Debug)]
enum Test {
    /// Equality, `$in` and, negated, `$ne` and `$nin`.
    Any { set: Set, negated: bool },
    /// `$lt`, `$lte`, `$gt`, `$gte`: holds when the stored value compares
    /// to the bound as one of `accept`.
    Order { bound: Bound, accept: [bool; 3] },
}

/// What a list of query values equals, per stored type.
#[derive(Debug, Default)]
struct Set {
    null: bool,
    /// `[false, true]`.
    bools: [bool; 2],
    /// Sorted.
    numbers: Vec<f64>,
    strings: HashSet<String>,
}

/// One query value as each stored type compares with it.
#[derive(Debug, Default)]
struct Bound {
    boolean: Option<bool>,
    number: Option<f64>,
    string: Option<String>,
}

impl Bound {
    fn of(value: &Value) -> Self {
        match value {
            Value::Bool(b) => Self {
                boolean: Some(*b),
                ..Self::default()
            },
            Value::Number(n) => Self {
                number: n.as_f64(),
                ..Self::default()
            },
            Value::String(s) => Self {
                boolean: query::coerce_bool(s),
                number: query::coerce_number(s),
                string: Some(s.clone()),
            },
            // `null` orders nothing; arrays and objects are not query
            // values.
            Value::Null | Value::Array(_) | Value::Object(_) => Self::default(),
        }
    }

    fn compare(&self, stored: &Scalar<'_>) -> Option<Ordering> {
        match stored {
            Scalar::Bool(b) => Some(b.cmp(self.boolean.as_ref()?)),
            Scalar::Number(n) => n.partial_cmp(self.number.as_ref()?),
            Scalar::Str(s) => Some(s.as_ref().cmp(self.string.as_deref()?)),
            Scalar::Null | Scalar::Composite(_) | Scalar::Other => None,
        }
    }
}

impl Set {
    fn of(values: &[Value]) -> Self {
        let mut set = Self::default();
        for value in values {
            if value.is_null() {
                set.null = true;
                continue;
            }
            let bound = Bound::of(value);
            if let Some(b) = bound.boolean {
                set.bools[usize::from(b)] = true;
            }
            set.numbers.extend(bound.number);
            set.strings.extend(bound.string);
        }
        set.numbers.sort_by(f64::total_cmp);
        set
    }

    fn contains(&self, stored: &Scalar<'_>) -> bool {
        match stored {
            Scalar::Null => self.null,
            Scalar::Bool(b) => self.bools[usize::from(*b)],
            Scalar::Number(n) => self
                .numbers
                .binary_search_by(|q| q.partial_cmp(n).unwrap_or(Ordering::Less))
                .is_ok(),
            Scalar::Str(s) => self.strings.contains(s.as_ref()),
            Scalar::Composite(_) | Scalar::Other => false,
        }
    }
}

impl Program {
    /// Reads a program written by [`encode`].
    fn decode(text: &str) -> Result<Self> {
        let condition: Condition = serde_json::from_str(text).map_err(Error::internal)?;
        Ok(Self::new(condition))
    }

    /// Compiles `condition`.
    pub(super) fn new(condition: Condition) -> Self {
        let mut names = Vec::new();
        let root = Self::node(&condition, &mut names);
        Self {
            fields: names.chunks(FIELDS_PER_PASS).map(FieldSet::new).collect(),
            count: names.len(),
            root,
            condition,
        }
    }

    fn node(condition: &Condition, names: &mut Vec<String>) -> Node {
        match condition {
            Condition::And(items) => {
                Node::And(items.iter().map(|c| Self::node(c, names)).collect())
            }
            Condition::Or(items) => Node::Or(items.iter().map(|c| Self::node(c, names)).collect()),
            Condition::Field {
                field,
                op,
                value,
                fold_case,
            } => {
                let slot = names.iter().position(|n| n == field).unwrap_or_else(|| {
                    names.push(field.clone());
                    names.len() - 1
                });
                let list = match value {
                    Value::Array(items) => items.as_slice(),
                    other => std::slice::from_ref(other),
                };
                // `accept` is indexed by `Ordering as i8 + 1`.
                let order = |accept: [bool; 3]| Test::Order {
                    bound: Bound::of(value),
                    accept,
                };
                let test = match op {
                    Op::Eq | Op::In => Test::Any {
                        set: Set::of(list),
                        negated: false,
                    },
                    Op::Ne | Op::Nin => Test::Any {
                        set: Set::of(list),
                        negated: true,
                    },
                    Op::Lt => order([true, false, false]),
                    Op::Lte => order([true, true, false]),
                    Op::Gt => order([false, false, true]),
                    Op::Gte => order([false, true, true]),
                };
                Node::Test {
                    slot,
                    fold_case: *fold_case,
                    test,
                }
            }
        }
    }

    /// True when the record `data` (the `data` column: JSONB, or JSON
    /// text) satisfies the condition.
    fn matches(&self, data: ValueRef<'_>) -> bool {
        match data {
            ValueRef::Blob(blob) => self.matches_jsonb(blob),
            ValueRef::Text(text) => {
                let record: Map<String, Value> = serde_json::from_slice(text).unwrap_or_default();
                query::matches(&self.condition, &record)
            }
            _ => query::matches(&self.condition, &Map::new()),
        }
    }

    /// True when the JSONB record `blob` satisfies the condition.
    pub(super) fn matches_jsonb(&self, blob: &[u8]) -> bool {
        // No allocation per row for the usual query.
        let mut few: [Scalar<'_>; FIELDS_PER_PASS] = std::array::from_fn(|_| Scalar::Null);
        let mut many: Vec<Scalar<'_>>;
        let values: &mut [Scalar<'_>] = if self.count <= FIELDS_PER_PASS {
            &mut few[..self.count]
        } else {
            many = vec![Scalar::Null; self.count];
            &mut many
        };
        for (fields, out) in self.fields.iter().zip(values.chunks_mut(FIELDS_PER_PASS)) {
            fields.read(blob, out);
        }
        eval(&self.root, values)
    }
}

fn eval(node: &Node, values: &[Scalar<'_>]) -> bool {
    match node {
        Node::And(items) => items.iter().all(|n| eval(n, values)),
        Node::Or(items) => items.iter().any(|n| eval(n, values)),
        Node::Test {
            slot,
            fold_case,
            test,
        } => {
            let stored = &values[*slot];
            let lowered;
            let stored = match stored {
                Scalar::Str(s) if *fold_case && s.bytes().any(|b| b.is_ascii_uppercase()) => {
                    lowered = Scalar::Str(s.to_ascii_lowercase().into());
                    &lowered
                }
                other => other,
            };
            match test {
                Test::Any { set, negated } => set.contains(stored) != *negated,
                Test::Order { bound, accept } => bound
                    .compare(stored)
                    .is_some_and(|ordering| accept[(ordering as i8 + 1) as usize]),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rusqlite::Connection;
    use serde_json::json;

    /// Generated records: a few fields, each of any type, some missing.
    fn stored() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-3i64..4).prop_map(|n| json!(n)),
            prop_oneof![Just(0.5), Just(-0.0), Just(1e300), Just(2.0)].prop_map(|n| json!(n)),
            prop_oneof![
                Just("a"),
                Just("B"),
                Just("b"),
                Just("1"),
                Just("true"),
                Just(""),
                Just("é\"\n")
            ]
            .prop_map(|s| json!(s)),
            Just(json!([1])),
            Just(json!({"a": 1})),
        ]
    }

    fn query_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-3i64..4).prop_map(|n| json!(n)),
            prop_oneof![Just(0.5), Just(0.0), Just(2.0)].prop_map(|n| json!(n)),
            prop_oneof![
                Just("a"),
                Just("b"),
                Just("1"),
                Just("2.0"),
                Just("true"),
                Just("false"),
                Just(""),
                Just("é\"\n")
            ]
            .prop_map(|s| json!(s)),
        ]
    }

    fn condition() -> impl Strategy<Value = Condition> {
        let op = prop_oneof![
            Just(Op::Eq),
            Just(Op::Ne),
            Just(Op::Lt),
            Just(Op::Lte),
            Just(Op::Gt),
            Just(Op::Gte),
            Just(Op::In),
            Just(Op::Nin),
        ];
        let field = (
            prop_oneof![Just("a"), Just("b"), Just("c")],
            op,
            prop::collection::vec(query_value(), 0..4),
            any::<bool>(),
        )
            .prop_map(|(field, op, mut values, fold_case)| {
                let value = if op.takes_list() {
                    Value::Array(values)
                } else {
                    values.pop().unwrap_or(Value::Null)
                };
                Condition::Field {
                    field: field.to_owned(),
                    op,
                    value,
                    fold_case,
                }
            });
        field.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Condition::And),
                prop::collection::vec(inner, 0..4).prop_map(Condition::Or),
            ]
        })
    }

    fn record() -> impl Strategy<Value = Map<String, Value>> {
        prop::collection::vec(
            (
                prop_oneof![Just("a"), Just("b"), Just("c"), Just("d")],
                stored(),
            ),
            0..4,
        )
        .prop_map(|fields| fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    proptest! {
        /// The matcher, reading SQLite's JSONB, agrees with the memory
        /// store's rules on every condition and record.
        #[test]
        fn agrees_with_the_memory_store(condition in condition(), record in record()) {
            let conn = Connection::open_in_memory().unwrap();
            let text = serde_json::to_string(&record).unwrap();
            let blob: Vec<u8> = conn
                .query_row("SELECT jsonb(?1)", [&text], |row| row.get(0))
                .unwrap();
            let program = Program::decode(&encode(&condition).unwrap()).unwrap();
            let expected = query::matches(&condition, &record);
            prop_assert_eq!(program.matches_jsonb(&blob), expected);
            prop_assert_eq!(
                program.matches(ValueRef::Text(text.as_bytes())),
                expected
            );
        }
    }

    #[test]
    fn the_sql_function_tests_each_row() {
        let conn = Connection::open_in_memory().unwrap();
        install(&conn).unwrap();
        conn.execute_batch(
            "CREATE TABLE t (data BLOB);
             INSERT INTO t VALUES (jsonb('{\"n\": 1, \"s\": \"Ada\"}')),
                                  (jsonb('{\"n\": 5, \"s\": \"bob\"}')),
                                  ('{\"n\": 7}');",
        )
        .unwrap();
        let condition = Condition::Or(vec![
            Condition::Field {
                field: "s".into(),
                op: Op::In,
                value: json!(["ada"]),
                fold_case: true,
            },
            Condition::Field {
                field: "n".into(),
                op: Op::Gt,
                value: json!("6"),
                fold_case: false,
            },
        ]);
        let program = encode(&condition).unwrap();
        let hits: i64 = conn
            .query_row(
                "SELECT count(*) FROM t WHERE plume_match(data, ?1)",
                [&program],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(hits, 2);
    }
}
