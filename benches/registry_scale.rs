//! Registry scale benchmark: 10k to 1M records in memory, SQLite and PostgreSQL.
//!
//! Not a criterion bench: it builds one registry per (store, size), measures
//! a fixed list of cases and prints one table (`scripts/bench-registry` runs
//! it; figures in `docs/performance.md`, "Registry at scale").
//!
//! ```sh
//! cargo bench --bench registry_scale -- --sizes 10000,100000,1000000 --stores memory,sqlite
//! cargo bench --bench registry_scale -- --smoke    # 10k, memory and SQLite, fewer samples (CI)
//! cargo bench --features store-postgres --bench registry_scale -- --stores memory,sqlite,postgres
//! ```
//!
//! Records are deterministic and shaped like an organisation's catalogue:
//! products named after real serving and storage systems with about ten
//! installations each, 48 zones in 6 regions, semantic versions with some
//! prereleases, one to three services per record (resource and category from
//! real kinds, 1 % in the wide category `object-storage`), internal and
//! external endpoints with configuration, and credentials of every scope
//! (global, project, user) holding secret values, so the SQLite store runs
//! with a data key and seals every value.
//!
//! Cases per store and size: load from JSON lines (parse, validate, one
//! `put_all` transaction per 10 000 records), open-to-first-resolve (open
//! the store, `Registry::open`, the first `resolve`) with the process RSS
//! before and after, resolve p50/p99 per selector kind (1 000 single timed
//! calls over different keys), no-match and `resolve_all` of the wide
//! category; for SQLite also a change written by a second process and seen
//! by a live resolution; for 10k, the YAML load (`register_yaml`).

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use inferlink::format::{self, ParseLimits, Secrets};
use inferlink::{
    Consumer, Credentials, ExtensionRecord, MemoryStore, PutMode, Registry, RegistryStore, Scope,
    Selector, Service, SqliteStore,
};
use inferlink_testkit::keys::keyed_sqlite_options;

#[path = "support/records.rs"]
mod support;
use support::{config, internal_and_external, secrets};

const PRODUCTS: [&str; 12] = [
    "kserve",
    "minio",
    "mlflow",
    "triton",
    "seldon",
    "torchserve",
    "tfserving",
    "openai-gateway",
    "postgres",
    "redis",
    "ray",
    "vllm",
];
const RESOURCES: [(&str, &str); 8] = [
    ("kserve-api", "prediction-serving"),
    ("s3", "object-storage"),
    ("mlflow-tracking", "experiment-tracking"),
    ("openai-chat", "llm"),
    ("postgres", "sql-database"),
    ("redis", "cache"),
    ("grpc-inference", "prediction-serving"),
    ("metrics", "observability"),
];
const REGIONS: [&str; 6] = [
    "eu-west",
    "eu-central",
    "us-east",
    "us-west",
    "ap-south",
    "ap-east",
];
/// The wide category: the first service of every 100th record.
const WIDE: &str = "object-storage-shared";
/// Records per `put_all` transaction when loading.
const LOAD_BATCH: usize = 10_000;

fn zone(i: usize) -> String {
    format!("{}-{}", REGIONS[i % REGIONS.len()], i % 48)
}

fn product(key: usize) -> String {
    format!("{}-{key}", PRODUCTS[key % PRODUCTS.len()])
}

