//! `PostgresStore` against a throwaway PostgreSQL cluster: the conformance
//! suite, sharing between hosts, migrations, and fault proofs (server
//! restarts mid-load, a killed listening connection, the server down at
//! start, a schema from a newer version).
//!
//! Every test starts its own cluster ([`PgCluster::start_or_skip`]): without
//! server binaries they skip with a `skipped:` line, unless
//! `INFERLINK_REQUIRE_POSTGRES=1` (set by `scripts/test`) makes that a failure.
#![cfg(all(unix, feature = "store-postgres"))]

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::future::join_all;
use inferlink::store::{PostgresOptions, PostgresStore, TlsMode};
use inferlink::{
    Change, Consumer, ErrorKind, ExtensionRecord, ListFilter, PutMode, Registry, RegistryStore,
    Selector,
};
use inferlink_testkit::keys::{other_test_master_key, test_key_provider};
use inferlink_testkit::postgres::PgCluster;
use inferlink_testkit::store::{check_reopen_durability, run_store_conformance};

/// Upper bound for anything a test waits for (a hang guard, not a speed target).
const PATIENCE: Duration = Duration::from_secs(60);

fn options(schema: &str) -> PostgresOptions {
    PostgresOptions {
        schema: schema.to_owned(),
        // Generous: on a loaded 2-core machine a fresh backend can take seconds to start.
        connect_timeout: Duration::from_secs(15),
        operation_timeout: Duration::from_secs(10),
        watch_backoff_min: Duration::from_millis(20),
        watch_backoff_max: Duration::from_millis(500),
        key_provider: Some(test_key_provider()),
        ..PostgresOptions::default()
    }
}

async fn connect(cluster: &PgCluster, schema: &str) -> PostgresStore {
    PostgresStore::connect(&cluster.url(), options(schema))
        .await
        .unwrap_or_else(|e| panic!("connect to the test cluster failed: {e}"))
}

fn record(id: &str, url: &str, secret: &str) -> ExtensionRecord {
    inferlink::format::parse_records(&format!(
        "id: {id}
product: minio
zone: zone-a
services:
  - id: s3
    resource: s3
    category: object-storage
    endpoints:
      - url: {url}
    credentials:
      - id: admin
        configuration:
          AWS_SECRET_ACCESS_KEY: {secret}
"
    ))
    .unwrap()
    .remove(0)
}

/// Awaits `fut` or fails the test after [`PATIENCE`].
async fn bounded<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, fut)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {PATIENCE:?}"))
}

