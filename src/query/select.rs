//! `$select`: copies of records with only the selected fields.

use serde_json::{Map, Value};

use super::Filters;

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

/// A copy of `record` with only `fields` (those it has), in `fields`
/// order. [`Filters::select`](Filters::select) already ends with the id field.
pub(crate) fn select_fields(record: &Map<String, Value>, fields: &[String]) -> Map<String, Value> {
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
    use crate::query::test_support::{obj, parse};
    use serde_json::json;

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
}
