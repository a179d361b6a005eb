//! SQLite crash safety: a writer process killed with SIGKILL at random points
//! loses none of the writes it had acknowledged, and the file stays sound.
//!
//! The test binary re-executes itself as the writer (the child): with
//! [`CHILD_STORE`] set, [`killed_writers_lose_no_acknowledged_write`] writes
//! records in a loop and prints `ACK <id> <revision>` after each write returns.
//! The parent kills it after a random delay, 50 times, and checks the store
//! after every kill.
#![cfg(all(unix, feature = "store-sqlite"))]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use inferlink::store::SqliteOptions;
use inferlink::{ExtensionRecord, ListFilter, PutMode, RegistryStore, Revision, SqliteStore};

/// The store file the child writes to; its presence makes the test run as the child.
const CHILD_STORE: &str = "INFERLINK_CRASH_TEST_STORE";
/// The round number, which the child puts into its record ids.
const CHILD_ROUND: &str = "INFERLINK_CRASH_TEST_ROUND";
/// This test's name, to re-run only it in the child.
const TEST_NAME: &str = "killed_writers_lose_no_acknowledged_write";
/// Kills.
const ROUNDS: u32 = 50;
/// Longest random delay before a kill.
const MAX_DELAY_MS: u64 = 160;
/// The whole test's time budget.
const BUDGET: Duration = Duration::from_secs(45);
/// The child stops by itself after this long, in case nobody kills it.
const CHILD_LIFETIME: Duration = Duration::from_secs(20);

fn record(id: &str, round: u32, seq: u64) -> ExtensionRecord {
    let mut record = inferlink::format::parse_records(&format!(
        "id: {id}\nproduct: crash-test\nservices:\n  - id: api\n    resource: api\n    endpoints:\n      - url: http://service-{seq}.example:8080\n    credentials:\n      - id: c\n        configuration:\n          TOKEN: token-{round}-{seq}\n"
    ))
    .unwrap()
    .remove(0);
    record
        .configuration
        .insert("SEQ".into(), format!("{round}-{seq}"));
    record
}

/// The child: writes until killed (or [`CHILD_LIFETIME`] passes), acknowledging each write.
fn child(path: &Path) {
    let round: u32 = std::env::var(CHILD_ROUND).unwrap().parse().unwrap();
    let options = SqliteOptions {
        // Alternate between the two durability settings: both must survive a killed process.
        synchronous_full: round.is_multiple_of(2),
        ..inferlink_testkit::keys::keyed_sqlite_options()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = match SqliteStore::open_with(path, options) {
            Ok(store) => store,
            Err(e) => {
                eprintln!("child: open failed: {e}");
                std::process::exit(3);
            }
        };
        let started = Instant::now();
        let mut seq = 0u64;
        while started.elapsed() < CHILD_LIFETIME {
            seq += 1;
            let written: Vec<(String, Revision)> = match seq % 4 {
                // Overwrite one shared record: its revision only grows.
                0 => {
                    let rev = store
                        .put(record("hot", round, seq), PutMode::Overwrite)
                        .await;
                    vec![("hot".to_owned(), ack(rev))]
                }
                // A batch of three new records in one transaction.
                1 => {
                    let ids: Vec<String> = (0..3).map(|k| format!("r{round}-{seq}-{k}")).collect();
                    let batch = ids
                        .iter()
                        .map(|id| (record(id, round, seq), PutMode::Create))
                        .collect();
                    let revs = ack(store.put_all(batch).await);
                    ids.into_iter().zip(revs).collect()
                }
                _ => {
                    let id = format!("r{round}-{seq}");
                    let rev = store.put(record(&id, round, seq), PutMode::Create).await;
                    vec![(id, ack(rev))]
                }
            };
            // Printed only after the write returned: an acknowledged write.
            for (id, rev) in written {
                println!("ACK {id} {rev}");
            }
        }
    });
}

fn ack<T>(result: inferlink::Result<T>) -> T {
    result.unwrap_or_else(|e| {
        eprintln!("child: write failed: {e}");
        std::process::exit(2);
    })
}

/// A small deterministic generator (xorshift64*), seeded per run and printed on failure.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Runs the child, kills it after `delay`, and returns its complete ACK lines.
fn run_and_kill(path: &Path, round: u32, delay: Duration) -> Vec<(String, Revision)> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_STORE, path)
        .env(CHILD_ROUND, round.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the test binary re-executes itself");
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut acks = Vec::new();
        let mut lines = BufReader::new(stdout);
        let mut line = Vec::new();
        loop {
            line.clear();
            match lines.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            // A line cut off by the kill is not counted (it may be incomplete).
            let Some(text) = line.strip_suffix(b"\n") else {
                break;
            };
            let text = String::from_utf8_lossy(text);
            if let Some(rest) = text.strip_prefix("ACK ") {
                let (id, rev) = rest.split_once(' ').expect("ACK <id> <revision>");
                acks.push((id.to_owned(), rev.parse().expect("a numeric revision")));
            }
        }
        acks
    });
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    std::thread::sleep(delay);
    // SIGKILL on Unix. An error means it already exited, which the status shows.
    let _ = child.kill();
    let status = child.wait().unwrap();
    let acks = reader.join().unwrap();
    let errors = errors.join().unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "round {round}: the child must die by SIGKILL, not exit on its own ({status}); its stderr:\n{errors}"
    );
    acks
}

