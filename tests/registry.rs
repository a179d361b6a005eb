//! Registry behaviour: ranking rules, eligibility, the index following the store.

use std::time::Duration;

use inferlink::format;
use inferlink::{
    Consumer, ErrorKind, MemoryStore, PutMode, Registry, RegistryStore, RegistryStoreExt, Selector,
};

fn records(text: &str) -> Vec<inferlink::ExtensionRecord> {
    format::parse_records(text).unwrap()
}

const RANKING: &str = r#"
id: b-remote
product: kserve
version: "0.9.1"
zone: far
services:
  - id: api
    resource: kserve-api
    category: prediction-serving
    endpoints:
      - url: https://b.far.example
        type: external
      - url: http://b.internal
        type: internal
---
id: a-local
product: kserve
version: "0.7.0"
zone: near
services:
  - id: api
    resource: kserve-api
    category: prediction-serving
    authrequired: true
    endpoints:
      - url: http://a.internal
        type: internal
      - url: https://a.near.example
        type: external
    credentials:
      - id: z-global
        scope: global
      - id: y-global-default
        default: true
        scope: global
      - id: x-project
        scope: project
        projects: [alpha]
      - id: w-user
        scope: user
        users: [ann]
        projects: [alpha]
"#;

async fn ranking_registry() -> Registry {
    let registry = Registry::open(MemoryStore::new()).await.unwrap();
    for r in records(RANKING) {
        registry.register(r).await.unwrap();
    }
    registry
}

#[tokio::test]
async fn same_zone_first_then_narrowest_scope_then_default_then_ids() {
    let registry = ranking_registry().await;
    let sel = Selector::category("prediction-serving");
    let id = |r: &inferlink::Resolution| {
        format!(
            "{}/{}/{}",
            r.record().id,
            r.endpoint().url,
            r.credentials().map_or("-", |c| c.id.as_str())
        )
    };

    let ann = Consumer::in_zone("near")
        .with_project("alpha")
        .with_user("ann");
    let all: Vec<String> = registry
        .resolve_all(&sel, &ann)
        .unwrap()
        .iter()
        .map(id)
        .collect();
    assert_eq!(
        all,
        vec![
            // same zone; user scope, then project, then the default global, then the other global
            "a-local/http://a.internal/w-user",
            "a-local/https://a.near.example/w-user",
            "a-local/http://a.internal/x-project",
            "a-local/https://a.near.example/x-project",
            "a-local/http://a.internal/y-global-default",
            "a-local/https://a.near.example/y-global-default",
            "a-local/http://a.internal/z-global",
            "a-local/https://a.near.example/z-global",
            // other zone: internal endpoint not offered
            "b-remote/https://b.far.example/-",
        ]
    );
    assert_eq!(id(&registry.resolve(&sel, &ann).unwrap()), all[0]);

    // Without project or user, the default global credential wins; outside the zone only external.
    let outsider = registry.resolve(&sel, &Consumer::anywhere()).unwrap();
    assert_eq!(
        id(&outsider),
        "a-local/https://a.near.example/y-global-default"
    );

    // In the far zone, b-remote is local and its internal endpoint is offered (listed second).
    let far = registry
        .resolve_all(&sel, &Consumer::in_zone("far"))
        .unwrap();
    assert_eq!(id(&far[0]), "b-remote/https://b.far.example/-");
    assert_eq!(id(&far[1]), "b-remote/http://b.internal/-");
    assert!(far[0].in_consumer_zone());
}

