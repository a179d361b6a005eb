//! Resolution and loading benchmarks (figures in `docs/performance.md`).
//!
//! Run with `cargo bench --bench resolve`; filter with e.g.
//! `cargo bench --bench resolve -- resolve/product`.
//!
//! Registries are synthetic and deterministic (no randomness): record `i` of
//! `n` has product `product-{i % (n/10)}`, zone `zone-{i % 20}`, version
//! `1.{i % 30}.{i % 7}` and three services; service `k` has resource and
//! category `res-`/`cat-{(3i + k) % (3n/10)}`, so every product, resource
//! and category is shared by about ten records. The first service of every
//! 100th record has category `wide` instead (1 % of the records), for the
//! case where the selected key has many matching candidates.
//!
//! `resolve/*` measures [`Registry::resolve`] (index lookup, then filtering
//! and ranking of the candidates); `baseline_scan/*` measures
//! [`inferlink::resolve::resolve_in`] over every record for the same selector
//! and consumer, so the ratio between the two is the gain of the index.
//! `load/*` measures parsing 10 000 records from multi-document YAML and
//! registering them into a fresh registry, together and separately.

use std::hint::black_box;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, criterion_group, criterion_main};
use inferlink::format::{self, Secrets};
use inferlink::{
    Consumer, Credentials, ExtensionRecord, ListFilter, MemoryStore, PutMode, Registry, Scope,
    Selector, Service, StoredRecord,
};
use tokio::runtime::Runtime;

#[path = "support/records.rs"]
mod support;
use support::{config, internal_and_external, secrets};

/// Registry sizes, in records (three services each).
const SIZES: [usize; 3] = [1_000, 10_000, 100_000];
/// Records in the load benchmarks.
const LOAD_RECORDS: usize = 10_000;
/// Every `WIDE_EVERY`-th record's first service has category [`WIDE`].
const WIDE_EVERY: usize = 100;
const WIDE: &str = "wide";
/// Projects named in project-scoped credentials (`project-0` …).
const PROJECTS: usize = 5;

/// The consumer of every resolution: in a zone, working in a project, so the
/// zone ranking and the credential-scope checks both run.
fn consumer() -> Consumer {
    Consumer::in_zone("zone-5").with_project("project-1")
}

/// Record `i` of a registry of `n` records (see the module documentation).
fn record(i: usize, n: usize) -> ExtensionRecord {
    let products = (n / 10).max(1);
    let keys = (3 * n / 10).max(1);
    let id = format!("ext-{i:06}");
    let zone = format!("zone-{}", i % 20);
    let services = (0..3)
        .map(|k| {
            let key = (3 * i + k) % keys;
            let category = if k == 0 && i.is_multiple_of(WIDE_EVERY) {
                WIDE.to_owned()
            } else {
                format!("cat-{key}")
            };
            let mut credentials = vec![Credentials {
                id: "shared".into(),
                default: k == 0,
                scope: Scope::Global,
                configuration: secrets(&[
                    ("ACCESS_KEY_ID", format!("AK{i:06}{k}")),
                    ("SECRET_ACCESS_KEY", format!("sk-{i}-{k}-global")),
                ]),
                ..Default::default()
            }];
            if (i + k).is_multiple_of(2) {
                credentials.push(Credentials {
                    id: "team".into(),
                    default: false,
                    scope: Scope::Project,
                    projects: vec![
                        format!("project-{}", (i + k) % PROJECTS),
                        format!("project-{}", (i + k + 1) % PROJECTS),
                    ],
                    configuration: secrets(&[
                        ("ACCESS_KEY_ID", format!("AT{i:06}{k}")),
                        ("SECRET_ACCESS_KEY", format!("sk-{i}-{k}-team")),
                        ("SESSION_TOKEN", format!("tok-{i}-{k}")),
                    ]),
                    ..Default::default()
                });
            }
            Service {
                id: format!("svc-{k}"),
                resource: format!("res-{key}"),
                category,
                authrequired: k == 1,
                description: String::new(),
                endpoints: internal_and_external(
                    format!("http://svc-{k}.{id}.{zone}.svc.cluster.local:8080"),
                    format!("https://{id}-svc-{k}.example.com"),
                ),
                credentials,
                configuration: config(&[
                    ("TIMEOUT_SECONDS", format!("{}", 10 + k * 5)),
                    ("API_PATH", format!("/api/v{}", 1 + k)),
                ]),
            }
        })
        .collect();
    ExtensionRecord {
        id,
        product: format!("product-{}", i % products),
        version: format!("1.{}.{}", i % 30, i % 7),
        description: format!("synthetic installation {i}"),
        zone,
        configuration: config(&[
            ("REGION", format!("region-{}", i % 4)),
            ("OWNER", format!("team-{}", i % 12)),
        ]),
        services,
    }
}

