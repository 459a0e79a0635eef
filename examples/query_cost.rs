//! Measures what one hostile query costs the SQLite store: `find` on a
//! table of `--rows` messages (100,000 by default) with `--fields` fields
//! each `$nin` (or `$in` with `--in`) a list of `--values` values, the shape of the largest query
//! the default limits admit, and reports the best and median wall time.
//!
//! ```sh
//! cargo run --release --example query_cost -- --rows 100000 --fields 10 --values 100
//! ```
//!
//! `--or` puts the comparisons in one `$or` of `$in`s, none of which
//! matches: every row is tested against all of them.
//!
//! `--gt` makes each comparison `$gt: -1`, which every stored number
//! passes and which also checks the value's type (two lookups a row);
//! `--wide` stores the compared fields in every row (numbers), so that
//! every comparison holds on every row, the worst case of any operator.
//!
//! `--sort K` also sorts by `K` stored fields (no index serves them);
//! with `--fields 0` the query is that sort alone.
//!
//! `--budget-ms N` applies the store's query time budget (off by default,
//! so the full cost shows).
//!
//! It is a measurement, not a test: it never fails on numbers. The
//! database is a private in-memory one.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::time::{Duration, Instant};

use plume::store::SqliteStore;
use plume::{Paginate, Params, Provider, Service};
use serde_json::{Map, Value, json};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> plume::Result<()> {
    let rows = arg("--rows", 100_000);
    let fields = arg("--fields", 10);
    let values = arg("--values", 100);
    let runs = arg("--runs", 5);
    let op = if std::env::args().any(|a| a == "--in") {
        "$in"
    } else {
        "$nin"
    };
    let wide = std::env::args().any(|a| a == "--wide");
    let gt = std::env::args().any(|a| a == "--gt");
    let store = SqliteStore::open(":memory:").await?;
    // The cost is what is measured: no time budget unless one is asked for.
    store.set_query_timeout(Duration::from_millis(arg("--budget-ms", 0) as u64));
    // Paginated, as the default app's services are: every find counts
    // all matching rows, so a query that matches much scans the table.
    let service = store.service("messages")?.multi(true).paginate(Paginate {
        default: 10,
        max: 50,
    });
    let started = Instant::now();
    for chunk in 0..rows.div_ceil(1000) {
        let batch: Vec<Value> = (0..1000.min(rows - chunk * 1000))
            .map(|i| {
                let n = chunk * 1000 + i;
                let mut record =
                    json!({"text": format!("message {n}"), "userId": n % 97, "createdAt": n});
                if wide {
                    for f in 2..fields.max(2) {
                        record[format!("f{f}")] = json!(n % 1000);
                    }
                }
                record
            })
            .collect();
        service.create(&Value::Array(batch), &Params::new()).await?;
    }
    println!("{rows} rows inserted in {:?}", started.elapsed());

    let mut query = Map::new();
    let or = std::env::args().any(|a| a == "--or");
    let mut alternatives = Vec::new();
    for f in 0..fields {
        let list: Vec<Value> = (0..values).map(|v| json!(format!("{v}"))).collect();
        // Field names past the stored ones cost the same to test.
        let name = match f {
            0 => "text".to_owned(),
            1 => "userId".to_owned(),
            _ => format!("f{f}"),
        };
        if or {
            alternatives.push(json!({ name: { "$in": list } }));
        } else if gt {
            // `text` is a string: compare it with one that every message
            // text sorts after.
            let bound = if f == 0 { json!("") } else { json!(-1) };
            query.insert(name, json!({ "$gt": bound }));
        } else {
            query.insert(name, json!({ op: list }));
        }
    }
    if or {
        query.insert("$or".to_owned(), Value::Array(alternatives));
    }
    let sort = arg("--sort", 0);
    if sort > 0 {
        // Sorted by stored fields that no index serves: every row's keys
        // are computed and sorted (SQLite keeps the first page only).
        let keys: Map<String, Value> = ["text", "userId"]
            .into_iter()
            .map(str::to_owned)
            .chain((2..).map(|f| format!("f{f}")))
            .take(sort)
            .map(|k| (k, json!(-1)))
            .collect();
        query.insert("$sort".to_owned(), Value::Object(keys));
    }
    let mut params = Params::external(Provider::Rest);
    params.query = query;
    let mut times: Vec<Duration> = Vec::new();
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        match service.find(&params).await {
            Ok(_) => times.push(t.elapsed()),
            Err(e) => {
                println!("refused: {} {}", e.code(), e.message());
                return Ok(());
            }
        }
    }
    times.sort();
    let shape = if or {
        "$or of $in"
    } else if gt {
        "$gt"
    } else {
        op
    };
    println!(
        "{fields} fields x {shape} of {values} values over {rows} rows: best {:?}, median {:?}",
        times[0],
        times[times.len() / 2]
    );
    Ok(())
}
