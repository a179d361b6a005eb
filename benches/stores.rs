//! Durable store benchmarks (figures in `docs/performance.md`, section "Stores").
//!
//! Run with `cargo bench --bench stores --features store-postgres` (without
//! the feature the PostgreSQL cases print a `skipped: …` line); filter with
//! e.g. `cargo bench --bench stores --features store-postgres -- sqlite/`.
//!
//! **Throughput** (criterion, reported as elements per second):
//!
//! * `{sqlite,postgres}/put/{plain,secrets}`: one `put` (`Overwrite` of an
//!   existing record), a durable commit each (`synchronous=FULL` for SQLite,
//!   the default `synchronous_commit=on` and `fsync=on` for PostgreSQL);
//! * `…/put_all_100/…`: one `put_all` batch of 100 records (one transaction);
//! * `…/get/…`: one `get` by id;
//! * `…/list_1k/…`: one `list` of the whole store, 1 000 records (counted
//!   as 1 000 elements).
//!
//! Every store holds 1 000 seed-like records (`tests/fixtures/seed004/
//! mlflow-0001.yaml` with its id, URLs and values numbered). `plain` records
//! have no credential values: the five key/value pairs that `secrets`
//! records hold as credentials (two sets: the seed's S3 account and a
//! tracking login) are service configuration instead, so both kinds carry
//! the same text and differ only in what must be sealed. Both stores are
//! opened with the fixed test key (`inferlink_testkit::keys`) and seal
//! credential values (XChaCha20-Poly1305); `crypto/*` measures sealing and
//! opening one record in memory, the part of the cost that is encryption.
//!
//! **Change-to-visible latency** (`latency/*`, a plain measuring loop, not
//! criterion): the bench re-executes itself as a writer process (with
//! [`CHILD_ENV`] set). For each sample the bench waits a random delay (so
//! writes fall at random points of the SQLite poll cycle), tells the writer
//! on its stdin to write, and the writer answers `ACK <seq> <revision>
//! <unix-nanos>` with the wall-clock time taken right after its `put`
//! returned. A [`Registry`] in the bench process follows the store; a
//! [`LiveResolution`](inferlink::LiveResolution) on it yields when the
//! written change is visible to `resolve`, and the bench notes the wall
//! clock then. Latency = visible − acknowledged, both `CLOCK_REALTIME` on the
//! same machine. The request-to-visible time (bench monotonic clock, from
//! the write request to the event, so including the writer's commit) is
//! reported too.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use criterion::{Criterion, Throughput};
use inferlink::crypto::{self, DataKey, Keyring};
use inferlink::store::SqliteOptions;
use inferlink::{
    Consumer, Credentials, ExtensionRecord, ListFilter, PutMode, Registry, RegistryStore, Scope,
    Secret, Selector, SqliteStore,
};
use tokio::runtime::Runtime;

/// Set (to `sqlite` or `postgres`) in the writer process of the latency cases.
const CHILD_ENV: &str = "INFERLINK_STORES_BENCH_WRITER";
/// The writer's store: an SQLite path or a PostgreSQL URL (in the
/// environment, not on the command line: the URL holds a password).
const CHILD_TARGET_ENV: &str = "INFERLINK_STORES_BENCH_TARGET";
/// Samples per latency case (default [`LATENCY_SAMPLES`]).
const SAMPLES_ENV: &str = "INFERLINK_BENCH_LATENCY_SAMPLES";

/// Records in every throughput store.
const RECORDS: usize = 1_000;
/// Records per `put_all` batch.
const BATCH: usize = 100;
/// Latency samples per case.
const LATENCY_SAMPLES: usize = 100;
/// Each latency case stops after this long, whatever it has measured.
const LATENCY_BUDGET: Duration = Duration::from_secs(90);
/// How long the bench waits for one acknowledgement or one change.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// The writer exits by itself after this long.
const CHILD_LIFETIME: Duration = Duration::from_secs(600);
/// The id and product of the record the latency writer rewrites.
const PROBE: &str = "latency-probe";