fn records(n: usize) -> Vec<ExtensionRecord> {
    (0..n).map(|i| record(i, n)).collect()
}

/// The Tokio runtime the registries live on (their follower tasks run on it).
fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

async fn registry_of(records: Vec<ExtensionRecord>) -> Registry {
    let registry = Registry::open(MemoryStore::new()).await.expect("open");
    for record in records {
        registry.register(record).await.expect("register");
    }
    registry
}

/// A registry of `n` records and the same records as a slice, for the baseline.
struct Fixture {
    registry: Registry,
    records: Vec<Arc<StoredRecord>>,
}

impl Fixture {
    /// Builds the registry (not measured) and checks that the index and the
    /// scan give the same, successful answer for every measured selector.
    fn build(rt: &Runtime, n: usize) -> Fixture {
        let registry = rt.block_on(registry_of(records(n)));
        let records = registry.list(&ListFilter::all());
        assert_eq!(records.len(), n);
        let consumer = consumer();
        for (name, selector) in selectors() {
            let indexed = registry.resolve(&selector, &consumer);
            let scanned = inferlink::resolve::resolve_in(&records, &selector, &consumer);
            match (indexed, scanned) {
                (Ok(a), Ok(b)) => assert_eq!(a.to_string(), b.to_string(), "{name} at {n}"),
                (a, b) => panic!("{name} at {n}: {a:?} / {b:?}"),
            }
        }
        Fixture { registry, records }
    }
}

/// The fixtures, built on first use so that a filtered run only builds what it measures.
struct Fixtures {
    built: [OnceLock<Fixture>; SIZES.len()],
    /// Declared last: dropped after the registries.
    rt: Runtime,
}

impl Fixtures {
    fn get(&self, n: usize) -> &Fixture {
        let i = SIZES.iter().position(|&s| s == n).expect("a known size");
        self.built[i].get_or_init(|| Fixture::build(&self.rt, n))
    }
}

/// The selectors measured, by benchmark name.
fn selectors() -> Vec<(&'static str, Selector)> {
    // product-5: ten records (i ≡ 5 mod n/10), all in zone-5 (the consumer's),
    // four of them at version 1.5.x.
    let product = Selector {
        product: Some("product-5".into()),
        ..Default::default()
    };
    let product_version = Selector {
        version: Some("~1.5".into()),
        ..product.clone()
    };
    vec![
        ("product", product),
        ("resource", Selector::resource("res-17")),
        ("category", Selector::category("cat-17")),
        ("product_version", product_version),
        (WIDE, Selector::category(WIDE)),
    ]
}

fn bench_resolve(c: &mut Criterion) {
    // The runtime stays alive while the registries (and their follower tasks) do.
    let fixtures = Fixtures {
        built: Default::default(),
        rt: runtime(),
    };
    let consumer = consumer();

    for (name, selector) in selectors() {
        for (prefix, indexed) in [("resolve", true), ("baseline_scan", false)] {
            let mut group = c.benchmark_group(format!("{prefix}/{name}"));
            for n in SIZES {
                group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
                    let fx = fixtures.get(n);
                    if indexed {
                        b.iter(|| {
                            fx.registry
                                .resolve(black_box(&selector), black_box(&consumer))
                        });
                    } else {
                        b.iter(|| {
                            inferlink::resolve::resolve_in(
                                black_box(&fx.records),
                                black_box(&selector),
                                black_box(&consumer),
                            )
                        });
                    }
                });
            }
            group.finish();
        }
    }

    // Not a target, but worth knowing: a selector that matches nothing (the
    // error explains itself, which looks at every record).
    let miss = Selector {
        product: Some("no-such-product".into()),
        ..Default::default()
    };
    let mut group = c.benchmark_group("resolve/no_match");
    for n in SIZES {
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            let fx = fixtures.get(n);
            assert!(fx.registry.resolve(&miss, &consumer).is_err());
            b.iter(|| fx.registry.resolve(black_box(&miss), black_box(&consumer)));
        });
    }
    group.finish();
}

