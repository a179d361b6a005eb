//! The [`RegistryStore`] conformance suite.
//!
//! Run everything with [`run_store_conformance`], or single checks by name.
//! Every check uses record ids (and product, zone, resource and category
//! names) with its own unique prefix, so checks can share one store, even a
//! store that already holds other records, and a suite can run twice on the
//! same store. Checks that watch the store assume nobody else writes records
//! with their prefix meanwhile; other writers are tolerated.
//!
//! Durable stores also run [`check_reopen_durability`] with a function that
//! opens a fresh instance over the same storage. Stores that several
//! instances (connections, processes, hosts) can share should also run the
//! `_across` variants with several instances over the same storage:
//! [`check_concurrent_compare_and_set_across`] (compare-and-set between
//! instances) and [`check_watch_burst_across`] (a watch on one instance sees
//! the others' commits, each once, in order).
//!
//! Two checks are proofs under load: [`check_concurrent_compare_and_set`]
//! (8 writers × 200 read-modify-write updates of one record: exactly 1600
//! applied, every failed attempt a `Conflict`; the counts come back in a
//! [`CasReport`]) and [`check_watch_burst`] (a watcher opened before 240
//! concurrent writes receives each revision exactly once, in order).
//!
//! ```no_run
//! # async fn demo() {
//! let store = inferlink::MemoryStore::new();
//! inferlink_testkit::store::run_store_conformance(&store).await;
//! # }
//! ```
//!
//! The checks need a Tokio runtime with the time driver (`#[tokio::test]`
//! has one). Every stream read and store call is bounded by a timeout, so a
//! broken store fails the check instead of hanging it.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use futures_util::future::join_all;
use inferlink::{
    Change, ChangeEvent, ChangeStream, Credentials, Endpoint, Error, ErrorKind, ExtensionRecord,
    HIDDEN, ListFilter, Listing, PutMode, RegistryStore, Result, Revision, Secret, Service,
    StoredRecord, WriteOp,
};

/// How long one read of a watch stream may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one store call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// The configuration key of the counter used by the concurrency check.
const COUNTER: &str = "COUNTER";

/// Runs every store-agnostic check against `store`, one after another, and
/// returns what the compare-and-set proof counted (also printed to stderr).
///
/// Does not include [`check_reopen_durability`], which needs a way to reopen
/// the store.
pub async fn run_store_conformance(store: &dyn RegistryStore) -> ConformanceReport {
    check_create_if_absent(store).await;
    check_compare_and_set(store).await;
    let cas = check_concurrent_compare_and_set(store).await;
    eprintln!("store conformance: compare-and-set: {cas}");
    check_get_and_list(store).await;
    check_delete(store).await;
    check_hidden_secrets(store).await;
    check_invalid_records(store).await;
    check_put_all(store).await;
    check_write_all(store).await;
    check_watch_after_write(store).await;
    check_watch_replay(store).await;
    check_watch_lagging(store).await;
    check_watch_burst(store).await;
    ConformanceReport { cas }
}

/// `PutMode::Create` writes only when the id is free; a second create is
/// [`ErrorKind::AlreadyExists`] and leaves the stored record unchanged.
pub async fn check_create_if_absent(store: &dyn RegistryStore) {
    let p = prefix("create");
    let id = format!("{p}rec");
    let first = sample(&p, &id, "first-secret");
    let rev = ok("first create", store.put(first.clone(), PutMode::Create)).await;
    assert!(rev > 0, "a write's revision must be positive, got {rev}");

    let mut second = sample(&p, &id, "second-secret");
    second.description = "second".into();
    let e = fails(
        "second create of the same id",
        store.put(second, PutMode::Create),
        ErrorKind::AlreadyExists,
    )
    .await;
    assert!(e.message().contains(&id), "error names the id: {e}");

    let stored = get_some(store, &id).await;
    assert_eq!(stored.revision, rev, "a failed create changes nothing");
    assert_eq!(stored.record, first, "a failed create changes nothing");
    assert_eq!(secret_of(&stored.record), "first-secret");
}

/// Compare-and-set: `Update(rev)` succeeds only at the current revision;
/// `Update` of a missing id is [`ErrorKind::NotFound`]; `Overwrite` writes
/// either way; revisions increase strictly across records.
pub async fn check_compare_and_set(store: &dyn RegistryStore) {
    let p = prefix("cas");
    let a = format!("{p}a");
    let r1 = ok("create", store.put(sample(&p, &a, "s"), PutMode::Create)).await;

    let mut edited = sample(&p, &a, "s");
    edited.description = "edited once".into();
    let r2 = ok(
        "update at the current revision",
        store.put(edited.clone(), PutMode::Update(r1)),
    )
    .await;
    assert!(r2 > r1, "update revision {r2} must exceed {r1}");
    let stored = get_some(store, &a).await;
    assert_eq!((stored.revision, &stored.record), (r2, &edited));

    let mut stale = sample(&p, &a, "s");
    stale.description = "stale edit".into();
    let e = fails(
        "update at a stale revision",
        store.put(stale, PutMode::Update(r1)),
        ErrorKind::Conflict,
    )
    .await;
    assert!(
        !e.is_retryable(),
        "a conflict needs a fresh read, not a blind retry"
    );
    fails(
        "update at revision 0",
        store.put(sample(&p, &a, "s"), PutMode::Update(0)),
        ErrorKind::Conflict,
    )
    .await;
    let stored = get_some(store, &a).await;
    assert_eq!(
        (stored.revision, &stored.record),
        (r2, &edited),
        "a failed update changes nothing"
    );

    let missing = format!("{p}missing");
    fails(
        "update of a missing id",
        store.put(sample(&p, &missing, "s"), PutMode::Update(r2)),
        ErrorKind::NotFound,
    )
    .await;
    assert!(
        get(store, &missing).await.is_none(),
        "a failed update creates nothing"
    );

    let c = format!("{p}c");
    let rc = ok(
        "overwrite of a missing id",
        store.put(sample(&p, &c, "s"), PutMode::Overwrite),
    )
    .await;
    assert!(
        rc > r2,
        "revisions increase across records: {rc} after {r2}"
    );
    assert_eq!(get_some(store, &c).await.revision, rc);

    let mut replaced = sample(&p, &a, "s");
    replaced.description = "overwritten".into();
    let r3 = ok(
        "overwrite of an existing id",
        store.put(replaced.clone(), PutMode::Overwrite),
    )
    .await;
    assert!(
        r3 > rc,
        "revisions increase across records: {r3} after {rc}"
    );
    let stored = get_some(store, &a).await;
    assert_eq!((stored.revision, &stored.record), (r3, &replaced));

    let b = format!("{p}b");
    let rb = ok("create", store.put(sample(&p, &b, "s"), PutMode::Create)).await;
    assert!(
        rb > r3,
        "revisions increase across records: {rb} after {r3}"
    );
}