/// Polls `check` until it holds, failing the test after [`PATIENCE`].
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "{what}: not reached within {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs a blocking cluster operation off the runtime's worker threads.
async fn with_cluster<T: Send + 'static>(
    cluster: PgCluster,
    f: impl FnOnce(&mut PgCluster) -> T + Send + 'static,
) -> (PgCluster, T) {
    tokio::task::spawn_blocking(move || {
        let mut cluster = cluster;
        let value = f(&mut cluster);
        (cluster, value)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_store_conforms() {
    let Some(cluster) = PgCluster::start_or_skip("postgres_store_conforms") else {
        return;
    };
    let store = connect(&cluster, "conformance").await;
    run_store_conformance(&store).await;
    // Twice on the same store, and through a second instance on the same schema.
    let other = connect(&cluster, "conformance").await;
    run_store_conformance(&other).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_store_survives_reconnect() {
    let Some(cluster) = PgCluster::start_or_skip("postgres_store_survives_reconnect") else {
        return;
    };
    let url = cluster.url();
    check_reopen_durability(|| PostgresStore::connect(&url, options("durable"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_password_never_shows() {
    let Some(cluster) = PgCluster::start_or_skip("the_password_never_shows") else {
        return;
    };
    let password = cluster.password().to_owned();
    let store = connect(&cluster, "redaction").await;
    let shown = format!("{store:?}");
    assert!(!shown.contains(&password), "{shown}");
    assert!(
        shown.contains(&format!("127.0.0.1:{}", cluster.port())),
        "{shown}"
    );
    assert_eq!(
        store.target(),
        format!("postgres://postgres@127.0.0.1:{}/postgres", cluster.port())
    );

    let wrong = cluster.url().replace(&password, "not-the-password-42");
    let e = PostgresStore::connect(&wrong, options("redaction"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
    assert!(!e.is_retryable(), "{e}");
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains("not-the-password-42"), "{shown}");
    assert!(shown.contains("password authentication failed"), "{shown}");

    let e = PostgresStore::connect(&cluster.url_for("no_such_db"), options("redaction"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.message().contains("no_such_db"), "{e}");
    assert!(!format!("{e} {e:?}").contains(&password), "{e:?}");
}

/// Two stores (two "hosts") over one database: each sees the other's writes,
/// watches deliver them, a `Registry` on the second follows without restart,
/// and compare-and-set holds across them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hosts_share_one_database() {
    let Some(cluster) = PgCluster::start_or_skip("two_hosts_share_one_database") else {
        return;
    };
    let host_a = connect(&cluster, "shared").await;
    let host_b = connect(&cluster, "shared").await;
    let registry_b = Registry::open(host_b.clone()).await.unwrap();
    let since = host_b.list(&ListFilter::all()).await.unwrap().revision;
    let mut watch_b = host_b.watch(since).await.unwrap();

    let first = record("minio", "http://minio-a:9000", "s3cr3t");
    let r1 = host_a.put(first.clone(), PutMode::Create).await.unwrap();
    let event = bounded("host b's watch", watch_b.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((event.revision, event.id.as_str()), (r1, "minio"));
    match &event.change {
        Change::Put(stored) => assert_eq!(stored.record, first),
        Change::Delete => panic!("expected a put"),
    }

    let selector = Selector::resource("s3");
    let consumer = Consumer::in_zone("zone-a");
    let endpoint = |registry: &Registry| {
        registry
            .resolve(&selector, &consumer)
            .ok()
            .map(|r| r.endpoint().url.clone())
    };
    eventually("host b's registry sees the record", || {
        endpoint(&registry_b).as_deref() == Some("http://minio-a:9000")
    })
    .await;

    // An operator moves the endpoint once, on host a; host b follows.
    let moved = record("minio", "http://minio-b:9000", "<hidden>");
    let r2 = host_a.put(moved, PutMode::Update(r1)).await.unwrap();
    eventually("host b's registry sees the move", || {
        endpoint(&registry_b).as_deref() == Some("http://minio-b:9000")
    })
    .await;
    let stored = host_b.get("minio").await.unwrap().unwrap();
    assert_eq!(stored.revision, r2);
    assert_eq!(
        stored.record.services[0].credentials[0].configuration["AWS_SECRET_ACCESS_KEY"].expose(),
        "s3cr3t",
        "<hidden> kept the secret"
    );

    // Compare-and-set across hosts.
    let e = host_b
        .put(
            record("minio", "http://stale:9000", "x"),
            PutMode::Update(r1),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    let e = host_b
        .put(record("minio", "http://dup:9000", "x"), PutMode::Create)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");

    // A write through host b's registry is visible to host a at once.
    registry_b
        .register(record("other", "http://other:9000", "y"))
        .await
        .unwrap();
    assert!(host_a.get("other").await.unwrap().is_some());

    let r3 = host_a.delete("minio", Some(r2)).await.unwrap();
    eventually("host b's registry sees the delete", || {
        registry_b.get("minio").is_none() && registry_b.revision() >= r3
    })
    .await;
    assert_eq!(
        endpoint(&registry_b).as_deref(),
        Some("http://other:9000"),
        "the deleted record no longer resolves"
    );
}

/// Hosts starting at once migrate the schema exactly once (advisory lock).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_connects_migrate_once() {
    let Some(cluster) = PgCluster::start_or_skip("concurrent_first_connects_migrate_once") else {
        return;
    };
    let url = cluster.url();
    let results = join_all((0..6).map(|_| PostgresStore::connect(&url, options("race")))).await;
    let stores: Vec<PostgresStore> = results
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("a concurrent connect failed: {e}")))
        .collect();
    assert_eq!(
        cluster
            .psql("SELECT string_agg(version::text, ',' ORDER BY version) FROM race.schema_version")
            .unwrap(),
        "1,2,3"
    );
    assert_eq!(cluster.psql("SELECT count(*) FROM race.head").unwrap(), "1");
    // They all work on the one schema.
    let revisions: Vec<u64> = join_all(
        stores
            .iter()
            .enumerate()
            .map(|(i, s)| s.put(record(&format!("r{i}"), "http://x:1", "s"), PutMode::Create)),
    )
    .await
    .into_iter()
    .map(Result::unwrap)
    .collect();
    let distinct: BTreeSet<u64> = revisions.iter().copied().collect();
    assert_eq!(
        distinct,
        (1..=6).collect(),
        "one revision per write, no gaps"
    );
}

/// (e) A schema written by a newer inferlink is refused, and nothing is touched.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_newer_schema_is_refused_untouched() {
    let Some(cluster) = PgCluster::start_or_skip("a_newer_schema_is_refused_untouched") else {
        return;
    };
    let store = connect(&cluster, "future").await;
    store
        .put(record("kept", "http://kept:1", "s"), PutMode::Create)
        .await
        .unwrap();
    drop(store);
    cluster
        .psql("INSERT INTO future.schema_version (version, applied_by) VALUES (99, 'inferlink 99.0.0')")
        .unwrap();
    let snapshot = || {
        cluster
            .psql(
                "SELECT (SELECT string_agg(version::text, ',' ORDER BY version) FROM future.schema_version)
                 || ' | ' || (SELECT revision FROM future.head)
                 || ' | ' || (SELECT string_agg(id || '@' || revision || ':' || md5(body), ',') FROM future.records)
                 || ' | ' || (SELECT count(*) FROM pg_tables WHERE schemaname = 'future')",
            )
            .unwrap()
    };
    let before = snapshot();
    assert!(before.starts_with("1,2,3,99 | 1 | kept@1:"), "{before}");

    let e = PostgresStore::connect(&cluster.url(), options("future"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Storage, "{e}");
    assert!(!e.is_retryable(), "{e}");
    assert!(e.message().contains("newer inferlink"), "{e}");
    assert!(e.message().contains("schema version 99"), "{e}");
    assert!(e.message().contains("\"future\""), "{e}");
    assert_eq!(snapshot(), before, "nothing was touched");
}

/// (d) PostgreSQL down at start: `connect` fails with a retryable error
/// within the connect timeout, creates nothing, and works once the server is up.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_down_at_start_is_a_retryable_error() {
    let Some(cluster) = PgCluster::start_or_skip("a_server_down_at_start_is_a_retryable_error")
    else {
        return;
    };
    let password = cluster.password().to_owned();
    let (cluster, stopped) = with_cluster(cluster, |c| c.stop()).await;
    stopped.unwrap();

    let e = bounded(
        "connect to a stopped server",
        PostgresStore::connect(&cluster.url(), options("late")),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.is_retryable(), "{e}");
    assert!(
        e.to_string()
            .contains(&format!("127.0.0.1:{}", cluster.port())),
        "the error names the server: {e}"
    );
    assert!(!format!("{e} {e:?}").contains(&password), "{e:?}");

    // A server that accepts TCP but never answers: the connect timeout ends it.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!(
        "postgres://postgres:{password}@127.0.0.1:{}/postgres",
        silent.local_addr().unwrap().port()
    );
    let e = bounded(
        "connect to a silent server",
        PostgresStore::connect(
            &silent_url,
            PostgresOptions {
                connect_timeout: Duration::from_millis(500),
                ..options("late")
            },
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.is_retryable(), "{e}");
    assert!(e.message().contains("connect timeout"), "{e}");
    assert!(!format!("{e} {e:?}").contains(&password), "{e:?}");
    drop(silent);

    let (cluster, started) = with_cluster(cluster, |c| c.start_again()).await;
    started.unwrap();
    assert_eq!(
        cluster
            .psql("SELECT count(*) FROM pg_namespace WHERE nspname = 'late'")
            .unwrap(),
        "0",
        "a failed connect created nothing"
    );
    let store = connect(&cluster, "late").await;
    store
        .put(record("a", "http://a:1", "s"), PutMode::Create)
        .await
        .unwrap();
}

/// (a) `pg_ctl restart -m immediate` in the middle of four writers: every
/// acknowledged write is there afterwards, writes during the outage fail
/// with retryable errors (or succeed), and the same store instance works
/// again without being reopened.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_an_immediate_restart() {
    const WRITERS: usize = 4;
    /// Acknowledged writes per writer.
    const PER_WRITER: usize = 120;
    /// Failed writes per writer before it gives up (each followed by a 20 ms pause).
    const MAX_FAILURES: usize = 2000;
    let Some(cluster) =
        PgCluster::start_or_skip("acknowledged_writes_survive_an_immediate_restart")
    else {
        return;
    };
    let password = cluster.password().to_owned();
    let store = connect(&cluster, "crash").await;
    let deadline = Instant::now() + PATIENCE;
    let acked_total = Arc::new(AtomicUsize::new(0));
    let restarted = Arc::new(AtomicBool::new(false));

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            let acked_total = Arc::clone(&acked_total);
            let restarted = Arc::clone(&restarted);
            let password = password.clone();
            tokio::spawn(async move {
                let mut acked = Vec::new();
                let mut failed = Vec::new();
                let mut after_restart = 0usize;
                // Bounded by successes, failures and time: however long the
                // outage, the writer keeps going until the server is back.
                let mut n = 0usize;
                while acked.len() < PER_WRITER
                    && failed.len() < MAX_FAILURES
                    && Instant::now() < deadline
                {
                    n += 1;
                    let id = format!("w{w}-{n:05}");
                    let was_restarted = restarted.load(Ordering::SeqCst);
                    match store
                        .put(record(&id, "http://x:1", &format!("secret-{id}")), PutMode::Create)
                        .await
                    {
                        Ok(revision) => {
                            acked.push((id, revision));
                            acked_total.fetch_add(1, Ordering::SeqCst);
                            if was_restarted {
                                after_restart += 1;
                            }
                        }
                        Err(e) => {
                            assert!(
                                e.is_retryable()
                                    && matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
                                "writer {w}: a write during the outage failed with a non-retryable {} error: {e}",
                                e.kind()
                            );
                            assert!(!format!("{e} {e:?}").contains(&password), "{e:?}");
                            if failed.is_empty() {
                                eprintln!("writer {w}: first failure during the outage: {e}");
                            }
                            failed.push(id);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
                (acked, failed, after_restart)
            })
        })
        .collect();

    // Restart once the load is under way.
    eventually("the first writes", || {
        acked_total.load(Ordering::SeqCst) >= 40
    })
    .await;
    let pid_before = cluster.pid();
    let (cluster, restart) = with_cluster(cluster, |c| c.restart_immediate()).await;
    restart.unwrap();
    restarted.store(true, Ordering::SeqCst);
    assert_ne!(cluster.pid(), pid_before, "the server was restarted");

    let mut acked = Vec::new();
    let mut failed = Vec::new();
    let mut after_restart = 0;
    for writer in writers {
        let (a, f, n) = bounded("a writer", writer).await.unwrap();
        acked.extend(a);
        failed.extend(f);
        after_restart += n;
    }
    eprintln!(
        "restart under load: {} writes acknowledged ({after_restart} after the restart), {} failed during the outage",
        acked.len(),
        failed.len()
    );
    assert!(
        after_restart > 0,
        "the store did not recover after the restart (no write succeeded)"
    );

    // Every acknowledged write is there, at its revision, through the same
    // store and through a new one.
    let fresh = connect(&cluster, "crash").await;
    for reader in [&store, &fresh] {
        let listing = reader.list(&ListFilter::all()).await.unwrap();
        let present: std::collections::BTreeMap<&str, u64> = listing
            .records
            .iter()
            .map(|r| (r.record.id.as_str(), r.revision))
            .collect();
        for (id, revision) in &acked {
            assert_eq!(
                present.get(id.as_str()),
                Some(revision),
                "acknowledged write {id} at revision {revision} is missing after the restart"
            );
        }
        // Failed writes may or may not have committed, but nothing else appeared.
        assert!(present.len() <= acked.len() + failed.len());
        assert!(present.keys().all(|id| id.starts_with('w')));
    }
    let stored = store.get(&acked[0].0).await.unwrap().unwrap();
    assert_eq!(
        stored.record.services[0].credentials[0].configuration["AWS_SECRET_ACCESS_KEY"].expose(),
        format!("secret-{}", acked[0].0)
    );
}

/// (b) A watcher follows a writer while the listening backend is killed
/// (`pg_terminate_backend`) and while the server restarts: it receives every
/// revision exactly once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn watch_delivers_every_revision_once_across_reconnects() {
    const WRITES: usize = 300;
    let Some(cluster) =
        PgCluster::start_or_skip("watch_delivers_every_revision_once_across_reconnects")
    else {
        return;
    };
    let writer_store = connect(&cluster, "follow").await;
    let watcher_store = connect(&cluster, "follow").await;
    let since = watcher_store
        .list(&ListFilter::all())
        .await
        .unwrap()
        .revision;
    let mut stream = watcher_store.watch(since).await.unwrap();

    let received = Arc::new(Mutex::new(Vec::<(u64, String)>::new()));
    let collector = {
        let received = Arc::clone(&received);
        tokio::spawn(async move {
            while let Some(item) = stream.next().await {
                let event = item.unwrap_or_else(|e| {
                    panic!("the watch yielded an error across a reconnect: {e}")
                });
                if let Change::Put(stored) = &event.change {
                    assert_eq!(stored.revision, event.revision);
                    assert_eq!(stored.record.id, event.id);
                } else {
                    panic!("unexpected delete of {}", event.id);
                }
                received.lock().unwrap().push((event.revision, event.id));
            }
        })
    };
    // The listener is up before the faults begin.
    eventually("the listening connection", || {
        watcher_store.watch_connections() >= 1
    })
    .await;

    let progress = Arc::new(AtomicUsize::new(0));
    let writer = {
        let store = writer_store.clone();
        let progress = Arc::clone(&progress);
        tokio::spawn(async move {
            let deadline = Instant::now() + PATIENCE;
            let mut failures = 0usize;
            for n in 0..WRITES {
                if Instant::now() >= deadline {
                    break;
                }
                let id = format!("f-{n:04}");
                match store
                    .put(record(&id, "http://x:1", "s"), PutMode::Create)
                    .await
                {
                    Ok(_) => {}
                    Err(e) => {
                        assert!(e.is_retryable(), "a write failed for good: {e}");
                        failures += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                progress.store(n + 1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            failures
        })
    };

    // Fault 1: kill the listening backend.
    eventually("100 writes", || progress.load(Ordering::SeqCst) >= 100).await;
    let killed = cluster
        .psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'inferlink-listener'")
        .unwrap();
    assert_eq!(killed, "1", "exactly one listening backend");
    eventually("the listener reconnects", || {
        watcher_store.watch_connections() >= 2
    })
    .await;

    // Fault 2: restart the server under the writer.
    eventually("200 writes", || progress.load(Ordering::SeqCst) >= 200).await;
    let (cluster, restart) = with_cluster(cluster, |c| c.restart_immediate()).await;
    restart.unwrap();

    let failures = bounded("the writer", writer).await.unwrap();
    let head = writer_store
        .list(&ListFilter::all())
        .await
        .unwrap()
        .revision;
    eventually("the watcher catches up", || {
        received
            .lock()
            .unwrap()
            .last()
            .is_some_and(|(r, _)| *r >= head)
    })
    .await;
    eventually("the listener reconnects after the restart", || {
        watcher_store.watch_connections() >= 3
    })
    .await;

    let got: Vec<u64> = received.lock().unwrap().iter().map(|(r, _)| *r).collect();
    let want: Vec<u64> = (since + 1..=head).collect();
    eprintln!(
        "watch across reconnects: {} events, head {head}, {failures} writes failed during the outage, {} listener connections",
        got.len(),
        watcher_store.watch_connections()
    );
    assert!(got.len() >= WRITES - failures, "{} events", got.len());
    assert_eq!(
        got, want,
        "the watcher must see every revision exactly once, in order"
    );
    // Each event names the record stored at that revision.
    let listing = writer_store.list(&ListFilter::all()).await.unwrap();
    let by_revision: std::collections::BTreeMap<u64, String> = listing
        .records
        .iter()
        .map(|r| (r.revision, r.record.id.clone()))
        .collect();
    for (revision, id) in received.lock().unwrap().iter() {
        assert_eq!(by_revision.get(revision), Some(id));
    }
    collector.abort();
    drop(cluster);
}

/// A corrupt stored body is a storage error naming the record (never its
/// values); an overwrite repairs it and a delete removes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_corrupt_body_is_a_storage_error() {
    let Some(cluster) = PgCluster::start_or_skip("a_corrupt_body_is_a_storage_error") else {
        return;
    };
    let store = connect(&cluster, "corrupt").await;
    store
        .put(record("bad", "http://bad:1", "s"), PutMode::Create)
        .await
        .unwrap();
    cluster
        .psql(r#"UPDATE corrupt.records SET body = '{"id":"bad","services":[{"id":"s","credentials":[{"id":"c","scope":"planted-secret"}]}]}' WHERE id = 'bad'"#)
        .unwrap();
    let e = store.get("bad").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Storage, "{e}");
    assert_eq!(e.context("record"), Some("bad"));
    assert!(e.message().contains("corrupt"), "{e}");
    assert!(!format!("{e} {e:?}").contains("planted-secret"), "{e:?}");
    let e = store.list(&ListFilter::all()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Storage, "{e}");

    store
        .put(record("bad", "http://fixed:1", "s2"), PutMode::Overwrite)
        .await
        .unwrap();
    assert_eq!(
        store.get("bad").await.unwrap().unwrap().record.services[0].endpoints[0].url,
        "http://fixed:1"
    );
    cluster
        .psql("UPDATE corrupt.records SET body = 'garbage' WHERE id = 'bad'")
        .unwrap();
    store.delete("bad", None).await.unwrap();
    assert!(store.get("bad").await.unwrap().is_none());
}

/// TLS: with the right CA the connection is encrypted and verified (options
/// or `sslmode=verify-full&sslrootcert=` in the URL); an untrusted server
/// certificate is a configuration error under `require` and `prefer` alike
/// (never a silent fallback); `disable` stays plain.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tls_is_verified_against_the_given_ca() {
    let Some(cluster) = PgCluster::start_or_skip("tls_is_verified_against_the_given_ca") else {
        return;
    };
    let (cluster, ca) = with_cluster(cluster, |c| c.enable_tls()).await;
    let ca = ca.unwrap_or_else(|e| panic!("cannot turn TLS on in the test cluster: {e}"));
    let ssl_of = |app: &str| {
        cluster
            .psql(&format!(
                "SELECT string_agg(DISTINCT s.ssl::text, ',') FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = '{app}'"
            ))
            .unwrap()
    };

    let store = PostgresStore::connect(
        &format!("{}?application_name=tls-options", cluster.url()),
        PostgresOptions {
            tls_mode: Some(TlsMode::Require),
            tls_ca_file: Some(ca.clone()),
            ..options("tls")
        },
    )
    .await
    .unwrap_or_else(|e| panic!("TLS with the test CA failed: {e}"));
    store
        .put(record("a", "http://a:1", "s"), PutMode::Create)
        .await
        .unwrap();
    assert_eq!(ssl_of("tls-options"), "true", "pooled connections use TLS");

    let url = format!(
        "{}?sslmode=verify-full&sslrootcert={}&application_name=tls-url",
        cluster.url(),
        ca.display()
    );
    let by_url = PostgresStore::connect(&url, options("tls"))
        .await
        .unwrap_or_else(|e| panic!("TLS from the URL's parameters failed: {e}"));
    assert!(by_url.get("a").await.unwrap().is_some());
    assert_eq!(ssl_of("tls-url"), "true");
    let mut watch = by_url.watch(0).await.unwrap();
    let event = bounded("a watch over TLS", watch.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event.id, "a");
    eventually("the listening connection uses TLS", || {
        ssl_of("inferlink-listener") == "true"
    })
    .await;

    for mode in [TlsMode::Require, TlsMode::Prefer] {
        let e = PostgresStore::connect(
            &cluster.url(),
            PostgresOptions {
                tls_mode: Some(mode),
                ..options("tls")
            },
        )
        .await
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{mode:?}: {e}");
        assert!(!e.is_retryable(), "{e}");
        assert!(e.message().contains("TLS handshake"), "{e}");
        assert!(!format!("{e} {e:?}").contains(cluster.password()), "{e:?}");
    }

    let plain = PostgresStore::connect(
        &format!("{}?application_name=plain", cluster.url()),
        PostgresOptions {
            tls_mode: Some(TlsMode::Disable),
            ..options("tls")
        },
    )
    .await
    .unwrap();
    assert!(plain.get("a").await.unwrap().is_some());
    assert_eq!(ssl_of("plain"), "false");
}

/// Credential values are sealed in the database: a planted secret is nowhere in
/// a dump of the schema; without a key nothing with secrets is written; the
/// wrong key cannot read them and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_values_are_encrypted_at_rest() {
    let Some(cluster) = PgCluster::start_or_skip("credential_values_are_encrypted_at_rest") else {
        return;
    };
    let planted = "s3cr3t-PLANTED-pg-7f3a9c";
    let store = connect(&cluster, "enc").await;
    store
        .put(
            record("enc-a", "http://minio:9000", planted),
            PutMode::Create,
        )
        .await
        .unwrap();
    // Read back through the store: the value is there, in clear, for the caller.
    let stored = store.get("enc-a").await.unwrap().unwrap();
    let value =
        stored.record.services[0].credentials[0].configuration["AWS_SECRET_ACCESS_KEY"].expose();
    assert_eq!(value, planted, "the store returns the clear value");

    // The table dump (every column of every table in the schema) never holds it.
    let dump = ["enc.records", "enc.data_keys", "enc.changes"]
        .map(|table| cluster.psql(&format!("SELECT * FROM {table}")).unwrap())
        .join("\n");
    assert!(
        dump.contains("inferlink:enc:v1:"),
        "sealed values are stored: {dump}"
    );
    assert!(
        !dump.contains(planted),
        "a planted secret leaked into the table dump"
    );
    let out = cluster.pg_dump(&["--schema=enc", "--data-only"]).unwrap();
    assert!(
        out.contains("inferlink:enc:v1:"),
        "pg_dump shows the sealed values"
    );
    assert!(
        !out.contains(planted),
        "a planted secret leaked into pg_dump"
    );

    // No key: records without secrets work, records with them are refused.
    let keyless = PostgresStore::connect(
        &cluster.url(),
        PostgresOptions {
            key_provider: None,
            ..options("enc")
        },
    )
    .await
    .unwrap();
    let e = keyless
        .put(
            record("enc-b", "http://minio:9000", planted),
            PutMode::Create,
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.message().contains("inferlink keys init"), "{e}");
    assert!(
        keyless.get("enc-b").await.unwrap().is_none(),
        "nothing written"
    );
    let e = keyless.get("enc-a").await.unwrap_err();
    assert!(!e.to_string().contains(planted), "{e}");

    // The wrong master key cannot unwrap the data key; nothing changes.
    let before = cluster
        .psql("SELECT id, revision, body FROM enc.records ORDER BY id")
        .unwrap();
    let wrong = PostgresStore::connect(
        &cluster.url(),
        PostgresOptions {
            key_provider: Some(Arc::new(inferlink::crypto::StaticKeyProvider::new(
                other_test_master_key(),
            ))),
            ..options("enc")
        },
    )
    .await
    .unwrap();
    let e = wrong.get("enc-a").await.unwrap_err();
    assert!(!e.to_string().contains(planted), "{e}");
    assert!(
        wrong
            .put(
                record("enc-a", "http://elsewhere:9000", "new"),
                PutMode::Overwrite
            )
            .await
            .is_err(),
        "a write under the wrong key fails"
    );
    let after = cluster
        .psql("SELECT id, revision, body FROM enc.records ORDER BY id")
        .unwrap();
    assert_eq!(before, after, "the wrong key changed nothing");
}

/// A hostile database writer (issue 14): a row whose endpoint was changed by
/// `UPDATE` (no master key) is refused with an error naming the record on
/// every read path, as is one stripped of its tag or with an invalid id; a
/// host without the key cannot write to a keyed store.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_row_changed_by_a_writer_without_the_key_is_refused() {
    let Some(cluster) =
        PgCluster::start_or_skip("a_row_changed_by_a_writer_without_the_key_is_refused")
    else {
        return;
    };
    let store = connect(&cluster, "hostile").await;
    store
        .put(
            record("victim", "http://127.0.0.1:9000", "s3cr3t-PLANTED"),
            PutMode::Create,
        )
        .await
        .unwrap();
    store
        .put(
            record("bystander", "http://127.0.0.1:9001", "other"),
            PutMode::Create,
        )
        .await
        .unwrap();
    let refused_everywhere = |store: PostgresStore, id: &'static str, why: &'static str| async move {
        let get = store.get(id).await.unwrap_err();
        let list = store.list(&ListFilter::all()).await.unwrap_err();
        let mut stream = store.watch(0).await.unwrap();
        let watched = bounded("the watch", stream.next())
            .await
            .unwrap()
            .unwrap_err();
        let opened = Registry::open(store.clone()).await.unwrap_err();
        for (path, e) in [
            ("get", get),
            ("list", list),
            ("watch", watched),
            ("registry", opened),
        ] {
            assert_eq!(e.kind(), ErrorKind::Storage, "{path}: {e}");
            assert_eq!(e.context("record"), Some(id), "{path}: {e}");
            assert!(e.message().contains(why), "{path}: {e}");
            assert!(!e.to_string().contains("s3cr3t-PLANTED"), "{path}: {e}");
        }
    };
    // The endpoint moved to the attacker: refused.
    cluster
        .psql("UPDATE hostile.records SET body = replace(body, '127.0.0.1:9000', '127.0.0.1:9') WHERE id = 'victim'")
        .unwrap();
    refused_everywhere(store.clone(), "victim", "does not match its contents").await;
    // A fresh host with the key refuses it too; the bystander is fine.
    let fresh = connect(&cluster, "hostile").await;
    refused_everywhere(fresh.clone(), "victim", "integrity check").await;
    assert!(fresh.get("bystander").await.unwrap().is_some());
    // Stripping the tag does not help.
    cluster
        .psql("UPDATE hostile.records SET mac = NULL WHERE id = 'victim'")
        .unwrap();
    refused_everywhere(fresh.clone(), "victim", "has no integrity tag").await;
    // An authentic overwrite repairs it.
    fresh
        .put(
            record("victim", "http://127.0.0.1:9000", "s3cr3t-PLANTED"),
            PutMode::Overwrite,
        )
        .await
        .unwrap();
    assert_eq!(
        fresh.get("victim").await.unwrap().unwrap().record.services[0].endpoints[0].url,
        "http://127.0.0.1:9000"
    );
    // A keyless host can neither write nor, for records with secrets, read.
    let keyless = PostgresStore::connect(
        &cluster.url(),
        PostgresOptions {
            key_provider: None,
            ..options("hostile")
        },
    )
    .await
    .unwrap();
    let plain = inferlink::format::parse_records("id: plain\nservices:\n  - id: ui\n")
        .unwrap()
        .remove(0);
    let e = keyless.put(plain, PutMode::Create).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(
        e.message().contains("protected by an encryption key"),
        "{e}"
    );
    // A row with an id that is not a record id: refused by validation on read,
    // even by a host that cannot check tags.
    let plain = inferlink::format::parse_records("id: plain\nservices:\n  - id: ui\n")
        .unwrap()
        .remove(0);
    fresh.put(plain, PutMode::Create).await.unwrap();
    cluster
        .psql(
            r#"UPDATE hostile.records SET id = '../../x', body = replace(body, '"id":"plain"', '"id":"../../x"') WHERE id = 'plain';
               UPDATE hostile.changes SET record_id = '../../x' WHERE record_id = 'plain'"#,
        )
        .unwrap();
    let e = keyless.list(&ListFilter::all()).await.unwrap_err();
    assert_eq!(e.context("record"), Some("../../x"), "{e}");
    assert!(e.message().contains("fails validation at id"), "{e}");
}

/// A schema written before integrity tags (schema 2: a data key with a
/// 16-hex-digit id, no `mac` column) migrates on the first keyed operation:
/// values are sealed again under a new integrity key and every record is
/// tagged, revisions unchanged; from then on an untagged row is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_schema_written_before_integrity_tags_migrates() {
    let Some(cluster) = PgCluster::start_or_skip("a_schema_written_before_integrity_tags_migrates")
    else {
        return;
    };
    // The tables of schema 2, exactly: this release's, without step 3.
    drop(connect(&cluster, "old").await);
    cluster
        .psql("ALTER TABLE old.records DROP COLUMN mac; DELETE FROM old.schema_version WHERE version = 3")
        .unwrap();
    // A data key and bodies as the previous release wrote them.
    let master = inferlink_testkit::keys::test_master_key();
    let key_id = "0123456789abcdef";
    let key_bytes = [42u8; 32];
    let wrapped = master.wrap(&key_bytes, key_id).unwrap();
    let keys = inferlink::crypto::Keyring::new(
        inferlink::crypto::DataKey::from_bytes(key_id, &key_bytes).unwrap(),
    );
    let hex: String = wrapped.bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut statements = format!(
        "INSERT INTO old.data_keys (id, kek_id, wrapped, active) VALUES ('{key_id}', '{}', '\\x{hex}'::bytea, true);",
        wrapped.kek_id
    );
    for (i, id) in ["a", "b"].iter().enumerate() {
        let body = inferlink::crypto::seal_record_body(
            &record(id, "http://127.0.0.1:9000", "s3cr3t-OLD"),
            Some(&keys),
        )
        .unwrap()
        .replace('\'', "''");
        let revision = i + 1;
        statements.push_str(&format!(
            "INSERT INTO old.records (id, revision, body) VALUES ('{id}', {revision}, '{body}');
             INSERT INTO old.changes (revision, record_id, deleted) VALUES ({revision}, '{id}', false);"
        ));
    }
    statements.push_str("UPDATE old.head SET revision = 2 WHERE id = 1;");
    cluster.psql(&statements).unwrap();

    let store = connect(&cluster, "old").await;
    let listing = store.list(&ListFilter::all()).await.unwrap();
    assert_eq!(listing.records.len(), 2);
    assert_eq!(listing.revision, 2);
    assert_eq!(listing.records[1].revision, 2, "revisions do not change");
    assert_eq!(
        listing.records[0].record.services[0].credentials[0].configuration["AWS_SECRET_ACCESS_KEY"]
            .expose(),
        "s3cr3t-OLD"
    );
    assert_eq!(
        cluster
            .psql("SELECT string_agg(version::text, ',' ORDER BY version) FROM old.schema_version")
            .unwrap(),
        "1,2,3"
    );
    assert_eq!(
        cluster
            .psql("SELECT count(*) FROM old.records WHERE mac IS NULL")
            .unwrap(),
        "0"
    );
    let ids = cluster
        .psql("SELECT string_agg(id, ',') FROM old.data_keys")
        .unwrap();
    assert!(ids.starts_with("i-") && !ids.contains(','), "{ids}");
    // Another host (and a restart) reads the migrated store; an untagged row is now refused.
    cluster
        .psql("UPDATE old.records SET mac = NULL WHERE id = 'b'")
        .unwrap();
    let other = connect(&cluster, "old").await;
    assert!(other.get("a").await.unwrap().is_some());
    let e = other.get("b").await.unwrap_err();
    assert_eq!(e.context("record"), Some("b"), "{e}");
    assert!(e.message().contains("has no integrity tag"), "{e}");
}