const SEED: &str = include_str!("../tests/fixtures/seed004/mlflow-0001.yaml");

// ---------------------------------------------------------------------------
// Records

/// Plain records carry no credential values; secret records carry five in two sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plain,
    Secrets,
}

impl Kind {
    const ALL: [Kind; 2] = [Kind::Plain, Kind::Secrets];

    fn name(self) -> &'static str {
        match self {
            Kind::Plain => "plain",
            Kind::Secrets => "secrets",
        }
    }
}

fn secret_map(pairs: &[(&str, String)]) -> BTreeMap<String, Secret> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Secret::new(v.as_str())))
        .collect()
}

/// Seed record `i` (see the module documentation), with the given id.
fn seed_record(id: &str, i: usize, kind: Kind) -> ExtensionRecord {
    let mut record = inferlink::format::parse_records(SEED)
        .expect("the seed fixture parses")
        .remove(0);
    record.id = id.to_owned();
    record.description = format!("{} (installation {i})", record.description);
    for service in &mut record.services {
        for endpoint in &mut service.endpoints {
            endpoint.url = endpoint.url.replace("mlflow", &format!("mlflow{i}"));
        }
    }
    // The seed's S3 account, numbered, and a tracking login: five values, two sets.
    let store_values = [
        ("AWS_ACCESS_KEY_ID", format!("24oT0SfbJPEu6k{i:06}")),
        (
            "AWS_SECRET_ACCESS_KEY",
            format!("cMGiZff8KqS5xWQ4eagRujh1tDcbQyRP{i:08}"),
        ),
    ];
    let tracking_values = [
        ("MLFLOW_TRACKING_USERNAME", format!("tracker-{i}")),
        ("MLFLOW_TRACKING_PASSWORD", format!("Zff8KqS5xWQ4-{i:06}")),
        (
            "MLFLOW_TRACKING_TOKEN",
            format!("dapi0f1e2d3c4b5a69788796a5b4c3d2e1f0{i:06}"),
        ),
    ];
    let (tracking, store) = record.services.split_at_mut(1);
    let (tracking, store) = (&mut tracking[0], &mut store[0]);
    store.credentials.clear();
    match kind {
        Kind::Secrets => {
            store.credentials.push(Credentials {
                id: "default-s3-account".into(),
                scope: Scope::Global,
                configuration: secret_map(&store_values),
                ..Default::default()
            });
            tracking.credentials.push(Credentials {
                id: "tracking-login".into(),
                scope: Scope::Global,
                configuration: secret_map(&tracking_values),
                ..Default::default()
            });
        }
        Kind::Plain => {
            // Secret-bearing key names are refused outside credentials (issue
            // 14): the same bytes under a name of the same length.
            store.configuration.extend(
                store_values
                    .iter()
                    .map(|(k, v)| (k.replace("SECRET", "PUBLIC"), v.clone())),
            );
            tracking.configuration.extend(
                tracking_values
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), v.clone())),
            );
        }
    }
    record.validate().expect("a valid seed-like record");
    record
}

fn record_id(i: usize) -> String {
    format!("mlflow-{i:04}")
}

fn records(kind: Kind) -> Vec<ExtensionRecord> {
    (0..RECORDS)
        .map(|i| seed_record(&record_id(i), i, kind))
        .collect()
}

/// The latency writer's record, rewritten with a new `SEQ` each time.
fn probe_record(seq: u64) -> ExtensionRecord {
    let mut record = seed_record(PROBE, 0, Kind::Secrets);
    record.product = PROBE.to_owned();
    record.configuration.insert("SEQ".into(), seq.to_string());
    record
}

/// A registry that resolves the probe record.
fn probe_selector() -> Selector {
    Selector {
        product: Some(PROBE.into()),
        ..Default::default()
    }
}