/// What [`check_concurrent_compare_and_set`] observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CasReport {
    /// Concurrent writers.
    pub writers: usize,
    /// Successful read-modify-write updates (always `writers` × updates each).
    pub updates: usize,
    /// Failed attempts, every one an [`ErrorKind::Conflict`] that was re-read and retried.
    pub conflicts: usize,
    /// Conflicts per writer.
    pub conflicts_per_writer: Vec<usize>,
    /// How many distinct store handles the writers used.
    pub handles: usize,
}

impl std::fmt::Display for CasReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} writers on {} handle(s): {} updates, {} conflicts retried (per writer: {:?})",
            self.writers, self.handles, self.updates, self.conflicts, self.conflicts_per_writer
        )
    }
}

/// What [`run_store_conformance`] measured along the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConformanceReport {
    /// The compare-and-set proof.
    pub cas: CasReport,
}

/// Concurrent writers updating one record.
const CAS_WRITERS: usize = 8;
/// Read-modify-write updates per writer.
const CAS_UPDATES: usize = 200;
/// Attempts one update may take before the check gives up (no progress).
const CAS_MAX_ATTEMPTS: usize = 2_000;
/// How long the whole compare-and-set proof may take.
const CAS_DEADLINE: Duration = Duration::from_secs(180);

/// Eight concurrent writers each add 1 to a counter in one record 200 times
/// with read-modify-write (`get`, edit, `put(Update(rev))`), re-reading and
/// retrying on conflict: the counter ends at exactly 1600, every successful
/// write got its own revision, and every failed attempt was an
/// [`ErrorKind::Conflict`]. Returns the counts.
///
/// Bounded: at most 2000 attempts per update and 180 s in all.
pub async fn check_concurrent_compare_and_set(store: &dyn RegistryStore) -> CasReport {
    check_concurrent_compare_and_set_across(&[store]).await
}

/// [`check_concurrent_compare_and_set`] with writer `w` using
/// `stores[w % stores.len()]`: pass several instances over the same storage
/// (e.g. `SqliteStore`s opened on one file) to prove compare-and-set across
/// connections.
pub async fn check_concurrent_compare_and_set_across(stores: &[&dyn RegistryStore]) -> CasReport {
    assert!(!stores.is_empty(), "give at least one store handle");
    let store = stores[0];
    let p = prefix("concurrent");
    let id = format!("{p}counter");
    let mut record = sample(&p, &id, "s");
    record.configuration.insert(COUNTER.into(), "0".into());
    ok("create", store.put(record, PutMode::Create)).await;

    let id = id.as_str();
    let worker = |w: usize| async move {
        let store = stores[w % stores.len()];
        let mut conflicts = 0usize;
        let mut revisions = Vec::with_capacity(CAS_UPDATES);
        for update in 0..CAS_UPDATES {
            let mut attempts = 0usize;
            loop {
                attempts += 1;
                assert!(
                    attempts <= CAS_MAX_ATTEMPTS,
                    "writer {w}: update {update} made no progress in {CAS_MAX_ATTEMPTS} attempts"
                );
                let current = get_some(store, id).await;
                let value = counter(&current.record);
                let mut next = current.record.clone();
                next.configuration
                    .insert(COUNTER.into(), (value + 1).to_string());
                // Let the other writers interleave between the read and the write.
                tokio::task::yield_now().await;
                match call(store.put(next, PutMode::Update(current.revision))).await {
                    Ok(rev) => {
                        assert!(
                            rev > current.revision,
                            "writer {w}: revision went backwards"
                        );
                        revisions.push(rev);
                        break;
                    }
                    Err(e) if e.kind() == ErrorKind::Conflict => conflicts += 1,
                    Err(e) => panic!(
                        "writer {w}: a concurrent compare-and-set failed with {} instead of conflict: {e}",
                        e.kind()
                    ),
                }
            }
        }
        (conflicts, revisions)
    };
    let results = match tokio::time::timeout(CAS_DEADLINE, join_all((0..CAS_WRITERS).map(worker)))
        .await
    {
        Ok(results) => results,
        Err(_) => panic!(
            "{CAS_WRITERS} writers x {CAS_UPDATES} compare-and-set updates did not finish within {CAS_DEADLINE:?}"
        ),
    };
    let conflicts_per_writer: Vec<usize> = results.iter().map(|(c, _)| *c).collect();
    let mut revisions: Vec<Revision> = results.into_iter().flat_map(|(_, r)| r).collect();
    let updates = revisions.len();
    revisions.sort_unstable();
    revisions.dedup();
    assert_eq!(
        revisions.len(),
        updates,
        "two successful updates reported the same revision"
    );
    let stored = get_some(store, id).await;
    assert_eq!(
        counter(&stored.record),
        (CAS_WRITERS * CAS_UPDATES) as u64,
        "lost updates ({} conflicts were retried)",
        conflicts_per_writer.iter().sum::<usize>()
    );
    assert_eq!(updates, CAS_WRITERS * CAS_UPDATES);
    assert_eq!(
        Some(&stored.revision),
        revisions.last(),
        "the record is at the revision of the last successful update"
    );
    CasReport {
        writers: CAS_WRITERS,
        updates,
        conflicts: conflicts_per_writer.iter().sum(),
        conflicts_per_writer,
        handles: stores.len().min(CAS_WRITERS),
    }
}