/// Record `i` of a catalogue of `n` (see the module documentation).
fn record(i: usize, n: usize) -> ExtensionRecord {
    let products = (n / 10).max(1);
    let keys = (n / 5).max(1);
    let product_key = i % products;
    let id = format!("{}-{i:07}", PRODUCTS[product_key % PRODUCTS.len()]);
    let zone = zone(i);
    let services = (0..1 + i % 3)
        .map(|k| {
            let key = (3 * i + k) % keys;
            let (resource, category) = RESOURCES[key % RESOURCES.len()];
            let category = if k == 0 && i.is_multiple_of(100) {
                WIDE.to_owned()
            } else {
                format!("{category}-{key}")
            };
            let mut credentials = vec![Credentials {
                id: "platform".into(),
                default: true,
                scope: Scope::Global,
                configuration: secrets(&[
                    ("ACCESS_KEY_ID", format!("AKIA{i:08}{k}")),
                    (
                        "SECRET_ACCESS_KEY",
                        format!("wJalr-{i}-{k}-platform-secret"),
                    ),
                ]),
                ..Default::default()
            }];
            if (i + k).is_multiple_of(2) {
                credentials.push(Credentials {
                    id: "team".into(),
                    scope: Scope::Project,
                    projects: vec![format!("project-{}", (i + k) % 7)],
                    configuration: secrets(&[("API_TOKEN", format!("tok-{i}-{k}-team"))]),
                    ..Default::default()
                });
            }
            if (i + k).is_multiple_of(5) {
                credentials.push(Credentials {
                    id: "owner".into(),
                    scope: Scope::User,
                    users: vec![format!("user-{}", i % 40)],
                    configuration: secrets(&[("PASSWORD", format!("pw-{i}-{k}"))]),
                    ..Default::default()
                });
            }
            Service {
                id: format!("{resource}-{k}"),
                resource: format!("{resource}-{key}"),
                category,
                authrequired: k == 1,
                description: String::new(),
                endpoints: internal_and_external(
                    format!("http://{resource}.{id}.{zone}.svc.cluster.local:8080"),
                    format!("https://{id}.{zone}.example.com/{resource}"),
                ),
                credentials,
                configuration: config(&[("TIMEOUT_SECONDS", format!("{}", 10 + k * 5))]),
            }
        })
        .collect();
    let version = match i % 11 {
        0 => format!("{}.{}.0-rc.{}", i % 4, i % 13, i % 3),
        _ => format!("{}.{}.{}", i % 4, i % 13, i % 7),
    };
    ExtensionRecord {
        id,
        product: product(product_key),
        version,
        description: format!(
            "{} installation {i}",
            PRODUCTS[product_key % PRODUCTS.len()]
        ),
        zone,
        configuration: config(&[
            ("REGION", REGIONS[i % REGIONS.len()].to_owned()),
            ("OWNER", format!("team-{}", i % 40)),
        ]),
        services,
    }
}

fn consumer() -> Consumer {
    Consumer::in_zone(&zone(5)).with_project("project-1")
}

/// Bytes of heap in use (glibc `mallinfo2`: allocated, not yet freed).
fn heap() -> u64 {
    // SAFETY: mallinfo2 only reads the allocator's counters.
    let info = unsafe { libc::mallinfo2() };
    (info.uordblks + info.hblkhd) as u64
}