/// A fresh keyring with one generated data key (for `crypto/*` and the body sizes).
fn keyring() -> Keyring {
    Keyring::new(DataKey::generate().expect("a data key"))
}

// ---------------------------------------------------------------------------
// Command line: which cases run

/// What criterion was asked to run, as far as the custom cases need to know.
struct Args {
    filter: Option<String>,
    exact: bool,
    list: bool,
    test: bool,
}

impl Args {
    /// Reads the arguments criterion also reads (the filter, `--exact`,
    /// `--list`, `--test`); skips the values of criterion's options.
    fn parse() -> Args {
        const WITH_VALUE: [&str; 17] = [
            "--save-baseline",
            "--baseline",
            "--baseline-lenient",
            "--load-baseline",
            "--sample-size",
            "--warm-up-time",
            "--measurement-time",
            "--nresamples",
            "--noise-threshold",
            "--confidence-level",
            "--significance-level",
            "--profile-time",
            "--plotting-backend",
            "--output-format",
            "--format",
            "--color",
            "--logfile",
        ];
        let mut args = Args {
            filter: None,
            exact: false,
            list: false,
            test: false,
        };
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--exact" => args.exact = true,
                "--list" => args.list = true,
                "--test" => args.test = true,
                "-s" | "-b" | "-c" => {
                    it.next();
                }
                a if WITH_VALUE.contains(&a) => {
                    it.next();
                }
                a if a.starts_with('-') => {}
                a => {
                    if args.filter.is_none() {
                        args.filter = Some(a.to_owned());
                    }
                }
            }
        }
        args
    }

    /// Whether the case `name` is selected (the filter as a substring, or
    /// exactly with `--exact`; criterion reads it as a regex, which is the
    /// same for plain names).
    fn wants(&self, name: &str) -> bool {
        match &self.filter {
            None => true,
            Some(f) if self.exact => name == f,
            Some(f) => name.contains(f.as_str()),
        }
    }

    fn wants_any(&self, names: &[String]) -> bool {
        names.iter().any(|n| self.wants(n))
    }
}

/// Every throughput case of `backend`.
fn throughput_names(backend: &str) -> Vec<String> {
    ["put", "put_all_100", "get", "list_1k"]
        .iter()
        .flat_map(|op| Kind::ALL.map(|k| format!("{backend}/{op}/{}", k.name())))
        .collect()
}

// ---------------------------------------------------------------------------
// Throughput

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn bench_crypto(c: &mut Criterion) {
    let keys = keyring();
    let record = seed_record(&record_id(7), 7, Kind::Secrets);
    let sealed = keys.seal_record(&record).expect("seal");
    let mut group = c.benchmark_group("crypto");
    group.throughput(Throughput::Elements(1));
    // Five values sealed: XChaCha20-Poly1305 with a fresh nonce each, base64.
    group.bench_function("seal_record", |b| {
        b.iter(|| keys.seal_record(black_box(&record)).expect("seal"));
    });
    // Five values opened, in a copy of the sealed record (the clone is timed too).
    group.bench_function("open_record", |b| {
        b.iter(|| {
            let mut copy = black_box(&sealed).clone();
            keys.open_record(&mut copy).expect("open");
            copy
        });
    });
    // The clone alone, to subtract from open_record.
    group.bench_function("clone_record", |b| {
        b.iter(|| black_box(&sealed).clone());
    });
    group.finish();
}

/// Runs `op(i)` for `iters` consecutive `i`, on the runtime, and times it all.
fn time_ops<F, Fut>(rt: &Runtime, iters: u64, start: &mut usize, mut op: F) -> Duration
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = ()>,
{
    rt.block_on(async {
        let began = Instant::now();
        for _ in 0..iters {
            op(*start).await;
            *start += 1;
        }
        began.elapsed()
    })
}