/// `get` returns exactly what was written; `list` is sorted by id, applies
/// every [`ListFilter`] field (a service filter matches when one service
/// passes both service fields), and its revision covers every listed record.
pub async fn check_get_and_list(store: &dyn RegistryStore) {
    let p = prefix("list");
    let name = |s: &str| format!("{p}{s}");
    let make = |id: &str, product: &str, zone: &str, services: &[(&str, &str)]| {
        let mut r = sample(&p, &name(id), "s");
        r.product = name(product);
        r.zone = name(zone);
        r.services = services
            .iter()
            .enumerate()
            .map(|(i, (resource, category))| Service {
                id: format!("svc{i}"),
                resource: name(resource),
                category: name(category),
                ..r.services[0].clone()
            })
            .collect();
        r
    };
    let a = make("a", "prod1", "zone1", &[("s3", "storage")]);
    let b = make(
        "b",
        "prod1",
        "zone2",
        &[("tracking", "models"), ("s3", "storage")],
    );
    let c = make("c", "prod2", "zone1", &[("serving", "predict")]);
    let mut last = 0;
    // Written out of id order on purpose.
    for r in [&c, &a, &b] {
        last = ok("create", store.put(r.clone(), PutMode::Create)).await;
    }

    let got = get_some(store, &a.id).await;
    assert_eq!(got.record, a, "get returns the record as written");
    assert!(get(store, &name("missing")).await.is_none());

    let all = list(store, &ListFilter::all()).await;
    assert!(
        all.records
            .windows(2)
            .all(|w| w[0].record.id < w[1].record.id),
        "list is sorted by id with no duplicates"
    );
    assert_eq!(ours(&all, &p), [name("a"), name("b"), name("c")]);
    assert!(
        all.revision >= last,
        "listing revision {} < last write {last}",
        all.revision
    );
    for r in &all.records {
        assert!(
            all.revision >= r.revision,
            "listing revision {} < revision {} of {}",
            all.revision,
            r.revision,
            r.record.id
        );
    }

    let filter = |product: Option<&str>,
                  zone: Option<&str>,
                  resource: Option<&str>,
                  category: Option<&str>| ListFilter {
        product: product.map(name),
        zone: zone.map(name),
        service_resource: resource.map(name),
        service_category: category.map(name),
    };
    let cases: [(ListFilter, &[&str]); 10] = [
        (filter(Some("prod1"), None, None, None), &["a", "b"]),
        (filter(Some("prod2"), None, None, None), &["c"]),
        (filter(None, Some("zone1"), None, None), &["a", "c"]),
        (filter(Some("prod1"), Some("zone1"), None, None), &["a"]),
        (filter(None, None, Some("s3"), None), &["a", "b"]),
        (filter(None, None, Some("tracking"), None), &["b"]),
        (filter(None, None, None, Some("predict")), &["c"]),
        (filter(None, None, Some("tracking"), Some("models")), &["b"]),
        // Both service fields must hold for the same service.
        (filter(None, None, Some("s3"), Some("models")), &[]),
        (filter(Some("nothing"), None, None, None), &[]),
    ];
    for (f, want) in cases {
        let listing = list(store, &f).await;
        let want: Vec<String> = want.iter().map(|s| name(s)).collect();
        assert_eq!(ours(&listing, &p), want, "filter {f:?}");
        assert!(
            listing.records.iter().all(|r| f.matches(&r.record)),
            "filter {f:?} returned a record it does not match"
        );
        assert!(
            listing.revision >= last,
            "filtered listing revision is current"
        );
    }
}

/// Deletes: existing ids go away, missing ids are [`ErrorKind::NotFound`],
/// a stale expected revision is [`ErrorKind::Conflict`] and deletes nothing.
pub async fn check_delete(store: &dyn RegistryStore) {
    let p = prefix("delete");
    let a = format!("{p}a");
    let r1 = ok("create", store.put(sample(&p, &a, "s"), PutMode::Create)).await;
    let r2 = ok(
        "overwrite",
        store.put(sample(&p, &a, "s2"), PutMode::Overwrite),
    )
    .await;

    fails(
        "delete at a stale revision",
        store.delete(&a, Some(r1)),
        ErrorKind::Conflict,
    )
    .await;
    let stored = get_some(store, &a).await;
    assert_eq!(stored.revision, r2, "a failed delete changes nothing");

    let rd = ok("delete at the current revision", store.delete(&a, Some(r2))).await;
    assert!(rd > r2, "delete revision {rd} must exceed {r2}");
    assert!(get(store, &a).await.is_none(), "deleted record is gone");
    fails(
        "delete of a deleted id",
        store.delete(&a, None),
        ErrorKind::NotFound,
    )
    .await;
    fails(
        "delete of a deleted id with a revision",
        store.delete(&a, Some(r2)),
        ErrorKind::NotFound,
    )
    .await;
    let missing = format!("{p}never");
    fails(
        "delete of a missing id",
        store.delete(&missing, None),
        ErrorKind::NotFound,
    )
    .await;

    let b = format!("{p}b");
    ok("create", store.put(sample(&p, &b, "s"), PutMode::Create)).await;
    let rb = ok("unconditional delete", store.delete(&b, None)).await;
    assert!(rb > rd);
    assert!(get(store, &b).await.is_none(), "deleted record is gone");
    assert!(
        ours(&list(store, &ListFilter::all()).await, &p).is_empty(),
        "deleted records are not listed"
    );

    let again = ok(
        "create after delete",
        store.put(sample(&p, &a, "s3"), PutMode::Create),
    )
    .await;
    assert!(again > rb, "a re-created record gets a new revision");
}

