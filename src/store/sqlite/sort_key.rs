//! The sort key of a record for a `$sort` no index serves, as the SQL
//! function `plume_sort_key(data, keys)`: one BLOB per row, computed in one
//! pass over the record, whose byte order is the order of
//! [`query::compare_records`] (the memory store's sort).
//!
//! Written as SQL, each sort key costs three JSON lookups per row (its
//! type rank, its type again, its value), so a sort's cost grows with its
//! number of keys; here all of a row's keys are one call and one pass
//! (BENCHMARKS.md, "Conditions and sorts tested in Rust").
//!
//! `keys` is the `$sort` list as text, `+name` or `-name` per key,
//! separated by commas; field names are identifiers, so it is written into
//! the statement as a literal. Each key is encoded so that comparing the
//! bytes compares the values: a type rank byte (`null` or missing 0,
//! booleans 1, numbers 2, strings 3, arrays 4, objects 5), then
//!
//! - a boolean: one byte, `0` or `1`;
//! - a number: its `f64` bits, big-endian, with the sign bit flipped for
//!   positive numbers and all bits flipped for negative ones (so that
//!   byte order is numeric order; `-0` is written as `0`, which it equals);
//! - a string, or an array's or object's compact JSON text: its UTF-8
//!   bytes (byte order is code point order), each `0x00` written as
//!   `0x00 0xFF`, ended by `0x00 0x00`.
//!
//! Every encoding is prefix-free, so a descending key is the same bytes
//! inverted, and the keys simply follow each other.

use std::borrow::Cow;

use rusqlite::Connection;
use rusqlite::types::ValueRef;
use serde_json::{Map, Value};

use super::jsonb::{self, FieldSet, Scalar};
use crate::query::{self, SortOrder};
use crate::{Error, Result};

/// The SQL function's name.
pub(super) const FUNCTION: &str = "plume_sort_key";

/// Registers [`FUNCTION`] on `connection`.
pub(super) fn install(connection: &Connection) -> Result<()> {
    super::matcher::install_function(connection, FUNCTION, Keys::decode, Keys::key)
}

/// The `keys` text for `sort`; 400 for a field name that is not an
/// identifier (the parser has refused those already).
pub(super) fn encode(sort: &[(String, SortOrder)]) -> Result<String> {
    let mut keys = Vec::with_capacity(sort.len());
    for (field, order) in sort {
        if !query::is_field_name(field) {
            return Err(Error::bad_request(format!(
                "Invalid field name '{}'",
                field.chars().take(64).collect::<String>()
            )));
        }
        let sign = match order {
            SortOrder::Asc => '+',
            SortOrder::Desc => '-',
        };
        keys.push(format!("{sign}{field}"));
    }
    Ok(keys.join(","))
}

/// A decoded `keys` text.
#[derive(Debug)]
struct Keys {
    names: Vec<String>,
    /// `names` in sets of 64, to look up in one pass each.
    fields: Vec<FieldSet>,
    descending: Vec<bool>,
}

impl Keys {
    fn decode(text: &str) -> Result<Self> {
        let mut names = Vec::new();
        let mut descending = Vec::new();
        for key in text.split(',').filter(|k| !k.is_empty()) {
            let (sign, name) = key.split_at(1.min(key.len()));
            if !query::is_field_name(name) || !matches!(sign, "+" | "-") {
                return Err(Error::internal(format!("bad sort key '{key}'")));
            }
            names.push(name.to_owned());
            descending.push(sign == "-");
        }
        Ok(Self {
            fields: names.chunks(64).map(FieldSet::new).collect(),
            names,
            descending,
        })
    }

    /// The key of the `data` column: JSONB, JSON text (records written
    /// before JSONB), or anything else as an empty record.
    fn key(&self, data: ValueRef<'_>) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 * self.names.len());
        match data {
            ValueRef::Blob(blob) => {
                let mut values: Vec<Scalar<'_>> = vec![Scalar::Null; self.names.len()];
                for (fields, found) in self.fields.iter().zip(values.chunks_mut(64)) {
                    fields.read(blob, found);
                }
                for (value, descending) in values.iter().zip(&self.descending) {
                    let start = out.len();
                    write_key(value, &mut out);
                    invert_if(*descending, &mut out[start..]);
                }
            }
            other => {
                let record: Map<String, Value> = match other {
                    ValueRef::Text(text) => serde_json::from_slice(text).unwrap_or_default(),
                    _ => Map::new(),
                };
                for (name, descending) in self.names.iter().zip(&self.descending) {
                    let start = out.len();
                    write_value_key(record.get(name).unwrap_or(&Value::Null), &mut out);
                    invert_if(*descending, &mut out[start..]);
                }
            }
        }
        out
    }
}

fn invert_if(descending: bool, key: &mut [u8]) {
    if descending {
        for byte in key {
            *byte = !*byte;
        }
    }
}