/// Opens the store after a kill and checks it; returns the number of records.
async fn verify(path: &Path, round: u32, acked: &BTreeMap<String, Revision>) -> usize {
    let store = inferlink_testkit::keys::open_keyed_sqlite(path)
        .unwrap_or_else(|e| panic!("round {round}: the store does not open after a kill: {e}"));
    let conn = rusqlite::Connection::open(path).unwrap();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok", "round {round}: integrity_check");

    let listing = store.list(&ListFilter::all()).await.unwrap();
    let stored: BTreeMap<&str, &inferlink::StoredRecord> = listing
        .records
        .iter()
        .map(|r| (r.record.id.as_str(), r))
        .collect();
    for (id, rev) in acked {
        let found = stored.get(id.as_str()).unwrap_or_else(|| {
            panic!("round {round}: acknowledged write of {id} (revision {rev}) is lost")
        });
        assert!(
            found.revision >= *rev,
            "round {round}: {id} is at revision {}, older than the acknowledged {rev}",
            found.revision
        );
        let creds = &found.record.services[0].credentials[0];
        assert!(
            creds.configuration["TOKEN"].expose().starts_with("token-"),
            "round {round}: {id} came back whole"
        );
    }
    // `get` agrees with the listing.
    let hot = store.get("hot").await.unwrap();
    assert_eq!(
        hot.as_ref().map(|h| h.revision),
        stored.get("hot").map(|h| h.revision)
    );

    // Revisions are consistent: unique, covered by the head, and every record
    // has its change-log entry at its own revision.
    let mut revisions: Vec<Revision> = listing.records.iter().map(|r| r.revision).collect();
    revisions.sort_unstable();
    let count = revisions.len();
    revisions.dedup();
    assert_eq!(revisions.len(), count, "round {round}: duplicate revisions");
    if let (Some(max), Some(max_acked)) = (revisions.last(), acked.values().max()) {
        assert!(
            listing.revision >= *max,
            "round {round}: head behind a record"
        );
        assert!(
            listing.revision >= *max_acked,
            "round {round}: head behind an acknowledged write"
        );
    }
    let orphans: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM records AS r LEFT JOIN changes AS c
             ON c.record_id = r.id AND c.revision = r.revision AND c.deleted = 0
             WHERE c.revision IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        orphans, 0,
        "round {round}: records without their change-log entry"
    );
    let log_entries: i64 = conn
        .query_row("SELECT COUNT(*) FROM changes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        log_entries as usize, count,
        "round {round}: one change-log entry per record (nothing is deleted)"
    );
    // The next write continues above the head.
    let next = store
        .put(record("probe", round, 0), PutMode::Overwrite)
        .await
        .unwrap();
    assert!(next > listing.revision, "round {round}: revision reused");
    count
}

#[test]
fn killed_writers_lose_no_acknowledged_write() {
    if let Some(path) = std::env::var_os(CHILD_STORE) {
        // Re-executed by the parent below: be the writer.
        return child(Path::new(&path));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        | 1;
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    let mut acked: BTreeMap<String, Revision> = BTreeMap::new();
    let mut rounds_with_acks = 0;
    let mut records = 0;
    for round in 0..ROUNDS {
        assert!(
            started.elapsed() < BUDGET,
            "the crash test exceeded its {BUDGET:?} budget after {round} rounds (seed {seed})"
        );
        let delay = Duration::from_millis(rng.next() % (MAX_DELAY_MS + 1));
        let acks = run_and_kill(&path, round, delay);
        if !acks.is_empty() {
            rounds_with_acks += 1;
        }
        for (id, rev) in acks {
            let entry = acked.entry(id).or_default();
            *entry = (*entry).max(rev);
        }
        records = runtime.block_on(verify(&path, round, &acked));
    }
    eprintln!(
        "crash test: {ROUNDS} kills, {} acknowledged records, {records} records in the store, {rounds_with_acks} rounds killed mid-writes, {:?} (seed {seed})",
        acked.len(),
        started.elapsed()
    );
    assert!(
        rounds_with_acks >= ROUNDS / 2,
        "most kills must land while the child is writing, only {rounds_with_acks} did (seed {seed})"
    );
}