/// `<hidden>` credential values: rejected on create (error path names the
/// key), keep the stored secret on overwrite and update; real values replace it.
pub async fn check_hidden_secrets(store: &dyn RegistryStore) {
    let p = prefix("hidden");
    let id = format!("{p}rec");
    let e = fails(
        "create with a <hidden> credential value",
        store.put(sample(&p, &id, HIDDEN), PutMode::Create),
        ErrorKind::InvalidInput,
    )
    .await;
    assert_eq!(
        e.path(),
        Some("services[0].credentials[0].configuration.KEY"),
        "{e}"
    );
    assert!(
        get(store, &id).await.is_none(),
        "a rejected create stores nothing"
    );

    ok(
        "create",
        store.put(sample(&p, &id, "real-1"), PutMode::Create),
    )
    .await;

    let mut edit = sample(&p, &id, HIDDEN);
    edit.description = "overwritten with <hidden>".into();
    ok(
        "overwrite with <hidden>",
        store.put(edit.clone(), PutMode::Overwrite),
    )
    .await;
    let stored = get_some(store, &id).await;
    assert_eq!(
        secret_of(&stored.record),
        "real-1",
        "<hidden> keeps the stored value"
    );
    assert_eq!(
        stored.record.description, edit.description,
        "the rest is written"
    );

    edit.description = "updated with <hidden>".into();
    let r = ok(
        "update with <hidden>",
        store.put(edit.clone(), PutMode::Update(stored.revision)),
    )
    .await;
    let stored = get_some(store, &id).await;
    assert_eq!(stored.revision, r);
    assert_eq!(
        secret_of(&stored.record),
        "real-1",
        "<hidden> keeps the stored value"
    );
    assert_eq!(stored.record.description, edit.description);

    let mut unknown = sample(&p, &id, HIDDEN);
    unknown.services[0].credentials[0]
        .configuration
        .insert("OTHER".into(), Secret::new(HIDDEN));
    let e = fails(
        "<hidden> for a key with no stored value",
        store.put(unknown, PutMode::Overwrite),
        ErrorKind::InvalidInput,
    )
    .await;
    assert_eq!(
        e.path(),
        Some("services[0].credentials[0].configuration.OTHER"),
        "{e}"
    );
    assert_eq!(
        get_some(store, &id).await.revision,
        r,
        "a rejected write changes nothing"
    );

    ok(
        "overwrite with a new real value",
        store.put(sample(&p, &id, "real-2"), PutMode::Overwrite),
    )
    .await;
    let stored = get_some(store, &id).await;
    assert_eq!(
        secret_of(&stored.record),
        "real-2",
        "a real value replaces the stored one"
    );
    let mut back = sample(&p, &id, HIDDEN);
    back.description = "hidden again".into();
    ok(
        "update with <hidden>",
        store.put(back, PutMode::Update(stored.revision)),
    )
    .await;
    assert_eq!(secret_of(&get_some(store, &id).await.record), "real-2");
}

/// Invalid records are [`ErrorKind::InvalidInput`] with a path, and store nothing.
pub async fn check_invalid_records(store: &dyn RegistryStore) {
    let p = prefix("invalid");
    let id = format!("{p}rec");
    let mut bad = sample(&p, &id, "s");
    bad.services[0].endpoints[0].url = "not a url".into();
    for mode in [PutMode::Create, PutMode::Overwrite] {
        let e = fails(
            "write with a bad URL",
            store.put(bad.clone(), mode),
            ErrorKind::InvalidInput,
        )
        .await;
        assert_eq!(e.path(), Some("services[0].endpoints[0].url"), "{e}");
        assert!(
            get(store, &id).await.is_none(),
            "an invalid record is not stored"
        );
    }

    let bad_id = format!("{p}bad id");
    let e = fails(
        "write with a bad id",
        store.put(sample(&p, &bad_id, "s"), PutMode::Create),
        ErrorKind::InvalidInput,
    )
    .await;
    assert_eq!(e.path(), Some("id"), "{e}");
    assert!(get(store, &bad_id).await.is_none());

    let good = sample(&p, &id, "s");
    let rev = ok("create", store.put(good.clone(), PutMode::Create)).await;
    let e = fails(
        "update to an invalid record",
        store.put(bad, PutMode::Update(rev)),
        ErrorKind::InvalidInput,
    )
    .await;
    assert_eq!(e.path(), Some("services[0].endpoints[0].url"), "{e}");
    let stored = get_some(store, &id).await;
    assert_eq!(
        (stored.revision, &stored.record),
        (rev, &good),
        "nothing changed"
    );
}

/// `put_all` writes a batch in order with increasing revisions; a batch with
/// one bad record (invalid, or a create of an existing id) stores nothing and
/// names the failing record.
///
/// This checks the all-or-nothing contract of the memory and SQLite stores;
/// a store that keeps the provided one-by-one `put_all` should not run it.
pub async fn check_put_all(store: &dyn RegistryStore) {
    let p = prefix("batch");
    let ids: Vec<String> = (0..3).map(|i| format!("{p}rec{i}")).collect();
    let batch = |secret: &str| -> Vec<(ExtensionRecord, PutMode)> {
        ids.iter()
            .map(|id| (sample(&p, id, secret), PutMode::Create))
            .collect()
    };

    // One invalid record in the middle: nothing is stored.
    let mut bad = batch("s1");
    bad[1].0.services[0].endpoints[0].url = "relative/path".into();
    let e = fails(
        "a batch with an invalid record",
        store.put_all(bad),
        ErrorKind::InvalidInput,
    )
    .await;
    assert_eq!(e.context("record"), Some(ids[1].as_str()), "{e}");
    assert_eq!(e.path(), Some("services[0].endpoints[0].url"), "{e}");
    for id in &ids {
        assert!(
            get(store, id).await.is_none(),
            "{id} was stored by a failed batch"
        );
    }

    // A good batch: all stored, revisions strictly increasing in batch order.
    let revisions = ok("a valid batch", store.put_all(batch("s1"))).await;
    assert_eq!(revisions.len(), 3);
    assert!(revisions.windows(2).all(|w| w[0] < w[1]), "{revisions:?}");
    for (id, rev) in ids.iter().zip(&revisions) {
        assert_eq!(get_some(store, id).await.revision, *rev);
    }

    // A batch whose last record already exists: nothing of it is stored.
    let fresh = format!("{p}fresh");
    let again = vec![
        (sample(&p, &fresh, "s2"), PutMode::Create),
        (sample(&p, &ids[2], "s2"), PutMode::Create),
    ];
    let e = fails(
        "a batch re-creating an id",
        store.put_all(again),
        ErrorKind::AlreadyExists,
    )
    .await;
    assert_eq!(e.context("record"), Some(ids[2].as_str()), "{e}");
    assert!(
        get(store, &fresh).await.is_none(),
        "a failed batch stored its first record"
    );
    assert_eq!(secret_of(&get_some(store, &ids[2]).await.record), "s1");

    // Later entries see earlier ones: create then update-in-place of one id.
    let mut overwrite = sample(&p, &fresh, "<hidden>");
    overwrite.description = "second".into();
    let revs = ok(
        "create then overwrite in one batch",
        store.put_all(vec![
            (sample(&p, &fresh, "s3"), PutMode::Create),
            (overwrite, PutMode::Overwrite),
        ]),
    )
    .await;
    let stored = get_some(store, &fresh).await;
    assert_eq!(stored.revision, revs[1]);
    assert_eq!(stored.record.description, "second");
    assert_eq!(
        secret_of(&stored.record),
        "s3",
        "<hidden> kept the value written earlier in the batch"
    );
}

