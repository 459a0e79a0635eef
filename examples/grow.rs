//! Grows the default app's `messages` table in an SQLite file to a given
//! number of records, through the store (`SqliteService::create` of
//! arrays), for `bench/scale`:
//!
//! ```sh
//! cargo run --release --example grow -- data/plume.sqlite 100000 \
//!     --probe-user 1 --drop-user 0
//! ```
//!
//! Options, after the file and the target count:
//!
//! - `--drop-user <id>`: first removes every message of this user (the
//!   benchmark's creates), so that the table holds grown records only.
//! - `--probe-user <id>`: afterwards this user owns exactly 10 messages,
//!   spread over the table (one in the middle of each tenth), for the
//!   selective filter `userId=<id>`.
//! - `--batch <n>`: records per `create` call (10,000).
//!
//! It is resumable: it counts the table and adds what is missing, so
//! `grow f 10000` then `grow f 100000` adds 90,000. Grown records look like
//! the default app's messages: `{text, userId, createdAt, id}`, the
//! owners spread over 1000 made-up user ids (1000 to 1999, none of them a
//! real user's), `createdAt` in milliseconds since the epoch, increasing
//! by one per record from 2023-11-14 (older than anything a client
//! creates), and a `text` of `message <n>` (never the
//! `nomatch` that the unindexed probe looks for). Record `n` (counting
//! from 0) has `createdAt` = [`BASE`] + `n`.
//!
//! Run it while no server has the file open: its writes bypass the
//! server's record cache.

#![allow(clippy::print_stdout, clippy::print_stderr)]

/// The app the `plume` binary serves, from the binary's own source (the
/// library does not ship it).
#[allow(dead_code, unused_imports, unreachable_pub)]
#[path = "../src/bin/plume/default_app/mod.rs"]
mod default_app;

use std::time::Instant;

use plume::store::{SqliteService, SqliteStore};
use plume::{Error, Id, Method, Params, Result, Service};
use serde_json::{Value, json};

/// `createdAt` of the first grown record (2023-11-14T22:13:20Z).
const BASE: i64 = 1_700_000_000_000;
/// Grown records have `createdAt` below this: room for a billion of
/// them, and still in November 2023, long before any message a client
/// creates (stamped with the time of its creation).
const GROWN_BELOW: i64 = BASE + 1_000_000_000;
/// The made-up owners of grown records: `FIRST_OWNER + n % OWNERS`.
const FIRST_OWNER: i64 = 1000;
const OWNERS: i64 = 1000;
/// How many messages the probe user owns.
const PROBE_MESSAGES: i64 = 10;

/// The `messages` service exactly as the default app declares it
/// (`default_app::messages_service`: setting a service up drops
/// the indexes it does not declare, so a copy could differ). Indexes added
/// through `sqlite.indexes` in a configuration are not seen here.
/// `multi_methods` does not touch the schema; the server's service
/// refuses calls on many records as before.
fn messages(store: &SqliteStore) -> Result<SqliteService> {
    Ok(default_app::messages_service(store)?.multi_methods([Method::Create, Method::Remove]))
}

struct Options {
    file: String,
    target: i64,
    probe_user: Option<Value>,
    drop_user: Option<Value>,
    batch: i64,
}

/// A user id from the command line: an integer when it reads as one (the
/// default app's ids are), a string otherwise.
fn user_id(text: &str) -> Value {
    text.parse::<i64>()
        .map_or_else(|_| Value::from(text), Value::from)
}

fn options() -> std::result::Result<Options, String> {
    let usage =
        "usage: grow <db file> <target count> [--probe-user ID] [--drop-user ID] [--batch N]";
    let mut args = std::env::args().skip(1);
    let file = args.next().ok_or(usage)?;
    let target = args
        .next()
        .ok_or(usage)?
        .replace('_', "")
        .parse::<i64>()
        .map_err(|e| format!("target count: {e}\n{usage}"))?;
    let mut options = Options {
        file,
        target: target.max(0),
        probe_user: None,
        drop_user: None,
        batch: 10_000,
    };
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--probe-user" => options.probe_user = Some(user_id(&value)),
            "--drop-user" => options.drop_user = Some(user_id(&value)),
            "--batch" => {
                options.batch = value
                    .parse::<i64>()
                    .map_err(|e| format!("--batch {value}: {e}"))?
                    .clamp(1, 1_000_000);
            }
            other => return Err(format!("unknown option {other}\n{usage}")),
        }
    }
    Ok(options)
}

/// The page of a find, as `(total, data)`.
async fn find(service: &SqliteService, query: Value) -> Result<(i64, Vec<Value>)> {
    let page = service.find(&Params::with_query(query)).await?;
    let total = page.get("total").and_then(Value::as_i64).unwrap_or(0);
    let data = match page.get("data") {
        Some(Value::Array(data)) => data.clone(),
        _ => Vec::new(),
    };
    Ok((total, data))
}

fn id_of(record: &Value) -> Result<Id> {
    record
        .get("id")
        .map(Id::from_value)
        .transpose()?
        .flatten()
        .ok_or_else(|| Error::general(format!("a record without an id: {record}")))
}

fn owner(n: i64) -> i64 {
    FIRST_OWNER + n % OWNERS
}