#[tokio::test]
async fn auth_required_without_eligible_credentials_is_not_a_candidate() {
    let registry = Registry::open(MemoryStore::new()).await.unwrap();
    let mut rs = records(RANKING);
    // Keep only the user-scoped credential of a-local.
    rs[1].services[0].credentials.retain(|c| c.id == "w-user");
    for r in rs {
        registry.register(r).await.unwrap();
    }
    let sel = Selector {
        extension_id: Some("a-local".into()),
        ..Default::default()
    };
    let err = registry
        .resolve(&sel, &Consumer::in_zone("near"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoMatch);
    assert!(
        err.to_string()
            .contains("credentials eligible for project (none), user (none)"),
        "{err}"
    );
    assert!(err.to_string().contains("a-local/api"), "{err}");
    let ok = registry
        .resolve(
            &sel,
            &Consumer::in_zone("near")
                .with_user("ann")
                .with_project("alpha"),
        )
        .unwrap();
    assert_eq!(ok.credentials().unwrap().id, "w-user");
}

#[tokio::test]
async fn version_filters_and_errors() {
    let registry = ranking_registry().await;
    let sel = |v: &str| Selector {
        product: Some("kserve".into()),
        version: Some(v.into()),
        ..Default::default()
    };
    let c = Consumer::anywhere();
    assert_eq!(
        registry.resolve(&sel("0.9.1"), &c).unwrap().record().id,
        "b-remote"
    );
    assert_eq!(
        registry.resolve(&sel("^0.9"), &c).unwrap().record().id,
        "b-remote"
    );
    assert_eq!(
        registry
            .resolve(&sel(">=0.7, <0.8"), &c)
            .unwrap()
            .record()
            .id,
        "a-local"
    );
    let miss = registry.resolve(&sel("~1.10.0"), &c).unwrap_err();
    assert_eq!(miss.kind(), ErrorKind::NoMatch);
    assert!(
        miss.to_string()
            .contains("2 records pass \"product = kserve\""),
        "{miss}"
    );
    assert!(
        miss.to_string().contains("have 0.7.0, have 0.9.1"),
        "{miss}"
    );
    let bad = registry.resolve(&sel("~>>1"), &c).unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::InvalidInput);
    assert_eq!(bad.path(), Some("version"));
}

#[tokio::test]
async fn writes_through_another_handle_reach_the_index() {
    let store = MemoryStore::new();
    let registry = Registry::open(store.clone()).await.unwrap();
    let sel = Selector::category("prediction-serving");
    assert_eq!(
        registry
            .resolve(&sel, &Consumer::anywhere())
            .unwrap_err()
            .kind(),
        ErrorKind::NoMatch
    );
    // Another owner of the same store (e.g. an admin task) writes; the registry follows.
    for r in records(RANKING) {
        store.put(r, PutMode::Create).await.unwrap();
    }
    let moved = async {
        loop {
            if registry.resolve(&sel, &Consumer::anywhere()).is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), moved)
        .await
        .unwrap();

    // Move an endpoint; the next resolution uses the new URL.
    store
        .update_with("b-remote", 3, |r| {
            r.services[0].endpoints[0].url = "https://b2.far.example".into();
            Ok(())
        })
        .await
        .unwrap();
    let far = Consumer::in_zone("far");
    let moved = async {
        loop {
            let found = registry.resolve(&sel, &far).unwrap();
            if found.endpoint().url == "https://b2.far.example" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), moved)
        .await
        .unwrap();

    // Delete through the store; the registry forgets the record.
    store.delete("b-remote", None).await.unwrap();
    let gone = async {
        while registry.get("b-remote").is_some() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), gone)
        .await
        .unwrap();
    assert!(registry.revision() >= 4);
}