/// CPU time (user + system) this process has used so far.
fn cpu() -> Duration {
    // SAFETY: getrusage writes into the zeroed struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Resident set size of this process, in bytes (Linux `/proc/self/statm`).
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

fn human(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    match ns {
        x if x < 1e3 => format!("{x:.0} ns"),
        x if x < 1e6 => format!("{:.1} µs", x / 1e3),
        x if x < 1e9 => format!("{:.1} ms", x / 1e6),
        x => format!("{:.2} s", x / 1e9),
    }
}

/// One line of the printed table.
struct Row {
    store: &'static str,
    n: usize,
    case: String,
    value: String,
}

struct Bench {
    rows: Vec<Row>,
    samples: usize,
    /// How many times the SQLite store is opened (the median is reported).
    open_rounds: usize,
}

impl Bench {
    fn row(&mut self, store: &'static str, n: usize, case: impl Into<String>, value: String) {
        let row = Row {
            store,
            n,
            case: case.into(),
            value,
        };
        eprintln!(
            "{:>7} {:>8} {:<40} {}",
            row.store, row.n, row.case, row.value
        );
        self.rows.push(row);
    }

    /// p50/p99 of `samples` single calls of `op(k)` over keys `k`.
    fn latency(&mut self, store: &'static str, n: usize, case: &str, mut op: impl FnMut(usize)) {
        let mut times: Vec<Duration> = (0..self.samples)
            .map(|k| {
                let began = Instant::now();
                op(k);
                began.elapsed()
            })
            .collect();
        times.sort();
        let value = format!(
            "p50 {} / p99 {}",
            human(percentile(&times, 0.5)),
            human(percentile(&times, 0.99))
        );
        self.row(store, n, case, value);
    }
}

/// A selector kind's name and its selector for call `k`.
type SelectorKind = (&'static str, Box<dyn Fn(usize) -> Selector>);

fn selectors(n: usize) -> Vec<SelectorKind> {
    let products = (n / 10).max(1);
    let keys = (n / 5).max(1);
    let spread = move |k: usize| (k * 7919) % keys;
    vec![
        (
            "product",
            Box::new(move |k| Selector {
                product: Some(product((k * 7919) % products)),
                ..Default::default()
            }),
        ),
        (
            "product+version",
            Box::new(move |k| Selector {
                product: Some(product((k * 7919) % products)),
                version: Some(">=1.0.0".into()),
                ..Default::default()
            }),
        ),
        (
            "resource",
            Box::new(move |k| {
                let key = spread(k);
                Selector::resource(&format!("{}-{key}", RESOURCES[key % RESOURCES.len()].0))
            }),
        ),
        (
            "category",
            Box::new(move |k| {
                let key = spread(k);
                Selector::category(&format!("{}-{key}", RESOURCES[key % RESOURCES.len()].1))
            }),
        ),
        (
            "zone+resource",
            Box::new(move |k| {
                // Record i's zone and its first service's resource: always a match.
                let i = (k * 7919) % n;
                let key = (3 * i) % keys;
                Selector {
                    zone: Some(zone(i)),
                    service_resource: Some(format!("{}-{key}", RESOURCES[key % RESOURCES.len()].0)),
                    ..Default::default()
                }
            }),
        ),
    ]
}

/// The resolution cases over an open registry.
fn resolve_cases(bench: &mut Bench, store: &'static str, n: usize, registry: &Registry) {
    let consumer = consumer();
    for (kind, selector) in selectors(n) {
        let mut found = 0;
        bench.latency(store, n, &format!("resolve {kind}"), |k| {
            if black_box(registry.resolve(&selector(k), &consumer)).is_ok() {
                found += 1;
            }
        });
        assert!(found > 0, "{kind}: no selector resolved");
    }
    bench.latency(store, n, "no-match (product)", |k| {
        let selector = Selector {
            product: Some(format!("no-such-product-{k}")),
            ..Default::default()
        };
        let err = registry.resolve(&selector, &consumer).unwrap_err();
        black_box(err);
    });
    bench.latency(store, n, "no-match (resource)", |k| {
        let selector = Selector::resource(&format!("no-such-resource-{k}"));
        black_box(registry.resolve(&selector, &consumer).unwrap_err());
    });
    let wide = Selector::category(WIDE);
    let count = registry
        .resolve_all(&wide, &Consumer::anywhere())
        .map_or(0, |all| all.len());
    let samples = bench.samples;
    bench.samples = (samples / 10).max(10);
    bench.latency(
        store,
        n,
        &format!("resolve_all wide ({count} candidates)"),
        |_| {
            black_box(registry.resolve_all(&wide, &Consumer::anywhere()).unwrap());
        },
    );
    bench.samples = samples;
}

fn generate(n: usize) -> (Vec<ExtensionRecord>, String) {
    let records: Vec<ExtensionRecord> = (0..n).map(|i| record(i, n)).collect();
    let lines = format::records_to_json_lines(&records, Secrets::Reveal).expect("serialize");
    (records, lines)
}

/// Parses `lines` and writes the records in transactions of [`LOAD_BATCH`].
async fn load_json_lines(registry: &Registry, lines: &str) {
    let limits = ParseLimits::default();
    let mut chunk = String::new();
    let mut count = 0;
    for line in lines.lines() {
        chunk.push_str(line);
        chunk.push('\n');
        count += 1;
        if count == LOAD_BATCH {
            let records = format::parse_json_lines(&chunk, &limits).expect("parse");
            registry
                .put_all(records, PutMode::Create)
                .await
                .expect("load");
            chunk.clear();
            count = 0;
        }
    }
    if count > 0 {
        let records = format::parse_json_lines(&chunk, &limits).expect("parse");
        registry
            .put_all(records, PutMode::Create)
            .await
            .expect("load");
    }
}

fn first_resolve(registry: &Registry) {
    let selector = Selector {
        product: Some(product(5)),
        ..Default::default()
    };
    registry
        .resolve(&selector, &consumer())
        .expect("first resolve");
}

async fn memory_case(bench: &mut Bench, n: usize, lines: &str) {
    let began = Instant::now();
    let store = MemoryStore::new();
    let loader = Registry::open(store.clone()).await.expect("open");
    load_json_lines(&loader, lines).await;
    first_resolve(&loader);
    bench.row(
        "memory",
        n,
        "load JSON lines + first resolve",
        human(began.elapsed()),
    );
    drop(loader);

    // The records' own heap: one listing of them.
    let h0 = heap();
    let listing = store
        .list(&inferlink::ListFilter::all())
        .await
        .expect("list");
    let data = heap().saturating_sub(h0);
    drop(listing);
    // A registry over the store: its copy of the records plus the index.
    let (h1, r1) = (heap(), rss());
    let began = Instant::now();
    let registry = Registry::open(store.clone()).await.expect("open");
    first_resolve(&registry);
    bench.row("memory", n, "open-to-first-resolve", human(began.elapsed()));
    let (held, resident) = (heap().saturating_sub(h1), rss().saturating_sub(r1));
    let per = |bytes: u64| format!("{} B", bytes / n as u64);
    bench.row("memory", n, "records' own heap per record", per(data));
    bench.row(
        "memory",
        n,
        "registry heap per record (records + index)",
        per(held),
    );
    bench.row(
        "memory",
        n,
        "index heap per record beyond the records",
        per(held.saturating_sub(data)),
    );
    bench.row("memory", n, "registry RSS growth per record", per(resident));
    resolve_cases(bench, "memory", n, &registry);
}

async fn sqlite_case(bench: &mut Bench, n: usize, lines: &str, dir: &Path) {
    let path = dir.join(format!("registry-{n}.db"));
    let (began, cpu0) = (Instant::now(), cpu());
    {
        let store = SqliteStore::open_with(&path, keyed_sqlite_options()).expect("open");
        let registry = Registry::open(store).await.expect("registry");
        load_json_lines(&registry, lines).await;
    }
    bench.row(
        "sqlite",
        n,
        "load JSON lines (sealed secrets)",
        format!(
            "{} (CPU {})",
            human(began.elapsed()),
            human(cpu().saturating_sub(cpu0))
        ),
    );
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    bench.row(
        "sqlite",
        n,
        "file size per record",
        format!("{} B", size / n as u64),
    );

    // A host opening an existing store: a fresh process, so nothing of the
    // load (allocator arenas, page cache of this process) is reused.
    let out = std::process::Command::new(std::env::current_exe().expect("exe"))
        .args(["--open-existing", &path.display().to_string()])
        .args(["--records", &n.to_string()])
        .args(["--samples", &bench.samples.to_string()])
        .args(["--open-rounds", &bench.open_rounds.to_string()])
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("the open process");
    assert!(out.status.success(), "the open process failed");
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let [store, n, case, value] = line.split('\t').collect::<Vec<_>>()[..] {
            bench.rows.push(Row {
                store: if store == "sqlite" { "sqlite" } else { "?" },
                n: n.parse().unwrap_or(0),
                case: case.to_owned(),
                value: value.to_owned(),
            });
        }
    }
}

/// Opens the SQLite store at `path` (holding `n` generated records) and
/// runs the open, memory, resolution and watch cases.
async fn sqlite_open_case(bench: &mut Bench, n: usize, path: &Path) {
    // Earlier rounds (`--open-rounds`) are dropped; the last one is kept.
    let mut times = Vec::new();
    for _ in 1..bench.open_rounds {
        let began = Instant::now();
        let store = SqliteStore::open_with(path, keyed_sqlite_options()).expect("reopen");
        let registry = Registry::open(store).await.expect("registry");
        first_resolve(&registry);
        times.push(began.elapsed());
    }
    let (h0, r0) = (heap(), rss());
    let (began, cpu0) = (Instant::now(), cpu());
    let store = SqliteStore::open_with(path, keyed_sqlite_options()).expect("reopen");
    let registry = Registry::open(store).await.expect("registry");
    first_resolve(&registry);
    times.push(began.elapsed());
    let open_cpu = cpu().saturating_sub(cpu0);
    times.sort();
    let case = match times.len() {
        1 => "open-to-first-resolve".to_owned(),
        k => format!("open-to-first-resolve (median of {k})"),
    };
    bench.row("sqlite", n, case, human(times[times.len() / 2]));
    bench.row(
        "sqlite",
        n,
        "open-to-first-resolve, CPU time (last open)",
        human(open_cpu),
    );
    let per = |bytes: u64| format!("{} B", bytes / n as u64);
    bench.row(
        "sqlite",
        n,
        "registry heap per record after open",
        per(heap().saturating_sub(h0)),
    );
    bench.row(
        "sqlite",
        n,
        "process RSS growth per record",
        per(rss().saturating_sub(r0)),
    );
    resolve_cases(bench, "sqlite", n, &registry);
    watch_case(
        bench,
        n,
        &registry,
        &Target::Sqlite(path.display().to_string()),
    )
    .await;
}

/// A second process rewrites one record's endpoint; the time until a live
/// resolution here yields the change (wall clocks of one machine).
/// Where a second process writes: a SQLite file or a PostgreSQL URL.
#[derive(Debug, Clone)]
enum Target {
    Sqlite(String),
    #[cfg_attr(not(feature = "store-postgres"), allow(dead_code))]
    Postgres(String),
}

impl Target {
    fn args(&self) -> [&str; 2] {
        match self {
            Target::Sqlite(path) => ["sqlite", path],
            Target::Postgres(url) => ["postgres", url],
        }
    }

    fn store(&self) -> &'static str {
        match self {
            Target::Sqlite(_) => "sqlite",
            Target::Postgres(_) => "postgres",
        }
    }
}