/// The four throughput cases over `stores` (one store per kind, each
/// already holding its [`RECORDS`] records).
fn bench_store(
    c: &mut Criterion,
    rt: &Runtime,
    backend: &str,
    stores: &[(Kind, Arc<dyn RegistryStore>)],
) {
    let data: Vec<(Kind, Vec<ExtensionRecord>)> = Kind::ALL.map(|k| (k, records(k))).into();
    let records_of = |kind: Kind| &data.iter().find(|(k, _)| *k == kind).expect("kind").1;
    let ids: Vec<String> = (0..RECORDS).map(record_id).collect();

    let mut group = c.benchmark_group(format!("{backend}/put"));
    group.throughput(Throughput::Elements(1));
    for (kind, store) in stores {
        let records = records_of(*kind);
        let mut next = 0;
        group.bench_function(kind.name(), |b| {
            b.iter_custom(|iters| {
                time_ops(rt, iters, &mut next, |i| {
                    let record = records[i % RECORDS].clone();
                    async move {
                        store.put(record, PutMode::Overwrite).await.expect("put");
                    }
                })
            });
        });
    }
    group.finish();

    let mut group = c.benchmark_group(format!("{backend}/put_all_100"));
    group.throughput(Throughput::Elements(BATCH as u64));
    for (kind, store) in stores {
        let records = records_of(*kind);
        let mut next = 0;
        group.bench_function(kind.name(), |b| {
            b.iter_custom(|iters| {
                time_ops(rt, iters, &mut next, |i| {
                    let first = (i * BATCH) % RECORDS;
                    let batch: Vec<_> = records[first..first + BATCH]
                        .iter()
                        .map(|r| (r.clone(), PutMode::Overwrite))
                        .collect();
                    async move {
                        let revisions = store.put_all(batch).await.expect("put_all");
                        assert_eq!(revisions.len(), BATCH);
                    }
                })
            });
        });
    }
    group.finish();

    let mut group = c.benchmark_group(format!("{backend}/get"));
    group.throughput(Throughput::Elements(1));
    for (kind, store) in stores {
        let mut next = 0;
        let ids = &ids;
        group.bench_function(kind.name(), |b| {
            b.iter_custom(|iters| {
                time_ops(rt, iters, &mut next, |i| async move {
                    let found = store.get(&ids[i % RECORDS]).await.expect("get");
                    black_box(found.expect("the record exists"));
                })
            });
        });
    }
    group.finish();

    let mut group = c.benchmark_group(format!("{backend}/list_1k"));
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.sample_size(20);
    for (kind, store) in stores {
        let mut next = 0;
        group.bench_function(kind.name(), |b| {
            b.iter_custom(|iters| {
                time_ops(rt, iters, &mut next, |_| async move {
                    let listing = store.list(&ListFilter::all()).await.expect("list");
                    assert_eq!(listing.records.len(), RECORDS);
                    black_box(listing);
                })
            });
        });
    }
    group.finish();
}

/// Fills `store` with the [`RECORDS`] records of `kind` (one batch) and
/// checks that a secret record reads back with its values.
async fn fill(store: &dyn RegistryStore, kind: Kind) {
    store
        .put_all(
            records(kind)
                .into_iter()
                .map(|r| (r, PutMode::Overwrite))
                .collect(),
        )
        .await
        .expect("filling the store");
    let back = store
        .get(&record_id(3))
        .await
        .expect("get")
        .expect("present");
    assert_eq!(back.record, seed_record(&record_id(3), 3, kind));
}

fn print_body_sizes() {
    let keys = keyring();
    for kind in Kind::ALL {
        let record = seed_record(&record_id(500), 500, kind);
        let clear = inferlink::format::to_json_compact(&record, inferlink::format::Secrets::Reveal)
            .expect("json");
        let stored = crypto::seal_record_body(&record, Some(&keys)).expect("body");
        eprintln!(
            "record bodies ({}): {} bytes as compact JSON, {} bytes stored",
            kind.name(),
            clear.len(),
            stored.len()
        );
    }
}

