//! The parsed form of a query: plain data ([`ParsedQuery`], its
//! [`Filters`] and its [`Condition`] tree) that each store evaluates in its
//! own way.

use serde::{Deserialize, Serialize};
use serde_json::Value;

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

/// A validated query.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedQuery {
    /// `$limit`, `$skip`, `$sort`, `$select`.
    pub filters: Filters,
    /// Everything else: the top level is always an [`Condition::And`] of
    /// the query's conditions, in the query's key order.
    pub condition: Condition,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_keys_round_trip() {
        for op in [Op::Ne, Op::Lt, Op::Lte, Op::Gt, Op::Gte, Op::In, Op::Nin] {
            assert_eq!(op.key().and_then(Op::from_key), Some(op));
        }
        assert_eq!(Op::Eq.key(), None);
        assert_eq!(Op::from_key("$or"), None);
    }
}