/// Position `n` of a grown record, from its `createdAt`.
fn position(record: &Value) -> Option<i64> {
    let at = record.get("createdAt")?.as_i64()?;
    (BASE..GROWN_BELOW).contains(&at).then_some(at - BASE)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let options = match options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return std::process::ExitCode::from(2);
        }
    };
    match grow(&options).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("grow: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn grow(options: &Options) -> Result<()> {
    let store = SqliteStore::open(&options.file).await?;
    // The scans below (counting, the probe's records) are not clients'.
    store.set_query_timeout(std::time::Duration::ZERO);
    let service = messages(&store)?;
    service.ensure_schema().await?;

    if let Some(user) = &options.drop_user {
        let started = Instant::now();
        let removed = service
            .remove(
                None,
                &Params::with_query(json!({"userId": user, "$select": ["id"]})),
            )
            .await?;
        let removed = removed.as_array().map_or(0, Vec::len);
        println!(
            "removed {removed} messages of user {user} in {:.2} s",
            started.elapsed().as_secs_f64()
        );
    }

    let (count, _) = find(&service, json!({"$limit": 0})).await?;
    // The next position follows the newest grown record (not the count:
    // records that are not grown ones may be in the table too).
    let (_, newest) = find(
        &service,
        json!({"createdAt": {"$lt": GROWN_BELOW}, "$sort": {"createdAt": -1}, "$limit": 1}),
    )
    .await?;
    let mut next = newest.first().and_then(position).map_or(0, |n| n + 1);
    println!("{}: {count} messages", options.file);

    let missing = options.target - count;
    if next + missing > GROWN_BELOW - BASE {
        return Err(Error::general("more records than grow can number"));
    }
    if missing > 0 {
        println!("adding {missing} to reach {}", options.target);
        let started = Instant::now();
        let mut added = 0;
        while added < missing {
            let size = options.batch.min(missing - added);
            let batch: Vec<Value> = (next..next + size)
                .map(|n| {
                    let user = owner(n);
                    json!({
                        "text": format!("message {n}"),
                        "userId": user,
                        "createdAt": BASE + n,
                    })
                })
                .collect();
            service
                .create(
                    &Value::Array(batch),
                    &Params::with_query(json!({"$select": ["id"]})),
                )
                .await?;
            next += size;
            added += size;
            let seconds = started.elapsed().as_secs_f64();
            println!(
                "  {} / {} ({:.0} records/s)",
                count + added,
                options.target,
                f64_of(added) / seconds.max(1e-9)
            );
        }
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "added {added} in {seconds:.1} s: {:.0} records/s",
            f64_of(added) / seconds.max(1e-9)
        );
    } else {
        println!("nothing to add (target {})", options.target);
    }

    if let Some(user) = &options.probe_user {
        place_probe(&service, user).await?;
    }
    let (count, _) = find(&service, json!({"$limit": 0})).await?;
    println!("{}: {count} messages", options.file);
    Ok(())
}

/// Gives `user` exactly [`PROBE_MESSAGES`] messages, one in the middle of
/// each tenth of the grown records: the ones it owned go back to their
/// made-up owners first.
async fn place_probe(service: &SqliteService, user: &Value) -> Result<()> {
    let (_, newest) = find(
        service,
        json!({"createdAt": {"$lt": GROWN_BELOW}, "$sort": {"createdAt": -1}, "$limit": 1}),
    )
    .await?;
    let grown = newest.first().and_then(position).map_or(0, |n| n + 1);
    if grown < PROBE_MESSAGES {
        println!("probe user {user}: too few records ({grown}) to give it {PROBE_MESSAGES}");
        return Ok(());
    }
    let wanted: Vec<i64> = (0..PROBE_MESSAGES)
        .map(|k| (2 * k + 1) * grown / (2 * PROBE_MESSAGES))
        .collect();
    // Hand back what the user owns (a page at a time: the service pages).
    let mut skip = 0;
    loop {
        let (_, owned) = find(
            service,
            json!({"userId": user, "$limit": 50, "$skip": skip, "$select": ["id", "createdAt"]}),
        )
        .await?;
        if owned.is_empty() {
            break;
        }
        for record in &owned {
            match position(record) {
                Some(n) if !wanted.contains(&n) => {
                    service
                        .patch(
                            Some(&id_of(record)?),
                            &json!({"userId": owner(n)}),
                            &Params::new(),
                        )
                        .await?;
                }
                Some(_) => skip += 1,
                None => {
                    // Not a grown record (the user created it): kept, and
                    // reported below as a count other than 10.
                    skip += 1;
                }
            }
        }
    }
    for n in wanted {
        let (_, found) = find(service, json!({"createdAt": BASE + n, "$limit": 1})).await?;
        if let Some(record) = found.first() {
            service
                .patch(
                    Some(&id_of(record)?),
                    &json!({"userId": user}),
                    &Params::new(),
                )
                .await?;
        }
    }
    let (owned, _) = find(service, json!({"userId": user, "$limit": 0})).await?;
    println!("probe user {user}: {owned} messages");
    if owned != PROBE_MESSAGES {
        return Err(Error::general(format!(
            "probe user {user} owns {owned} messages, not {PROBE_MESSAGES}"
        )));
    }
    Ok(())
}

/// A count as a float, for rates (counts here are far below 2^52).
fn f64_of(n: i64) -> f64 {
    n as f64
}