fn bench_sqlite(c: &mut Criterion, rt: &Runtime, dir: &Path) {
    let stores: Vec<(Kind, Arc<dyn RegistryStore>)> = Kind::ALL
        .map(|kind| {
            let path = dir.join(format!("throughput-{}.db", kind.name()));
            let store = inferlink_testkit::keys::open_keyed_sqlite(&path).expect("sqlite store");
            rt.block_on(fill(&store, kind));
            (kind, Arc::new(store) as Arc<dyn RegistryStore>)
        })
        .into();
    bench_store(c, rt, "sqlite", &stores);
}

// ---------------------------------------------------------------------------
// PostgreSQL

#[cfg(feature = "store-postgres")]
mod pg {
    use super::*;
    use inferlink::store::{PostgresOptions, PostgresStore};
    use inferlink_testkit::postgres::PgCluster;

    /// Starts the throwaway cluster, or says why the PostgreSQL cases are skipped.
    pub(super) fn start() -> Option<PgCluster> {
        let skip = |why: String| {
            if inferlink_testkit::postgres::required() {
                panic!("PostgreSQL cases: {why} (INFERLINK_REQUIRE_POSTGRES=1 forbids skipping)");
            }
            eprintln!("skipped: PostgreSQL cases (postgres/*, latency/postgres_*): {why}");
            None
        };
        if inferlink_testkit::postgres::find_binaries().is_none() {
            return skip(
                "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found; run scripts/provision-postgres or set INFERLINK_PG_BIN".into(),
            );
        }
        match PgCluster::start() {
            Ok(cluster) => {
                eprintln!(
                    "PostgreSQL: throwaway cluster on 127.0.0.1:{} ({})",
                    cluster.port(),
                    cluster.psql("SHOW server_version").unwrap_or_default()
                );
                Some(cluster)
            }
            Err(e) => skip(format!("cannot start a throwaway cluster: {e}")),
        }
    }

    pub(super) async fn connect(url: &str, schema: &str) -> PostgresStore {
        let options = PostgresOptions {
            schema: schema.to_owned(),
            key_provider: Some(inferlink_testkit::keys::test_key_provider()),
            ..PostgresOptions::default()
        };
        PostgresStore::connect(url, options)
            .await
            .expect("connect to the bench cluster")
    }

    pub(super) fn bench(c: &mut Criterion, rt: &Runtime, cluster: &PgCluster) {
        let stores: Vec<(Kind, Arc<dyn RegistryStore>)> = Kind::ALL
            .map(|kind| {
                let store = rt.block_on(async {
                    let store = connect(&cluster.url(), &format!("bench_{}", kind.name())).await;
                    fill(&store, kind).await;
                    store
                });
                (kind, Arc::new(store) as Arc<dyn RegistryStore>)
            })
            .into();
        bench_store(c, rt, "postgres", &stores);
    }
}

// ---------------------------------------------------------------------------
// Change-to-visible latency