/// `write_all` applies puts and deletes in order, atomically: a failing write
/// (a stale compare-and-set delete, a missing id, an existing id) leaves
/// everything as it was; a good batch commits all, later writes seeing earlier
/// ones, and watchers get its changes in order.
pub async fn check_write_all(store: &dyn RegistryStore) {
    let p = prefix("writeall");
    let (a, b, c) = (format!("{p}a"), format!("{p}b"), format!("{p}c"));
    let revs = ok(
        "create two records",
        store.put_all(vec![
            (sample(&p, &a, "sa"), PutMode::Create),
            (sample(&p, &b, "sb"), PutMode::Create),
        ]),
    )
    .await;
    let (ra, rb) = (revs[0], revs[1]);
    let put = |id: &str, secret: &str, mode| WriteOp::Put(sample(&p, id, secret), mode);
    let delete = |id: &str, expected| WriteOp::Delete {
        id: id.to_owned(),
        expected,
    };
    let unchanged = |what: &'static str| {
        let (a, b, c) = (a.clone(), b.clone(), c.clone());
        async move {
            assert_eq!(get_some(store, &a).await.revision, ra, "{what} changed {a}");
            assert_eq!(get_some(store, &b).await.revision, rb, "{what} changed {b}");
            assert!(get(store, &c).await.is_none(), "{what} created {c}");
        }
    };

    // A put before a stale delete: nothing is written.
    let e = fails(
        "a batch with a stale compare-and-set delete",
        store.write_all(vec![put(&c, "sc", PutMode::Create), delete(&a, Some(rb))]),
        ErrorKind::Conflict,
    )
    .await;
    assert_eq!(e.context("record"), Some(a.as_str()), "{e}");
    unchanged("a batch failing on a stale delete").await;

    // A delete before a failing put: nothing is deleted.
    let e = fails(
        "a batch re-creating an existing id",
        store.write_all(vec![delete(&a, Some(ra)), put(&b, "x", PutMode::Create)]),
        ErrorKind::AlreadyExists,
    )
    .await;
    assert_eq!(e.context("record"), Some(b.as_str()), "{e}");
    unchanged("a batch failing on a create").await;

    let missing = format!("{p}missing");
    let e = fails(
        "a batch deleting a missing id",
        store.write_all(vec![put(&c, "sc", PutMode::Create), delete(&missing, None)]),
        ErrorKind::NotFound,
    )
    .await;
    assert_eq!(e.context("record"), Some(missing.as_str()), "{e}");
    unchanged("a batch failing on a missing id").await;

    let e = fails(
        "a batch updating at a stale revision",
        store.write_all(vec![delete(&a, None), put(&b, "x", PutMode::Update(ra))]),
        ErrorKind::Conflict,
    )
    .await;
    assert_eq!(e.context("record"), Some(b.as_str()), "{e}");
    unchanged("a batch failing on a stale update").await;

    // A good batch: delete, compare-and-set update keeping a hidden secret, create.
    let listing = list(store, &ListFilter::all()).await;
    let mut watch = Watch::open(store, listing.revision).await;
    let mut b2 = sample(&p, &b, HIDDEN);
    b2.description = "updated".into();
    let revs = ok(
        "a mixed batch",
        store.write_all(vec![
            delete(&a, Some(ra)),
            WriteOp::Put(b2, PutMode::Update(rb)),
            put(&c, "sc", PutMode::Create),
        ]),
    )
    .await;
    assert_eq!(revs.len(), 3);
    assert!(revs.windows(2).all(|w| w[0] < w[1]), "{revs:?}");
    assert!(revs[0] > rb, "{revs:?} after {rb}");
    assert!(get(store, &a).await.is_none(), "{a} was deleted");
    let stored_b = get_some(store, &b).await;
    assert_eq!(stored_b.revision, revs[1]);
    assert_eq!(stored_b.record.description, "updated");
    assert_eq!(
        secret_of(&stored_b.record),
        "sb",
        "<hidden> kept the secret"
    );
    assert_eq!(get_some(store, &c).await.revision, revs[2]);
    let events = watch.collect_ours(&p, revs[2]).await;
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(events[&a].is_none(), "the watch saw the delete of {a}");
    assert_eq!(events[&b].as_ref().map(|s| s.revision), Some(revs[1]));
    assert_eq!(events[&c].as_ref().map(|s| s.revision), Some(revs[2]));

    // Later writes see earlier ones: delete then re-create one id.
    let revs = ok(
        "delete then re-create in one batch",
        store.write_all(vec![delete(&c, None), put(&c, "sc2", PutMode::Create)]),
    )
    .await;
    let stored_c = get_some(store, &c).await;
    assert_eq!(stored_c.revision, revs[1]);
    assert_eq!(secret_of(&stored_c.record), "sc2");
    assert_eq!(
        ok("an empty batch", store.write_all(Vec::new())).await,
        Vec::<Revision>::new()
    );
}

