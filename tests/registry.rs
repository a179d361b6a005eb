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