/// [`write_key`] for a record stored as JSON text.
fn write_value_key(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.push(0),
        Value::Bool(b) => write_key(&Scalar::Bool(*b), out),
        Value::Number(n) => write_key(&n.as_f64().map_or(Scalar::Null, Scalar::Number), out),
        Value::String(s) => write_key(&Scalar::Str(Cow::Borrowed(s)), out),
        Value::Array(_) | Value::Object(_) => {
            out.push(if value.is_array() { 4 } else { 5 });
            write_bytes(value.to_string().as_bytes(), out);
        }
    }
}

fn write_key(value: &Scalar<'_>, out: &mut Vec<u8>) {
    match value {
        Scalar::Null | Scalar::Other => out.push(0),
        Scalar::Bool(b) => out.extend([1, u8::from(*b)]),
        Scalar::Number(n) => {
            out.push(2);
            // -0 equals 0: one encoding for both.
            let n = if *n == 0.0 { 0.0 } else { *n };
            let bits = n.to_bits();
            let ordered = if bits >> 63 == 1 {
                !bits
            } else {
                bits | (1 << 63)
            };
            out.extend(ordered.to_be_bytes());
        }
        Scalar::Str(s) => {
            out.push(3);
            write_bytes(s.as_bytes(), out);
        }
        Scalar::Composite(bytes) => {
            let mut text = Vec::new();
            if jsonb::write_json(bytes, &mut text).is_some() {
                // '[' opens an array, '{' an object.
                out.push(if text.first() == Some(&b'[') { 4 } else { 5 });
                write_bytes(&text, out);
            } else {
                out.push(0);
            }
        }
    }
}

fn write_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    for &byte in bytes {
        out.push(byte);
        if byte == 0 {
            out.push(0xFF);
        }
    }
    out.extend([0, 0]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-3i64..4).prop_map(|n| json!(n)),
            prop_oneof![Just(0.5), Just(-0.0), Just(-1e300), Just(2.0)].prop_map(|n| json!(n)),
            prop_oneof![
                Just("a"),
                Just("ab"),
                Just("a\u{0}b"),
                Just(""),
                Just("é"),
                Just("\"q")
            ]
            .prop_map(|s| json!(s)),
            prop_oneof![
                Just(json!([])),
                Just(json!([1, "x\n"])),
                Just(json!([0])),
                Just(json!({})),
                Just(json!({"a": [true]})),
                Just(json!({"b": 1})),
            ],
        ]
    }

    fn record() -> impl Strategy<Value = Map<String, Value>> {
        prop::collection::vec(
            (prop_oneof![Just("a"), Just("b"), Just("c")], value()),
            0..4,
        )
        .prop_map(|fields| fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    fn sort() -> impl Strategy<Value = Vec<(String, SortOrder)>> {
        prop::collection::vec(
            (
                prop_oneof![Just("a"), Just("b"), Just("c")],
                prop_oneof![Just(SortOrder::Asc), Just(SortOrder::Desc)],
            ),
            1..4,
        )
        .prop_map(|keys| keys.into_iter().map(|(k, o)| (k.to_owned(), o)).collect())
    }

    fn jsonb(conn: &Connection, record: &Map<String, Value>) -> Vec<u8> {
        conn.query_row(
            "SELECT jsonb(?1)",
            [serde_json::to_string(record).unwrap()],
            |row| row.get(0),
        )
        .unwrap()
    }

    proptest! {
        /// Byte order of the keys is the memory store's sort, from JSONB
        /// and from JSON text alike.
        #[test]
        fn key_order_is_the_memory_stores_order(a in record(), b in record(), sort in sort()) {
            let conn = Connection::open_in_memory().unwrap();
            let keys = Keys::decode(&encode(&sort).unwrap()).unwrap();
            let expected = query::compare_records(&a, &b, &sort);
            let (ja, jb) = (jsonb(&conn, &a), jsonb(&conn, &b));
            let (ka, kb) = (keys.key(ValueRef::Blob(&ja)), keys.key(ValueRef::Blob(&jb)));
            prop_assert_eq!(ka.cmp(&kb), expected);
            let (ta, tb) = (serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap());
            prop_assert_eq!(keys.key(ValueRef::Text(ta.as_bytes())), ka);
            prop_assert_eq!(keys.key(ValueRef::Text(tb.as_bytes())), kb);
        }
    }

    #[test]
    fn the_sql_function_orders_rows() {
        let conn = Connection::open_in_memory().unwrap();
        install(&conn).unwrap();
        conn.execute_batch(
            "CREATE TABLE t (seq INTEGER PRIMARY KEY, data BLOB);
             INSERT INTO t (data) VALUES (jsonb('{\"n\": 2}')), (jsonb('{\"n\": \"x\"}')),
                                         (jsonb('{}')), ('{\"n\": 10}');",
        )
        .unwrap();
        let order: Vec<i64> = conn
            .prepare("SELECT seq FROM t ORDER BY plume_sort_key(data, '-n'), seq")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        // Strings after numbers after missing; descending.
        assert_eq!(order, [2, 4, 1, 3]);
    }

    #[test]
    fn bad_names_are_refused() {
        assert!(encode(&[("a'b".to_owned(), SortOrder::Asc)]).is_err());
        assert!(Keys::decode("a").is_err());
        assert!(Keys::decode("+a b").is_err());
    }
}