async fn watch_case(bench: &mut Bench, n: usize, registry: &Registry, target: &Target) {
    let selector = Selector {
        extension_id: Some(record(5, n).id),
        ..Default::default()
    };
    let mut live = registry
        .watch_resolution(selector, Consumer::anywhere())
        .expect("watch");
    live.next().await.expect("open").expect("first");
    let exe = std::env::current_exe().expect("exe");
    let mut samples = Vec::new();
    for round in 0..5 {
        let mut command = std::process::Command::new(&exe);
        command
            .arg("--child-write")
            .args(target.args())
            .arg(n.to_string())
            .arg(round.to_string());
        // The live resolution notices a change applied before `next` is
        // called, so the child can finish first; the times are wall clocks.
        let out = tokio::task::spawn_blocking(move || command.output())
            .await
            .expect("join")
            .expect("child");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let found = tokio::time::timeout(Duration::from_secs(30), live.next())
            .await
            .expect("the change is seen within 30 s");
        found.expect("open").expect("resolves");
        let seen = SystemTime::now();
        let written: u128 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("time");
        let seen = seen.duration_since(UNIX_EPOCH).expect("clock").as_nanos();
        samples.push(Duration::from_nanos(seen.saturating_sub(written) as u64));
    }
    samples.sort();
    bench.row(
        target.store(),
        n,
        "change by 2nd process seen (median of 5)",
        human(samples[2]),
    );
}