/// Times `iters` runs of `load` (each given a fresh input from `setup`,
/// made outside the timing); the registry it returns is dropped untimed.
fn time_loads<I, F>(rt: &Runtime, iters: u64, mut setup: impl FnMut() -> I, mut load: F) -> Duration
where
    F: AsyncFnMut(I) -> Registry,
{
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let input = setup();
        let start = Instant::now();
        let registry = rt.block_on(load(input));
        total += start.elapsed();
        drop(black_box(registry));
    }
    total
}

fn bench_load(c: &mut Criterion) {
    let rt = runtime();
    let parsed = records(LOAD_RECORDS);
    let text = format::records_to_yaml(&parsed, Secrets::Reveal).expect("yaml");
    assert_eq!(format::parse_records(&text).expect("parse"), parsed);
    let text = text.as_str();

    let mut group = c.benchmark_group("load");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(15));

    // Parsing and validation only.
    group.bench_function("parse_yaml_10k", |b| {
        b.iter(|| format::parse_records(black_box(text)).expect("parse"));
    });

    // Registering already parsed records, one `register` each, into a fresh registry.
    group.bench_function("register_10k", |b| {
        b.iter_custom(|iters| time_loads(&rt, iters, || parsed.clone(), registry_of));
    });

    // The same records in one batch (`put_all`: one store transaction, then
    // the registry waits for its index to catch up).
    group.bench_function("put_all_10k", |b| {
        b.iter_custom(|iters| {
            time_loads(
                &rt,
                iters,
                || parsed.clone(),
                async |records| {
                    let registry = Registry::open(MemoryStore::new()).await.expect("open");
                    registry
                        .put_all(records, PutMode::Create)
                        .await
                        .expect("put_all");
                    registry
                },
            )
        });
    });

    // The whole job: YAML text to a registry that resolves, one `register` per record.
    group.bench_function("yaml_10k", |b| {
        b.iter_custom(|iters| {
            time_loads(
                &rt,
                iters,
                || (),
                async |()| registry_of(format::parse_records(text).expect("parse")).await,
            )
        });
    });

    // The same through the library's one-call load (`register_yaml`: one batch write).
    group.bench_function("register_yaml_10k", |b| {
        b.iter_custom(|iters| {
            time_loads(
                &rt,
                iters,
                || (),
                async |()| {
                    let registry = Registry::open(MemoryStore::new()).await.expect("open");
                    registry.register_yaml(text).await.expect("register_yaml");
                    registry
                },
            )
        });
    });
    group.finish();

    #[cfg(feature = "store-sqlite")]
    bench_load_sqlite(c, &rt, text);
}

/// Loads into a durable SQLite file (a fresh file per run; the temporary
/// directory is created and removed outside the timing).
#[cfg(feature = "store-sqlite")]
fn bench_load_sqlite(c: &mut Criterion, rt: &Runtime, text: &str) {
    let mut group = c.benchmark_group("load");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(30));
    let sqlite_registry = async |dir: &tempfile::TempDir| {
        let store = inferlink_testkit::keys::open_keyed_sqlite(dir.path().join("registry.db"))
            .expect("sqlite");
        Registry::open(store).await.expect("open")
    };
    group.bench_function("yaml_10k_sqlite", |b| {
        b.iter_custom(|iters| {
            let mut dirs = Vec::new();
            let total = time_loads(
                rt,
                iters,
                || tempfile::tempdir().expect("tempdir"),
                async |dir| {
                    let records = format::parse_records(text).expect("parse");
                    let registry = sqlite_registry(&dir).await;
                    for record in records {
                        registry.register(record).await.expect("register");
                    }
                    dirs.push(dir);
                    registry
                },
            );
            drop(dirs);
            total
        });
    });
    group.bench_function("register_yaml_10k_sqlite", |b| {
        b.iter_custom(|iters| {
            let mut dirs = Vec::new();
            let total = time_loads(
                rt,
                iters,
                || tempfile::tempdir().expect("tempdir"),
                async |dir| {
                    let registry = sqlite_registry(&dir).await;
                    registry.register_yaml(text).await.expect("register_yaml");
                    dirs.push(dir);
                    registry
                },
            );
            drop(dirs);
            total
        });
    });
    group.finish();
}

fn config_criterion() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config_criterion();
    targets = bench_resolve, bench_load
}
criterion_main!(benches);
