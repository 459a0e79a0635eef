//! One table of query cases, run against every store with the same
//! records: the query, whether a transport made the call, and the ids
//! `find` must return (in order) or the 400 message it must fail with.
//! Each case also checks that the stores return byte-identical JSON.

use plume::{ErrorKind, Params, Provider};
use serde_json::{Value, json};

use super::stores::every;

enum Expect {
    Ids(&'static [i64]),
    Error(&'static str),
}
use Expect::{Error, Ids};

const ALL: &[i64] = &[0, 1, 2, 3, 4, 5, 6, 7];
const BAD_NAME: &str = ": a field name is letters, digits and _, not starting with a digit, \
                        at most 64 characters";

/// Ids 0 to 7, in this order.
fn records() -> Vec<Value> {
    vec![
        json!({"name": "alice", "age": 30, "active": true, "score": 2.5, "tags": ["a"],
               "note": "100%", "secret": "$2b$hash"}),
        json!({"name": "bob", "age": "30", "active": "true", "score": null, "note": "a_b"}),
        json!({"name": "carol", "age": 40, "active": false, "note": "it's"}),
        json!({"name": "dave", "age": 20, "active": true, "score": -1,
               "note": "x'; DROP TABLE items; --"}),
        json!({"name": "Eve", "age": 20.5, "active": null, "meta": {"k": 1},
               "note": "\"quoted\""}),
        json!({"name": "é", "score": 1000, "note": "_"}),
        json!({"name": "10", "age": true}),
        json!({"name": "2", "age": 2}),
    ]
}

fn cases() -> Vec<(Value, bool, Expect)> {
    vec![
        (json!({}), false, Ids(ALL)),
        (json!({"name": "alice"}), false, Ids(&[0])),
        // Numbers, and numeric strings against stored numbers.
        (json!({"age": 30}), false, Ids(&[0])),
        (json!({"age": "30"}), false, Ids(&[0, 1])),
        (json!({"age": {"$gt": "25"}}), false, Ids(&[0, 1, 2])),
        (json!({"age": {"$lt": 25}}), false, Ids(&[3, 4, 7])),
        (
            json!({"age": {"$gte": 20, "$lte": "20.5"}}),
            false,
            Ids(&[3, 4]),
        ),
        (
            json!({"age": {"$ne": 30}}),
            false,
            Ids(&[1, 2, 3, 4, 5, 6, 7]),
        ),
        (json!({"age": {"$in": ["2", true]}}), false, Ids(&[6, 7])),
        (json!({"score": {"$gt": "1e2"}}), false, Ids(&[5])),
        (json!({"score": "2.5"}), false, Ids(&[0])),
        (json!({"score": {"$lt": 0}}), false, Ids(&[3])),
        (json!({"score": {"$gte": "abc"}}), false, Ids(&[])),
        // Booleans and "true"/"false".
        (json!({"active": true}), false, Ids(&[0, 3])),
        (json!({"active": "true"}), false, Ids(&[0, 1, 3])),
        (json!({"active": "false"}), false, Ids(&[2])),
        (json!({"age": "true"}), false, Ids(&[6])),
        (json!({"age": {"$gt": false}}), false, Ids(&[6])),
        // Null and missing.
        (json!({"active": null}), false, Ids(&[4, 5, 6, 7])),
        (json!({"active": {"$ne": null}}), false, Ids(&[0, 1, 2, 3])),
        (json!({"active": "null"}), false, Ids(&[])),
        (
            json!({"score": {"$ne": 2.5}}),
            false,
            Ids(&[1, 2, 3, 4, 5, 6, 7]),
        ),
        (
            json!({"score": {"$in": [null, 2.5]}}),
            false,
            Ids(&[0, 1, 2, 4, 6, 7]),
        ),
        (json!({"score": {"$nin": [null]}}), false, Ids(&[0, 3, 5])),
        (
            json!({"score": {"$nin": [2.5]}}),
            false,
            Ids(&[1, 2, 3, 4, 5, 6, 7]),
        ),
        (json!({"score": {"$lt": null}}), false, Ids(&[])),
        (json!({"missing": null}), false, Ids(ALL)),
        (json!({"missing": {"$nin": [1]}}), false, Ids(ALL)),
        (json!({"missing": {"$gte": 0}}), false, Ids(&[])),
        // Strings: code point order, no cross-type equality.
        (
            json!({"name": {"$in": ["bob", "Eve", "nobody"]}}),
            false,
            Ids(&[1, 4]),
        ),
        (json!({"name": {"$in": "bob"}}), false, Ids(&[1])),
        (json!({"name": {"$gt": "a"}}), false, Ids(&[0, 1, 2, 3, 5])),
        (json!({"name": {"$lt": "B"}}), false, Ids(&[6, 7])),
        (json!({"name": 10}), false, Ids(&[])),
        (json!({"name": "10"}), false, Ids(&[6])),
        (json!({"tags": "a"}), false, Ids(&[])),
        (json!({"tags": {"$ne": null}}), false, Ids(&[0])),
        (json!({"meta": {"$gt": 0}}), false, Ids(&[])),
        // SQL metacharacters are matched literally.
        (json!({"note": "100%"}), false, Ids(&[0])),
        (json!({"note": "a_b"}), false, Ids(&[1])),
        (json!({"note": "it's"}), false, Ids(&[2])),
        (
            json!({"note": "x'; DROP TABLE items; --"}),
            false,
            Ids(&[3]),
        ),
        (json!({"note": "\"quoted\""}), false, Ids(&[4])),
        (json!({"note": "%"}), false, Ids(&[])),
        (json!({"note": {"$in": ["%", "_", "a%"]}}), false, Ids(&[5])),
        (json!({"note": {"$gt": "a'"}}), false, Ids(&[1, 2, 3])),
        // $or / $and.
        (
            json!({"$or": [{"name": "alice"}, {"age": {"$lt": 21}}]}),
            false,
            Ids(&[0, 3, 4, 7]),
        ),
        (json!({"$or": []}), false, Ids(&[])),
        (json!({"$and": []}), false, Ids(ALL)),
        (json!({"$or": [{}]}), false, Ids(ALL)),
        (
            json!({"$and": [{"age": {"$gt": 10}}, {"age": {"$lt": 35}}]}),
            false,
            Ids(&[0, 3, 4]),
        ),
        (
            json!({"$or": [{"$and": [{"active": true}, {"age": {"$gt": 25}}]}, {"name": "2"}]}),
            false,
            Ids(&[0, 7]),
        ),
        (
            json!({"active": true, "$or": [{"score": {"$gt": 0}}, {"score": null}]}),
            false,
            Ids(&[0]),
        ),
        // Sorting across types, stable ties, skip and limit.
        (
            json!({"$sort": {"age": 1}}),
            false,
            Ids(&[5, 6, 7, 3, 4, 0, 2, 1]),
        ),
        (
            json!({"$sort": {"age": -1}}),
            false,
            Ids(&[1, 2, 0, 4, 3, 7, 6, 5]),
        ),
        (
            json!({"$sort": {"active": "1", "name": "-1"}}),
            false,
            Ids(&[5, 4, 7, 6, 2, 3, 0, 1]),
        ),
        (
            json!({"$sort": {"score": 1}, "$limit": 3, "$skip": 1}),
            false,
            Ids(&[2, 4, 6]),
        ),
        (
            json!({"$sort": {"meta": -1, "tags": 1}}),
            false,
            Ids(&[4, 1, 2, 3, 5, 6, 7, 0]),
        ),
        (json!({"$limit": 0}), false, Ids(&[])),
        (json!({"$skip": 6}), false, Ids(&[6, 7])),
        (
            json!({"$select": ["name"], "$sort": {"name": 1}}),
            false,
            Ids(&[6, 7, 4, 0, 1, 2, 3, 5]),
        ),
        // Invalid queries and injection attempts: 400 on both stores.
        (
            json!({"$foo": 1}),
            false,
            Error("Invalid filter value $foo"),
        ),
        (
            json!({"age": {"$foo": 1}}),
            false,
            Error("Invalid query parameter $foo"),
        ),
        (
            json!({"$limit": "-1"}),
            false,
            Error("$limit must be a non-negative integer"),
        ),
        (
            json!({"tags": ["a"]}),
            false,
            Error("Invalid value for 'tags': an array is not a query value (use $in)"),
        ),
        (
            json!({"$select": ["name AS x"]}),
            false,
            Error("Invalid field name 'name AS x'"),
        ),
        (
            json!({"$select": "1;--"}),
            false,
            Error("Invalid field name '1;--'"),
        ),
        (
            json!({"$sort": {"name;DROP TABLE items": 1}}),
            false,
            Error("Invalid field name 'name;DROP TABLE items'"),
        ),
        (
            json!({"name') OR 1=1 --": 1}),
            false,
            Error("Invalid field name 'name') OR 1=1 --'"),
        ),
        // Protected fields: refused to transports, allowed internally.
        (json!({"secret": {"$gt": "$2"}}), false, Ids(&[0])),
        (
            json!({"secret": {"$gt": "$2"}}),
            true,
            Error("The field 'secret' is protected: it cannot be used to filter, sort or select"),
        ),
        (
            json!({"$or": [{"secret": "x"}]}),
            true,
            Error("The field 'secret' is protected: it cannot be used to filter, sort or select"),
        ),
        (
            json!({"$sort": {"secret": 1}}),
            true,
            Error("The field 'secret' is protected: it cannot be used to filter, sort or select"),
        ),
        (
            json!({"$select": ["secret"]}),
            true,
            Error("The field 'secret' is protected: it cannot be used to filter, sort or select"),
        ),
        (json!({"name": "alice"}), true, Ids(&[0])),
    ]
}

fn message(expected: &str) -> String {
    if expected.starts_with("Invalid field name") {
        format!("{expected}{BAD_NAME}")
    } else {
        expected.to_owned()
    }
}

#[tokio::test]
async fn every_store_answers_every_case_the_same() {
    let stores = every(None, &records()).await;
    for (query, external, expect) in cases() {
        let mut params = Params::with_query(query.clone());
        if external {
            params.provider = Some(Provider::Rest);
        }
        let mut answers = Vec::new();
        for store in &stores {
            let result = store.service.find(&params).await;
            match (&expect, &result) {
                (Ids(ids), Ok(found)) => {
                    let actual: Vec<i64> = found
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|r| r["id"].as_i64().unwrap())
                        .collect();
                    assert_eq!(&actual, ids, "{} on {query}", store.name);
                }
                (Error(expected), Err(err)) => {
                    assert_eq!(
                        err.kind(),
                        ErrorKind::BadRequest,
                        "{} on {query}",
                        store.name
                    );
                    assert_eq!(
                        err.message(),
                        message(expected),
                        "{} on {query}",
                        store.name
                    );
                }
                (_, other) => panic!("{} on {query}: unexpected {other:?}", store.name),
            }
            answers.push(
                result
                    .map(|v| serde_json::to_string(&v).unwrap())
                    .map_err(|e| e.to_string()),
            );
        }
        for (store, answer) in stores.iter().zip(&answers).skip(1) {
            assert_eq!(
                &answers[0], answer,
                "memory and {} differ on {query}",
                store.name
            );
        }
    }
    // The injection attempts left the table as it was.
    for store in &stores {
        let all = store.service.find(&Params::new()).await.unwrap();
        assert_eq!(all.as_array().unwrap().len(), 8, "{}", store.name);
    }
}

/// get, patch and remove with an id honour the query's conditions the
/// same way on every store.
#[tokio::test]
async fn methods_with_an_id_honour_the_conditions() {
    let stores = every(None, &records()).await;
    for store in &stores {
        let s = &store.service;
        let q = |query: Value| Params::with_query(query);
        assert_eq!(
            s.get(&"1".into(), &q(json!({"age": "30"}))).await.unwrap()["name"],
            "bob"
        );
        let err = s.get(&1.into(), &q(json!({"age": 30}))).await.unwrap_err();
        assert_eq!(
            (err.kind(), err.message()),
            (ErrorKind::NotFound, "No record found for id '1'")
        );
        let err = s
            .patch(
                Some(&2.into()),
                &json!({"x": 1}),
                &q(json!({"active": true})),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{}", store.name);
        let removed = s
            .remove(
                Some(&3.into()),
                &q(json!({"note": "x'; DROP TABLE items; --", "$select": "note"})),
            )
            .await
            .unwrap();
        assert_eq!(
            removed,
            json!({"note": "x'; DROP TABLE items; --", "id": 3}),
            "{}",
            store.name
        );
    }
}