/// The second process of [`watch_case`]: rewrites record 5's endpoint.
fn child_write(args: &[String]) {
    let (kind, target) = (&args[0], &args[1]);
    let n: usize = args[2].parse().expect("n");
    let round = &args[3];
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let store: Box<dyn RegistryStore> = match kind.as_str() {
            #[cfg(feature = "store-postgres")]
            "postgres" => Box::new(pg::connect(target).await),
            _ => Box::new(SqliteStore::open_with(target, keyed_sqlite_options()).expect("open")),
        };
        let mut changed = record(5, n);
        for service in &mut changed.services {
            for (e, endpoint) in service.endpoints.iter_mut().enumerate() {
                endpoint.url = format!("https://moved-{round}.example.com/{}/{e}", service.id);
            }
        }
        store.put(changed, PutMode::Overwrite).await.expect("write");
    });
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock");
    println!("{}", now.as_nanos());
}

/// The PostgreSQL cases (feature `store-postgres`), on the testkit's throwaway cluster.
#[cfg(feature = "store-postgres")]
mod pg {
    use super::*;
    use inferlink::store::{PostgresOptions, PostgresStore};
    use inferlink_testkit::postgres::PgCluster;

    /// The bench's schema, with the fixed test key.
    pub(super) async fn connect(url: &str) -> PostgresStore {
        let options = PostgresOptions {
            schema: "registry_scale".to_owned(),
            key_provider: Some(inferlink_testkit::keys::test_key_provider()),
            ..PostgresOptions::default()
        };
        PostgresStore::connect(url, options)
            .await
            .expect("connect to the bench cluster")
    }