/// `watch(rev)` taken before writes delivers each following put and delete,
/// in strictly increasing revision order, with the written record.
pub async fn check_watch_after_write(store: &dyn RegistryStore) {
    let p = prefix("watch");
    let gone = format!("{p}gone");
    let a = format!("{p}a");
    ok("create", store.put(sample(&p, &gone, "s"), PutMode::Create)).await;
    let since = list(store, &ListFilter::all()).await.revision;
    let mut watch = Watch::open(store, since).await;

    let first = sample(&p, &a, "s1");
    let r1 = ok("create", store.put(first.clone(), PutMode::Create)).await;
    watch.expect_put(&p, &first, r1).await;

    let mut second = sample(&p, &a, "s2");
    second.description = "second".into();
    let r2 = ok("overwrite", store.put(second.clone(), PutMode::Overwrite)).await;
    watch.expect_put(&p, &second, r2).await;

    let r3 = ok("delete", store.delete(&gone, None)).await;
    let event = watch.next_ours(&p).await;
    assert_eq!((event.revision, event.id.as_str()), (r3, gone.as_str()));
    assert!(
        matches!(event.change, Change::Delete),
        "expected a delete, got {event:?}"
    );
    assert!(since < r1 && r1 < r2 && r2 < r3);

    // A watch from the revision of the overwrite starts after it.
    let mut later = Watch::open(store, r2).await;
    let event = later.next_ours(&p).await;
    assert_eq!((event.revision, event.id.as_str()), (r3, gone.as_str()));
}

/// `watch(0)` replays the current state: the latest version of every record
/// and a delete for every deleted one, then continues live.
pub async fn check_watch_replay(store: &dyn RegistryStore) {
    let p = prefix("replay");
    let [x, y, z] = ["x", "y", "z"].map(|s| format!("{p}{s}"));
    for id in [&x, &y, &z] {
        ok("create", store.put(sample(&p, id, "s1"), PutMode::Create)).await;
    }
    let mut x2 = sample(&p, &x, "s2");
    x2.description = "latest".into();
    let rx = ok("overwrite", store.put(x2.clone(), PutMode::Overwrite)).await;
    let ry = ok("delete", store.delete(&y, None)).await;

    let mut watch = Watch::open(store, 0).await;
    let seen = watch.collect_ours(&p, ry).await;
    let want: BTreeMap<String, Option<StoredRecord>> = [
        (
            x.clone(),
            Some(StoredRecord {
                record: x2,
                revision: rx,
            }),
        ),
        (y.clone(), None),
        (z.clone(), Some(get_some(store, &z).await)),
    ]
    .into();
    assert_eq!(
        seen, want,
        "watch(0) replays the latest state of every record"
    );

    // And continues live after the replay.
    let rz = ok("delete", store.delete(&z, None)).await;
    let event = watch.next_ours(&p).await;
    assert_eq!((event.revision, event.id.as_str()), (rz, z.as_str()));
    assert!(
        matches!(event.change, Change::Delete),
        "expected a delete, got {event:?}"
    );
}

/// A watcher that does not read during a burst of 2000 writes (more than any
/// in-process buffer should hold) still ends up with the final state of
/// every record.
pub async fn check_watch_lagging(store: &dyn RegistryStore) {
    const RECORDS: usize = 50;
    const WRITES: usize = 2000;
    let p = prefix("lag");
    let since = list(store, &ListFilter::all()).await.revision;
    let mut watch = Watch::open(store, since).await;
    // Read one event first so the watcher is past its initial catch-up and live.
    let seed = sample(&p, &format!("{p}seed"), "s");
    let rs = ok("create", store.put(seed.clone(), PutMode::Create)).await;
    watch.expect_put(&p, &seed, rs).await;

    let mut last = rs;
    let rounds = WRITES / RECORDS;
    for i in 0..WRITES {
        let (k, round) = (i % RECORDS, i / RECORDS);
        let id = format!("{p}r{k:02}");
        last = if round + 1 == rounds && k % 5 == 0 {
            ok("delete", store.delete(&id, None)).await
        } else {
            let mut r = sample(&p, &id, "s");
            r.configuration.insert(COUNTER.into(), round.to_string());
            let mode = if round == 0 {
                PutMode::Create
            } else {
                PutMode::Overwrite
            };
            ok("write", store.put(r, mode)).await
        };
    }

    let seen = watch.collect_ours(&p, last).await;
    let listing = list(store, &ListFilter::all()).await;
    let mut want: BTreeMap<String, Option<StoredRecord>> = (0..RECORDS)
        .map(|k| (format!("{p}r{k:02}"), None))
        .collect();
    for r in listing
        .records
        .iter()
        .filter(|r| r.record.id.starts_with(&p))
    {
        if r.record.id != seed.id {
            want.insert(r.record.id.clone(), Some(r.clone()));
        }
    }
    assert_eq!(
        want.values().filter(|v| v.is_some()).count(),
        RECORDS - RECORDS / 5,
        "the burst left the expected records"
    );
    for v in want.values().flatten() {
        assert_eq!(counter(&v.record), (rounds - 1) as u64);
    }
    assert_eq!(seen, want, "a lagging watcher converges on the final state");
}

/// Concurrent writers in a bounded burst.
const BURST_WRITERS: usize = 4;
/// Creates per writer in the burst.
const BURST_WRITES: usize = 60;

/// A watcher opened before a burst of concurrent writes (4 writers × 60
/// creates of distinct records) receives every one of their revisions exactly
/// once, in increasing order, while the burst is still going on.
pub async fn check_watch_burst(store: &dyn RegistryStore) {
    check_watch_burst_across(store, &[store]).await;
}