/// The writer process: opens the store, then writes the probe record once per
/// `PUT <seq>` line on stdin and acknowledges it on stdout.
fn writer(backend: &str) {
    let target = std::env::var(CHILD_TARGET_ENV).unwrap_or_else(|_| {
        eprintln!("writer: {CHILD_TARGET_ENV} is not set");
        std::process::exit(2);
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let fail = |what: &str, e: inferlink::Error| -> ! {
        eprintln!("writer: {what}: {e}");
        std::process::exit(2);
    };
    let store: Arc<dyn RegistryStore> = rt.block_on(async {
        match backend {
            "sqlite" => Arc::new(
                inferlink_testkit::keys::open_keyed_sqlite(&target)
                    .unwrap_or_else(|e| fail("open", e)),
            ) as Arc<dyn RegistryStore>,
            #[cfg(feature = "store-postgres")]
            "postgres" => Arc::new(pg::connect(&target, "latency").await) as Arc<dyn RegistryStore>,
            other => {
                eprintln!("writer: unknown backend {other}");
                std::process::exit(2);
            }
        }
    });
    let started = Instant::now();
    let mut out = std::io::stdout().lock();
    writeln!(out, "READY").and_then(|()| out.flush()).ok();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let Some(seq) = line
            .strip_prefix("PUT ")
            .and_then(|s| s.parse::<u64>().ok())
        else {
            break;
        };
        let revision = rt
            .block_on(store.put(probe_record(seq), PutMode::Overwrite))
            .unwrap_or_else(|e| fail("put", e));
        // Taken right after the put returned: the commit is acknowledged.
        let acked = unix_nanos(SystemTime::now());
        if writeln!(out, "ACK {seq} {revision} {acked}")
            .and_then(|()| out.flush())
            .is_err()
            || started.elapsed() > CHILD_LIFETIME
        {
            break;
        }
    }
}

fn unix_nanos(t: SystemTime) -> i128 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

/// A small deterministic generator (xorshift64*) for the delays between samples.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// The writer process of one latency case; stopped (stdin closed, then
/// killed by its id if it lingers) when dropped.
struct Writer {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Writer {
    fn spawn(backend: &str, target: &str) -> std::io::Result<Writer> {
        let mut child = Command::new(std::env::current_exe()?)
            .env(CHILD_ENV, backend)
            .env(CHILD_TARGET_ENV, target)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().expect("piped stdout");
        let stdin = child.stdin.take();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let writer = Writer {
            child,
            stdin,
            lines,
        };
        match writer.line()?.as_str() {
            "READY" => Ok(writer),
            other => Err(std::io::Error::other(format!(
                "the writer said {other:?} instead of READY"
            ))),
        }
    }

    fn line(&self) -> std::io::Result<String> {
        self.lines.recv_timeout(STEP_TIMEOUT).map_err(|_| {
            std::io::Error::other(format!(
                "the writer did not answer within {STEP_TIMEOUT:?} (see its stderr above)"
            ))
        })
    }

    /// Asks for the write of `seq`; returns its revision and acknowledgement time.
    fn put(&mut self, seq: u64) -> std::io::Result<(u64, i128)> {
        let stdin = self.stdin.as_mut().expect("open stdin");
        writeln!(stdin, "PUT {seq}")?;
        stdin.flush()?;
        let line = self.line()?;
        let parts: Vec<&str> = line.split(' ').collect();
        match parts.as_slice() {
            ["ACK", s, rev, nanos] if s.parse() == Ok(seq) => Ok((
                rev.parse().map_err(std::io::Error::other)?,
                nanos.parse().map_err(std::io::Error::other)?,
            )),
            _ => Err(std::io::Error::other(format!(
                "unexpected answer from the writer: {line:?}"
            ))),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Only this child, by its own id.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One change seen by the bench's registry: the probe's `SEQ`, wall clock and monotonic time.
type Seen = (u64, i128, Instant);

/// Follows the probe's resolution in `registry` and reports every change.
fn follow(rt: &Runtime, registry: &Registry) -> tokio::sync::mpsc::UnboundedReceiver<Seen> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut live = registry
        .watch_resolution(probe_selector(), Consumer::anywhere())
        .expect("a valid selector");
    rt.spawn(async move {
        while let Some(outcome) = live.next().await {
            let (wall, mono) = (SystemTime::now(), Instant::now());
            let Ok(found) = outcome else { continue };
            let seq = found
                .record()
                .configuration
                .get("SEQ")
                .and_then(|s| s.parse().ok());
            if let Some(seq) = seq
                && tx.send((seq, unix_nanos(wall), mono)).is_err()
            {
                break;
            }
        }
    });
    rx
}

/// Percentiles of one latency case, in milliseconds.
struct Summary {
    samples: usize,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

/// Nearest-rank percentile of sorted `values`.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn summarize(mut ms: Vec<f64>) -> Option<Summary> {
    if ms.is_empty() {
        return None;
    }
    ms.sort_by(f64::total_cmp);
    Some(Summary {
        samples: ms.len(),
        p50: percentile(&ms, 0.50),
        p90: percentile(&ms, 0.90),
        p99: percentile(&ms, 0.99),
        max: *ms.last().expect("non-empty"),
    })
}

/// One latency case: `registry` follows the store the writer writes to.
struct LatencyCase<'a> {
    name: &'a str,
    backend: &'a str,
    /// The writer's store (path or URL).
    target: String,
    /// Delays between samples are uniform in `[0, jitter)`.
    jitter: Duration,
    /// The target for p50 and p99 (commit to visible), in milliseconds.
    target_ms: f64,
}

fn run_latency(rt: &Runtime, registry: &Registry, case: &LatencyCase<'_>, samples: usize) {
    let result = (|| -> std::io::Result<(Summary, Summary)> {
        let mut seen = follow(rt, registry);
        let mut writer = Writer::spawn(case.backend, &case.target)?;
        let wait_for = |seen: &mut tokio::sync::mpsc::UnboundedReceiver<Seen>, seq: u64| {
            rt.block_on(async {
                tokio::time::timeout(STEP_TIMEOUT, async {
                    while let Some(event) = seen.recv().await {
                        if event.0 == seq {
                            return Some(event);
                        }
                    }
                    None
                })
                .await
                .ok()
                .flatten()
            })
            .ok_or_else(|| {
                std::io::Error::other(format!(
                    "change {seq} did not become visible within {STEP_TIMEOUT:?}"
                ))
            })
        };
        // Warm-up: the probe exists and the registry has seen it.
        for seq in 0..3 {
            writer.put(seq)?;
            wait_for(&mut seen, seq)?;
        }
        let mut rng = Rng(unix_nanos(SystemTime::now()) as u64 | 1);
        let (mut commit_to_visible, mut request_to_visible) = (Vec::new(), Vec::new());
        let began = Instant::now();
        for seq in 3..3 + samples as u64 {
            if began.elapsed() > LATENCY_BUDGET {
                eprintln!(
                    "{}: stopped after {} samples (budget {LATENCY_BUDGET:?})",
                    case.name,
                    commit_to_visible.len()
                );
                break;
            }
            let jitter_us = case.jitter.as_micros() as u64;
            if jitter_us > 0 {
                std::thread::sleep(Duration::from_micros(rng.next() % jitter_us));
            }
            let requested = Instant::now();
            let (_revision, acked) = writer.put(seq)?;
            let (_, visible, visible_at) = wait_for(&mut seen, seq)?;
            commit_to_visible.push((visible - acked) as f64 / 1e6);
            request_to_visible.push(visible_at.duration_since(requested).as_secs_f64() * 1e3);
        }
        Ok((
            summarize(commit_to_visible).ok_or_else(|| std::io::Error::other("no samples"))?,
            summarize(request_to_visible).ok_or_else(|| std::io::Error::other("no samples"))?,
        ))
    })();
    match result {
        Ok((commit, request)) => {
            let verdict = if commit.p50 <= case.target_ms && commit.p99 <= case.target_ms {
                "met (p50 and p99)"
            } else if commit.p50 <= case.target_ms {
                "met at p50, not at p99"
            } else {
                "MISSED"
            };
            println!(
                "{:<32} {} samples; commit->visible p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms; request->visible p50 {:.1} ms, p99 {:.1} ms; target <= {:.0} ms: {verdict}",
                case.name,
                commit.samples,
                commit.p50,
                commit.p90,
                commit.p99,
                commit.max,
                request.p50,
                request.p99,
                case.target_ms,
            );
        }
        Err(e) => println!("{:<32} failed: {e}", case.name),
    }
}

fn latency_samples(args: &Args) -> usize {
    if args.test {
        return 3;
    }
    std::env::var(SAMPLES_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(LATENCY_SAMPLES)
}

/// SQLite: a registry over its own `SqliteStore` with `poll` as its poll interval.
fn bench_sqlite_latency(rt: &Runtime, args: &Args, dir: &Path) {
    for (name, poll) in [
        ("latency/sqlite_poll_200ms", Duration::from_millis(200)),
        ("latency/sqlite_poll_20ms", Duration::from_millis(20)),
    ] {
        if !args.wants(name) {
            continue;
        }
        let path = dir.join(format!("{}.db", name.replace('/', "-")));
        let options = SqliteOptions {
            poll_interval: poll,
            ..inferlink_testkit::keys::keyed_sqlite_options()
        };
        let store = SqliteStore::open_with(&path, options).expect("sqlite store");
        let registry = rt.block_on(Registry::open(store)).expect("registry");
        let case = LatencyCase {
            name,
            backend: "sqlite",
            target: path.display().to_string(),
            jitter: poll,
            target_ms: poll.as_secs_f64() * 1e3 + 10.0,
        };
        run_latency(rt, &registry, &case, latency_samples(args));
    }
}

#[cfg(feature = "store-postgres")]
fn bench_postgres_latency(
    rt: &Runtime,
    args: &Args,
    cluster: &inferlink_testkit::postgres::PgCluster,
) {
    let name = "latency/postgres_notify";
    if !args.wants(name) {
        return;
    }
    let store = rt.block_on(pg::connect(&cluster.url(), "latency"));
    let registry = rt.block_on(Registry::open(store)).expect("registry");
    let case = LatencyCase {
        name,
        backend: "postgres",
        target: cluster.url(),
        jitter: Duration::from_millis(20),
        target_ms: 50.0,
    };
    run_latency(rt, &registry, &case, latency_samples(args));
}

// ---------------------------------------------------------------------------

fn main() {
    if let Ok(backend) = std::env::var(CHILD_ENV) {
        return writer(&backend);
    }
    let args = Args::parse();
    let latency_names = [
        "latency/sqlite_poll_200ms",
        "latency/sqlite_poll_20ms",
        "latency/postgres_notify",
    ];
    let mut c = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    if args.list {
        c.final_summary();
        for name in latency_names {
            println!("{name}: benchmark");
        }
        return;
    }

    let rt = runtime();
    let dir = tempfile::Builder::new()
        .prefix("inferlink-stores-bench-")
        .tempdir()
        .expect("tempdir");
    print_body_sizes();

    bench_crypto(&mut c);
    if args.wants_any(&throughput_names("sqlite")) {
        bench_sqlite(&mut c, &rt, dir.path());
    }

    let pg_names: Vec<String> = throughput_names("postgres")
        .into_iter()
        .chain(["latency/postgres_notify".to_owned()])
        .collect();
    #[cfg(feature = "store-postgres")]
    let cluster = if args.wants_any(&pg_names) {
        pg::start()
    } else {
        None
    };
    #[cfg(not(feature = "store-postgres"))]
    if args.wants_any(&pg_names) {
        eprintln!(
            "skipped: PostgreSQL cases (postgres/*, latency/postgres_*): built without the store-postgres feature; run cargo bench --bench stores --features store-postgres"
        );
    }
    #[cfg(feature = "store-postgres")]
    if let Some(cluster) = &cluster
        && args.wants_any(&throughput_names("postgres"))
    {
        pg::bench(&mut c, &rt, cluster);
    }

    bench_sqlite_latency(&rt, &args, dir.path());
    #[cfg(feature = "store-postgres")]
    if let Some(cluster) = &cluster {
        bench_postgres_latency(&rt, &args, cluster);
    }

    c.final_summary();
}