    /// Starts the throwaway cluster, or says why the PostgreSQL cases are
    /// skipped; with `INFERLINK_REQUIRE_POSTGRES=1` (the README's test
    /// command) a skip is a failure instead.
    pub(super) fn start() -> Option<PgCluster> {
        let skip = |why: String| {
            if std::env::var("INFERLINK_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                panic!("PostgreSQL cases required (INFERLINK_REQUIRE_POSTGRES=1): {why}");
            }
            eprintln!("skipped: PostgreSQL cases: {why}");
            None
        };
        if inferlink_testkit::postgres::find_binaries().is_none() {
            return skip("no server binaries (scripts/provision-postgres)".to_owned());
        }
        match PgCluster::start() {
            Ok(cluster) => Some(cluster),
            Err(e) => skip(format!("cannot start a cluster: {e}")),
        }
    }

    /// Load, open, resolve and watch over PostgreSQL; the schema is emptied first.
    pub(super) async fn case(bench: &mut Bench, n: usize, lines: &str, cluster: &PgCluster) {
        cluster
            .psql("DROP SCHEMA IF EXISTS registry_scale CASCADE")
            .expect("drop the bench schema");
        let url = cluster.url();
        let (began, cpu0) = (Instant::now(), cpu());
        {
            let registry = Registry::open(connect(&url).await).await.expect("registry");
            load_json_lines(&registry, lines).await;
        }
        let load = format!(
            "{} (CPU {})",
            human(began.elapsed()),
            human(cpu().saturating_sub(cpu0))
        );
        bench.row("postgres", n, "load JSON lines (sealed secrets)", load);
        let (h0, began, cpu0) = (heap(), Instant::now(), cpu());
        let registry = Registry::open(connect(&url).await).await.expect("registry");
        first_resolve(&registry);
        let open = format!(
            "{} (CPU {})",
            human(began.elapsed()),
            human(cpu().saturating_sub(cpu0))
        );
        bench.row("postgres", n, "open-to-first-resolve (same process)", open);
        let held = heap().saturating_sub(h0) / n as u64;
        bench.row(
            "postgres",
            n,
            "registry heap per record after open",
            format!("{held} B"),
        );
        resolve_cases(bench, "postgres", n, &registry);
        watch_case(bench, n, &registry, &Target::Postgres(url)).await;
    }
}