/// [`check_watch_burst`] with the watch on `watcher` and writer `w` using
/// `writers[w % writers.len()]`: pass other instances over the same storage
/// to prove that a watch sees other connections' (or processes') commits.
pub async fn check_watch_burst_across(watcher: &dyn RegistryStore, writers: &[&dyn RegistryStore]) {
    assert!(!writers.is_empty(), "give at least one writer");
    let p = prefix("burst");
    let since = list(watcher, &ListFilter::all()).await.revision;
    let mut watch = Watch::open(watcher, since).await;

    let p = p.as_str();
    let writer = |w: usize| async move {
        let store = writers[w % writers.len()];
        let mut written = Vec::with_capacity(BURST_WRITES);
        for i in 0..BURST_WRITES {
            let id = format!("{p}w{w}-{i:03}");
            let rev = ok("create", store.put(sample(p, &id, "s"), PutMode::Create)).await;
            written.push((rev, id));
            if i % 8 == 0 {
                tokio::task::yield_now().await;
            }
        }
        written
    };
    let reader = async {
        let mut seen = Vec::with_capacity(BURST_WRITERS * BURST_WRITES);
        while seen.len() < BURST_WRITERS * BURST_WRITES {
            // `next` checks that revisions increase strictly (so none twice).
            let event = watch.next_ours(p).await;
            assert!(
                matches!(event.change, Change::Put(_)),
                "the burst only creates records, got {event:?}"
            );
            seen.push((event.revision, event.id));
        }
        seen
    };
    let (written, seen) =
        futures_util::future::join(join_all((0..BURST_WRITERS).map(writer)), reader).await;
    let mut written: Vec<(Revision, String)> = written.into_iter().flatten().collect();
    written.sort();
    assert_eq!(
        seen, written,
        "the watcher saw exactly the burst's writes, each once, in revision order"
    );
}

/// Durability: writes made through one instance are all there, secrets and
/// revisions included, in a fresh instance over the same storage; the head
/// revision survives and the next write's revision is larger.
///
/// `open` must return a new store instance over the same underlying storage
/// each time it is called (e.g. `SqliteStore::open` on the same path). Each
/// instance is dropped before the next is opened.
pub async fn check_reopen_durability<F, Fut, S>(mut open: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<S>>,
    S: RegistryStore,
{
    let p = prefix("durable");
    let [a, b, c, d] = ["a", "b", "c", "d"].map(|s| format!("{p}{s}"));

    let store = ok("open", open()).await;
    let since = list(&store, &ListFilter::all()).await.revision;
    let mut ra = sample(&p, &a, "durable-secret-a");
    ra.services[0].credentials.push(Credentials {
        id: "second".into(),
        configuration: [
            ("TOKEN".to_owned(), Secret::new("tok\"en-ü-\n-line")),
            ("EMPTY".to_owned(), Secret::new("")),
        ]
        .into(),
        ..Default::default()
    });
    let ra_rev = ok("create", store.put(ra.clone(), PutMode::Create)).await;
    ra.description = "updated before reopen".into();
    ok("update", store.put(ra.clone(), PutMode::Update(ra_rev))).await;
    ok(
        "create",
        store.put(sample(&p, &b, "durable-secret-b"), PutMode::Create),
    )
    .await;
    ok(
        "create",
        store.put(sample(&p, &c, "durable-secret-c"), PutMode::Create),
    )
    .await;
    let deleted = ok("delete", store.delete(&c, None)).await;
    let before = list(&store, &ListFilter::all()).await;
    drop(store);

    let store = ok("reopen", open()).await;
    let after = list(&store, &ListFilter::all()).await;
    assert_eq!(
        after.revision, before.revision,
        "the head revision survives a reopen"
    );
    let mine = |l: &Listing| -> Vec<StoredRecord> {
        l.records
            .iter()
            .filter(|r| r.record.id.starts_with(&p))
            .cloned()
            .collect()
    };
    assert_eq!(
        mine(&after),
        mine(&before),
        "records survive a reopen unchanged"
    );
    let got = get_some(&store, &a).await;
    assert_eq!(got.record, ra);
    let creds = &got.record.services[0].credentials;
    assert_eq!(creds[0].configuration["KEY"].expose(), "durable-secret-a");
    assert_eq!(
        creds[1].configuration["TOKEN"].expose(),
        "tok\"en-ü-\n-line"
    );
    assert_eq!(creds[1].configuration["EMPTY"].expose(), "");
    assert_eq!(
        secret_of(&get_some(&store, &b).await.record),
        "durable-secret-b"
    );
    assert!(get(&store, &c).await.is_none(), "deletes survive a reopen");

    // The change log survives too, tombstones included.
    let mut watch = Watch::open(&store, since).await;
    let seen = watch.collect_ours(&p, deleted).await;
    assert_eq!(
        seen.get(&c),
        Some(&None),
        "the delete is replayed after a reopen"
    );
    assert_eq!(
        seen.get(&a).and_then(Option::as_ref).map(|s| &s.record),
        Some(&ra)
    );
    drop(watch);

    let rd = ok(
        "create after reopen",
        store.put(sample(&p, &d, "s"), PutMode::Create),
    )
    .await;
    assert!(
        rd > before.revision,
        "the next write's revision {rd} must exceed {} from before the reopen",
        before.revision
    );
    drop(store);

    let store = ok("second reopen", open()).await;
    assert_eq!(get_some(&store, &d).await.revision, rd);
    assert!(list(&store, &ListFilter::all()).await.revision >= rd);
}

// --- Helpers ------------------------------------------------------------------

/// A fresh prefix for one check's names: unique per process, call and time.
fn prefix(check: &str) -> String {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    format!(
        "{check}-{}-{:x}-{call}-",
        std::process::id(),
        nanos & 0xffff_ffff_ffff
    )
}

/// A valid record: one service with one endpoint and a global credential set
/// `admin` with `KEY` = `secret`. Product, zone, resource and category are
/// unique to the prefix, so other checks' filters never match it.
fn sample(p: &str, id: &str, secret: &str) -> ExtensionRecord {
    ExtensionRecord {
        id: id.to_owned(),
        product: format!("{p}product"),
        version: "1.2.3".into(),
        description: "conformance record".into(),
        zone: format!("{p}zone"),
        configuration: [("REGION".to_owned(), "eu-1".to_owned())].into(),
        services: vec![Service {
            id: "api".into(),
            resource: format!("{p}resource"),
            category: format!("{p}category"),
            authrequired: true,
            description: String::new(),
            endpoints: vec![Endpoint {
                url: "http://service.example:8080/api".into(),
                ..Default::default()
            }],
            credentials: vec![Credentials {
                id: "admin".into(),
                configuration: [("KEY".to_owned(), Secret::new(secret))].into(),
                ..Default::default()
            }],
            configuration: Default::default(),
        }],
    }
}

fn secret_of(record: &ExtensionRecord) -> &str {
    record.services[0].credentials[0]
        .configuration
        .get("KEY")
        .map(Secret::expose)
        .unwrap_or_else(|| panic!("record {} lost its KEY credential", record.id))
}

fn counter(record: &ExtensionRecord) -> u64 {
    record
        .configuration
        .get(COUNTER)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("record {} has no numeric {COUNTER}", record.id))
}