#[tokio::test]
async fn registry_writes_are_visible_immediately() {
    let registry = Registry::open(MemoryStore::new()).await.unwrap();
    let mut rs = records(RANKING);
    let b = rs.remove(0);
    registry.register(b.clone()).await.unwrap();
    // No waiting: read-your-writes.
    assert!(registry.get("b-remote").is_some());
    assert_eq!(
        registry
            .list(&inferlink::ListFilter {
                zone: Some("far".into()),
                ..Default::default()
            })
            .len(),
        1
    );
    let err = registry.register(b).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    registry.unregister("b-remote").await.unwrap();
    assert!(registry.get("b-remote").is_none());
    assert_eq!(
        registry.unregister("b-remote").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[tokio::test]
async fn explanation_lists_each_filter_in_order() {
    let registry = ranking_registry().await;
    let sel = Selector {
        product: Some("kserve".into()),
        service_resource: Some("kserve-api".into()),
        ..Default::default()
    };
    let text = registry
        .explain(&sel, &Consumer::in_zone("near"))
        .unwrap()
        .to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("product = kserve: 2 of 2 records pass"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("service_resource = kserve-api: 2 of 2 services pass"),
        "{text}"
    );
    assert!(lines[3].contains("3 of 4 endpoints pass"), "{text}");
    assert!(
        lines[3].contains("http://b.internal (internal to zone far)"),
        "{text}"
    );
}

/// `n` records in registration order opposite to id order: zones `z0`…`z3`,
/// products `p0`…`p4`, versions `1.{i % 3}.0`, two services each (resources
/// `r{i % 7}` and `shared`, categories `c{i % 5}` and `common`), the second
/// with `authrequired` and project-scoped credentials, internal and external
/// endpoints.
fn explain_corpus(n: usize) -> Vec<inferlink::ExtensionRecord> {
    let text: Vec<String> = (0..n)
        .rev()
        .map(|i| {
            format!(
                "id: rec-{i:03}\nproduct: p{}\nversion: \"1.{}.0\"\nzone: z{}\nservices:\n  - id: a\n    resource: r{}\n    category: c{}\n    endpoints:\n      - url: http://a{i}.internal\n        type: internal\n  - id: b\n    resource: shared\n    category: common\n    authrequired: true\n    endpoints:\n      - url: https://b{i}.example\n        type: external\n    credentials:\n      - id: team\n        scope: project\n        projects: [proj{}]\n",
                i % 5,
                i % 3,
                i % 4,
                i % 7,
                i % 5,
                i % 2
            )
        })
        .collect();
    records(&text.join("---\n"))
}

#[tokio::test]
async fn the_indexed_explanation_equals_a_full_scan() {
    let registry = Registry::open(MemoryStore::new()).await.unwrap();
    registry
        .put_all(explain_corpus(120), PutMode::Create)
        .await
        .unwrap();
    let all = registry.list(&inferlink::ListFilter::all());
    assert_eq!(all.len(), 120);
    let sel = |f: &dyn Fn(&mut Selector)| {
        let mut s = Selector::default();
        f(&mut s);
        s
    };
    let selectors = [
        sel(&|s| s.product = Some("p3".into())),
        sel(&|s| s.product = Some("missing".into())),
        sel(&|s| s.extension_id = Some("rec-007".into())),
        sel(&|s| s.extension_id = Some("rec-999".into())),
        sel(&|s| s.zone = Some("z1".into())),
        sel(&|s| {
            s.zone = Some("z1".into());
            s.product = Some("p2".into());
        }),
        sel(&|s| {
            s.product = Some("p2".into());
            s.version = Some("~1.1".into());
        }),
        sel(&|s| s.version = Some("^2".into())),
        sel(&|s| s.version = Some("not a version".into())),
        sel(&|s| s.service_resource = Some("r3".into())),
        sel(&|s| s.service_resource = Some("missing".into())),
        sel(&|s| s.service_category = Some("common".into())),
        sel(&|s| {
            s.service_resource = Some("shared".into());
            s.service_category = Some("c1".into());
        }),
        sel(&|s| s.service_id = Some("b".into())),
        sel(&|s| {
            s.product = Some("p1".into());
            s.service_id = Some("b".into());
            s.service_category = Some("common".into());
        }),
        Selector::default(),
    ];
    let consumers = [
        Consumer::anywhere(),
        Consumer::in_zone("z2").with_project("proj1"),
    ];
    for selector in &selectors {
        for consumer in &consumers {
            let indexed = registry.explain(selector, consumer).unwrap();
            let scanned = inferlink::resolve::explain_in(&all, selector, consumer);
            assert_eq!(indexed, scanned, "{selector:?} {consumer:?}");
            for step in &indexed.steps {
                // The examples shown plus "and N more" account for every dropped item
                // whenever no two dropped items share a label.
                assert!(step.dropped.len() <= 9, "{step:?}");
                if step.after < step.before {
                    assert!(!step.dropped.is_empty(), "{step:?}");
                }
            }
        }
    }
    // A missing product: every record dropped, the first ids shown, the rest counted.
    let text = registry
        .explain(&selectors[1], &Consumer::anywhere())
        .unwrap()
        .to_string();
    assert!(
        text.starts_with(
            "product = missing: 0 of 120 records pass (dropped: rec-000 is p0, rec-001 is p1, rec-002 is p2, rec-003 is p3, rec-004 is p4, rec-005 is p0, rec-006 is p1, rec-007 is p2, and 112 more)"
        ),
        "{text}"
    );
    // A resource: 240 services counted from the index, 17 pass.
    let text = registry
        .explain(&selectors[9], &Consumer::anywhere())
        .unwrap()
        .to_string();
    assert!(
        text.starts_with("service_resource = r3: 17 of 240 services pass (dropped: r0, shared, r1, r2, r4, r5, r6, and 216 more)"),
        "{text}"
    );
    let err = registry
        .resolve(&selectors[1], &Consumer::anywhere())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoMatch);
    assert!(
        err.to_string()
            .contains("none of 120 records passes \"product = missing\" (rec-000 is p0,"),
        "{err}"
    );
}

// --- Live resolution ----------------------------------------------------------

/// An S3 service record in `zone` with one endpoint and a global credential.
fn s3_record(id: &str, zone: &str, url: &str, key: &str) -> inferlink::ExtensionRecord {
    records(&format!(
        "id: {id}\nproduct: minio\nzone: {zone}\nservices:\n  - id: s3\n    resource: s3\n    category: object-storage\n    endpoints:\n      - url: {url}\n    credentials:\n      - id: ops\n        configuration:\n          AWS_SECRET_ACCESS_KEY: {key}\n"
    ))
    .remove(0)
}

/// Waits (up to 10 s) until the registry's index has applied `revision`,
/// then gives its followers a moment to react.
async fn applied(registry: &Registry, revision: inferlink::Revision) {
    let caught_up = async {
        while registry.revision() < revision {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), caught_up)
        .await
        .unwrap_or_else(|_| panic!("the registry did not apply revision {revision} within 10 s"));
    tokio::time::sleep(Duration::from_millis(20)).await;
}

/// The next outcome of `live`, within 10 seconds.
async fn next_outcome(
    live: &mut inferlink::LiveResolution,
) -> inferlink::Result<inferlink::Resolution> {
    match tokio::time::timeout(Duration::from_secs(10), live.next()).await {
        Ok(Some(outcome)) => outcome,
        Ok(None) => panic!("the live resolution ended while the registry is open"),
        Err(_) => panic!("the live resolution yielded nothing within 10 s"),
    }
}

fn key_of(found: &inferlink::Resolution) -> String {
    found
        .config_value("AWS_SECRET_ACCESS_KEY")
        .unwrap()
        .expose()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_resolution_follows_endpoint_credential_and_ranking_changes() {
    let store = MemoryStore::new();
    let registry = Registry::open(store.clone()).await.unwrap();
    registry
        .register(s3_record("far-s3", "far", "http://far-1:9000", "k1"))
        .await
        .unwrap();
    let mut live = registry
        .watch_resolution(Selector::resource("s3"), Consumer::in_zone("near"))
        .unwrap();
    assert_eq!(live.selector(), &Selector::resource("s3"));

    // The current resolution comes first.
    let first = next_outcome(&mut live).await.unwrap();
    assert_eq!(first.endpoint().url, "http://far-1:9000");
    assert_eq!(key_of(&first), "k1");

    // Unrelated writes (another record; the chosen record's description; the
    // same record written again unchanged) yield nothing: while `next` waits,
    // each is applied to the index in turn, and the item that comes is the
    // moved endpoint, written last through another handle of the store.
    let waiting = tokio::spawn(async move {
        let outcome = next_outcome(&mut live).await;
        (live, outcome)
    });
    let mut other = s3_record("tracking", "far", "http://mlflow:5000", "t");
    other.services[0].resource = "mlflow".into();
    let rev = store.put(other, PutMode::Create).await.unwrap();
    applied(&registry, rev).await;
    let rev = store
        .update_with("far-s3", 3, |r| {
            r.description = "only the description changed".into();
            Ok(())
        })
        .await
        .unwrap();
    applied(&registry, rev).await;
    let rev = store.update_with("far-s3", 3, |_| Ok(())).await.unwrap();
    applied(&registry, rev).await;
    assert!(!waiting.is_finished(), "nothing relevant changed yet");
    store
        .update_with("far-s3", 3, |r| {
            r.services[0].endpoints[0].url = "http://far-2:9000".into();
            Ok(())
        })
        .await
        .unwrap();
    let (mut live, moved) = waiting.await.unwrap();
    let moved = moved.unwrap();
    assert_eq!(moved.endpoint().url, "http://far-2:9000");
    assert_eq!(key_of(&moved), "k1");

    // A rotated credential.
    registry
        .upsert(s3_record("far-s3", "far", "http://far-2:9000", "k2"))
        .await
        .unwrap();
    let rotated = next_outcome(&mut live).await.unwrap();
    assert_eq!(key_of(&rotated), "k2");
    assert_eq!(rotated.record().id, "far-s3");

    // A better-ranked candidate: one in the consumer's zone.
    registry
        .register(s3_record("near-s3", "near", "http://near:9000", "n1"))
        .await
        .unwrap();
    let better = next_outcome(&mut live).await.unwrap();
    assert_eq!(better.record().id, "near-s3");
    assert!(better.in_consumer_zone());

    // Deleting the chosen one falls back to the other candidate.
    registry.unregister("near-s3").await.unwrap();
    let back = next_outcome(&mut live).await.unwrap();
    assert_eq!(back.record().id, "far-s3");
    assert_eq!(live.current().unwrap().record().id, "far-s3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_resolution_reports_no_match_once_then_recovers() {
    let store = MemoryStore::new();
    let registry = Registry::open(store.clone()).await.unwrap();
    registry
        .register(s3_record("s3", "z", "http://a:9000", "k1"))
        .await
        .unwrap();
    let mut live = registry
        .watch_resolution(Selector::resource("s3"), Consumer::anywhere())
        .unwrap();
    assert_eq!(next_outcome(&mut live).await.unwrap().record().id, "s3");

    store.delete("s3", None).await.unwrap();
    let gone = next_outcome(&mut live).await.unwrap_err();
    assert_eq!(gone.kind(), ErrorKind::NoMatch, "{gone}");

    // While nothing matches, unrelated records do not repeat the error: the
    // next item is the recovery.
    let mut other = s3_record("other", "z", "http://x", "x");
    other.services[0].resource = "mlflow".into();
    store.put(other, PutMode::Create).await.unwrap();
    store
        .put(s3_record("s3", "z", "http://b:9000", "k2"), PutMode::Create)
        .await
        .unwrap();
    let back = next_outcome(&mut live).await.unwrap();
    assert_eq!(back.endpoint().url, "http://b:9000");
    assert_eq!(key_of(&back), "k2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_resolution_ends_with_the_registry_and_checks_its_selector() {
    use futures_util::StreamExt;
    let registry = Registry::open(MemoryStore::new()).await.unwrap();
    let bad = Selector {
        version: Some("~>>1".into()),
        ..Selector::resource("s3")
    };
    let e = registry
        .watch_resolution(bad, Consumer::anywhere())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);

    let live = registry
        .watch_resolution(Selector::resource("s3"), Consumer::anywhere())
        .unwrap();
    let mut stream = Box::pin(live.into_stream());
    let first = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("the first item comes at once")
        .expect("the registry is open");
    assert_eq!(first.unwrap_err().kind(), ErrorKind::NoMatch);

    let live = registry
        .watch_resolution(Selector::resource("s3"), Consumer::anywhere())
        .unwrap();
    drop(registry);
    let end = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("the stream ends within 10 s of the registry being dropped");
    assert!(end.is_none(), "the stream ends: {end:?}");
    assert_eq!(live.current().unwrap_err().kind(), ErrorKind::Unavailable);
}