async fn yaml_case(bench: &mut Bench, records: &[ExtensionRecord], dir: &Path) {
    let n = records.len();
    let text = format::records_to_yaml(records, Secrets::Reveal).expect("yaml");
    let path = dir.join("yaml.db");
    let began = Instant::now();
    let store = SqliteStore::open_with(&path, keyed_sqlite_options()).expect("open");
    let registry = Registry::open(store).await.expect("registry");
    registry.register_yaml(&text).await.expect("register_yaml");
    bench.row(
        "sqlite",
        n,
        "load YAML (register_yaml)",
        human(began.elapsed()),
    );
    let began = Instant::now();
    let registry = Registry::open(MemoryStore::new()).await.expect("registry");
    registry.register_yaml(&text).await.expect("register_yaml");
    bench.row(
        "memory",
        n,
        "load YAML (register_yaml)",
        human(began.elapsed()),
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(at) = args.iter().position(|a| a == "--child-write") {
        child_write(&args[at + 1..]);
        return;
    }
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|at| args.get(at + 1).cloned())
    };
    let smoke = args.iter().any(|a| a == "--smoke");
    let sizes: Vec<usize> = value("--sizes")
        .unwrap_or_else(|| "10000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("--sizes: numbers"))
        .collect();
    let stores = value("--stores").unwrap_or_else(|| "memory,sqlite".into());
    let mut bench = Bench {
        rows: Vec::new(),
        samples: if smoke { 100 } else { 1000 },
        open_rounds: value("--open-rounds")
            .map_or(1, |v| v.parse().expect("--open-rounds: a number")),
    };
    let yaml = !args.iter().any(|a| a == "--no-yaml");
    if let Some(path) = value("--open-existing") {
        let n: usize = value("--records")
            .and_then(|v| v.parse().ok())
            .expect("--records N with --open-existing");
        if let Some(samples) = value("--samples").and_then(|v| v.parse().ok()) {
            bench.samples = samples;
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(sqlite_open_case(&mut bench, n, Path::new(&path)));
        for row in &bench.rows {
            println!("{}\t{}\t{}\t{}", row.store, row.n, row.case, row.value);
        }
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    #[cfg(feature = "store-postgres")]
    let cluster = if stores.contains("postgres") {
        pg::start()
    } else {
        None
    };
    #[cfg(not(feature = "store-postgres"))]
    if stores.contains("postgres") {
        eprintln!("skipped: PostgreSQL cases: built without --features store-postgres");
    }
    rt.block_on(async {
        for &n in &sizes {
            let (records, lines) = generate(n);
            if yaml && n <= 10_000 {
                yaml_case(&mut bench, &records, dir.path()).await;
            }
            drop(records);
            if stores.contains("memory") {
                memory_case(&mut bench, n, &lines).await;
            }
            if stores.contains("sqlite") {
                sqlite_case(&mut bench, n, &lines, dir.path()).await;
            }
            #[cfg(feature = "store-postgres")]
            if let Some(cluster) = &cluster {
                pg::case(&mut bench, n, &lines, cluster).await;
            }
        }
    });
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("| store | records | case | value |");
    println!("|---|---:|---|---|");
    for row in &bench.rows {
        println!(
            "| {} | {} | {} | {} |",
            row.store, row.n, row.case, row.value
        );
    }
    println!();
    println!("load average at the end: {}", load.trim());
}