/// The ids of a listing's records that belong to the check with prefix `p`.
fn ours(listing: &Listing, p: &str) -> Vec<String> {
    listing
        .records
        .iter()
        .map(|r| r.record.id.clone())
        .filter(|id| id.starts_with(p))
        .collect()
}

/// Awaits a store call, failing the check when it takes longer than [`CALL_TIMEOUT`].
async fn call<T>(fut: impl Future<Output = Result<T>>) -> Result<T> {
    match tokio::time::timeout(CALL_TIMEOUT, fut).await {
        Ok(result) => result,
        Err(_) => panic!("a store call did not complete within {CALL_TIMEOUT:?}"),
    }
}

/// Awaits a call that must succeed.
#[track_caller]
fn ok<T>(what: &'static str, fut: impl Future<Output = Result<T>>) -> impl Future<Output = T> {
    let caller = std::panic::Location::caller();
    async move {
        match call(fut).await {
            Ok(value) => value,
            Err(e) => panic!("{what} failed ({caller}): {} error: {e}", e.kind()),
        }
    }
}

/// Awaits a call that must fail with `kind`; returns the error.
#[track_caller]
fn fails<T: Debug>(
    what: &'static str,
    fut: impl Future<Output = Result<T>>,
    kind: ErrorKind,
) -> impl Future<Output = Error> {
    let caller = std::panic::Location::caller();
    async move {
        match call(fut).await {
            Ok(value) => panic!("{what} ({caller}) must fail with {kind}, but returned {value:?}"),
            Err(e) => {
                assert_eq!(
                    e.kind(),
                    kind,
                    "{what} ({caller}) failed with the wrong kind: {e}"
                );
                e
            }
        }
    }
}

async fn get(store: &dyn RegistryStore, id: &str) -> Option<StoredRecord> {
    ok("get", store.get(id)).await
}

async fn get_some(store: &dyn RegistryStore, id: &str) -> StoredRecord {
    get(store, id)
        .await
        .unwrap_or_else(|| panic!("record {id} must exist"))
}

async fn list(store: &dyn RegistryStore, filter: &ListFilter) -> Listing {
    ok("list", store.list(filter)).await
}

/// A watch stream with ordering checks on every event.
struct Watch {
    stream: ChangeStream,
    last: Revision,
}

impl Watch {
    async fn open(store: &dyn RegistryStore, since: Revision) -> Watch {
        Watch {
            stream: ok("watch", store.watch(since)).await,
            last: since,
        }
    }

    /// The next event of any record; its revision must exceed every earlier one.
    async fn next(&mut self) -> ChangeEvent {
        let event = match tokio::time::timeout(STEP_TIMEOUT, self.stream.next()).await {
            Err(_) => panic!(
                "the watch stream yielded nothing within {STEP_TIMEOUT:?} (last revision {})",
                self.last
            ),
            Ok(None) => panic!("the watch stream ended (last revision {})", self.last),
            Ok(Some(Err(e))) => panic!("the watch stream failed: {} error: {e}", e.kind()),
            Ok(Some(Ok(event))) => event,
        };
        assert!(
            event.revision > self.last,
            "watch revisions must increase strictly: {} after {}",
            event.revision,
            self.last
        );
        self.last = event.revision;
        if let Change::Put(stored) = &event.change {
            assert_eq!(
                stored.revision, event.revision,
                "a put event carries its revision"
            );
            assert_eq!(stored.record.id, event.id, "a put event carries its record");
        }
        event
    }

    /// The next event of a record whose id starts with `p`.
    async fn next_ours(&mut self, p: &str) -> ChangeEvent {
        loop {
            let event = self.next().await;
            if event.id.starts_with(p) {
                return event;
            }
        }
    }

    /// Expects the next event of prefix `p` to be the put of `record` at `revision`.
    async fn expect_put(&mut self, p: &str, record: &ExtensionRecord, revision: Revision) {
        let event = self.next_ours(p).await;
        assert_eq!(
            (event.revision, event.id.as_str()),
            (revision, record.id.as_str())
        );
        match &event.change {
            Change::Put(stored) => assert_eq!(
                &stored.record, record,
                "the put event carries the written record"
            ),
            Change::Delete => panic!(
                "expected a put of {} at {revision}, got a delete",
                record.id
            ),
        }
    }

    /// Reads events up to revision `until`; returns the final state per id of prefix `p`
    /// (`None` for deleted).
    async fn collect_ours(
        &mut self,
        p: &str,
        until: Revision,
    ) -> BTreeMap<String, Option<StoredRecord>> {
        let mut seen = BTreeMap::new();
        while self.last < until {
            let event = self.next().await;
            if event.id.starts_with(p) {
                let state = match event.change {
                    Change::Put(stored) => Some(StoredRecord::clone(&stored)),
                    Change::Delete => None,
                };
                seen.insert(event.id, state);
            }
        }
        seen
    }
}
