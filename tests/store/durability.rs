//! An acknowledged write to the SQLite store survives `kill -9`.
//!
//! The parent test re-runs this test binary as a child that runs only
//! `child_writes_until_killed` (ignored otherwise, and a no-op without
//! `PLUME_DURABILITY_DB`). The child creates batches of records in a loop
//! and prints `ACK <batch>` after each `create` returns. The parent kills it
//! with SIGKILL after some acknowledgements, while it is writing, then
//! opens the database and checks that every acknowledged batch is there,
//! whole, that no batch is there in part (a batch is one transaction), and
//! that the kept row count agrees with the rows.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use plume::store::SqliteStore;
use plume::{Params, Service};
use serde_json::{Value, json};

const DB_ENV: &str = "PLUME_DURABILITY_DB";
const BATCH: usize = 5;

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    use std::os::unix::process::ExitStatusExt;

    let dir = std::env::temp_dir().join(format!("plume-durability-{}", uuid::Uuid::new_v4()));
    let path = dir.join("data/plume.sqlite");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "store::durability::child_writes_until_killed",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DB_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // Read acknowledgements on a plain thread: the pipe read blocks.
    let acked = tokio::task::spawn_blocking(move || {
        let mut acked = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(batch) = line.strip_prefix("ACK ") {
                acked.push(batch.parse::<u64>().unwrap());
                if acked.len() == 40 {
                    // Kill while the child is in the middle of writing.
                    child.kill().unwrap();
                    break;
                }
            }
        }
        let status = child.wait().unwrap();
        (acked, status)
    })
    .await
    .unwrap();
    let (acked, status) = acked;
    assert_eq!(
        status.signal(),
        Some(9),
        "the child was killed by SIGKILL: {status:?}"
    );
    assert_eq!(acked.len(), 40);

    let store = SqliteStore::open(&path).await.unwrap();
    let events = store.service("events").unwrap();
    let all = events.find(&Params::new()).await.unwrap();
    let all = all.as_array().unwrap();
    let count = |batch: u64| all.iter().filter(|r| r["batch"] == json!(batch)).count();
    for batch in &acked {
        assert_eq!(count(*batch), BATCH, "acknowledged batch {batch} is whole");
    }
    let batches = all
        .iter()
        .filter_map(|r| r["batch"].as_u64())
        .max()
        .unwrap_or(0);
    for batch in 0..=batches {
        assert!(
            matches!(count(batch), 0 | BATCH),
            "batch {batch} is all or nothing"
        );
    }
    // The kept row count (an unfiltered page's total) is written in the
    // same transactions, so the crash cannot have torn it from the rows.
    let paged = store
        .service("events")
        .unwrap()
        .paginate(plume::Paginate { default: 1, max: 1 });
    let page = paged.find(&Params::new()).await.unwrap();
    assert_eq!(
        page["total"],
        json!(all.len()),
        "the kept count after SIGKILL"
    );
    drop(paged);
    drop(events);
    drop(store);
    std::fs::remove_dir_all(dir).unwrap();
}

/// The child's side; does nothing unless the parent started it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by acknowledged_writes_survive_sigkill as a child process"]
async fn child_writes_until_killed() {
    let Some(path) = std::env::var_os(DB_ENV) else {
        return;
    };
    let store = SqliteStore::open(&path).await.unwrap();
    let events = store.service("events").unwrap().multi(true);
    let started = Instant::now();
    let mut stdout = std::io::stdout();
    // Bounded, in case the parent died without killing us.
    for batch in 0u64.. {
        if started.elapsed() > Duration::from_secs(60) {
            break;
        }
        let records: Vec<Value> = (0..BATCH)
            .map(|i| json!({"batch": batch, "i": i, "text": "x".repeat(200)}))
            .collect();
        events
            .create(&Value::Array(records), &Params::new())
            .await
            .unwrap();
        writeln!(stdout, "ACK {batch}").unwrap();
        stdout.flush().unwrap();
    }
}
