//! Record validators: a registry given the connectors refuses, when a
//! record is registered, what its connector would refuse at connect time
//! (a blueprint naming an unknown parameter, an unknown key), with the path.

use inferlink::format;
use inferlink::{
    Connectors, ErrorKind, ExtensionRecord, ListFilter, MemoryStore, PutMode, Registry, WriteOp,
};

fn record(text: &str) -> ExtensionRecord {
    let mut records = format::parse_records(text).unwrap();
    assert_eq!(records.len(), 1);
    records.remove(0)
}

/// A `product: http` record whose `blueprint` key holds `blueprint`
/// (indented as a block under the key).
fn http_record(id: &str, blueprint: &str) -> String {
    format!(
        "id: {id}\nproduct: http\nservices:\n  - id: api\n    resource: embeddings\n    \
         configuration:\n      blueprint: {blueprint}\n    endpoints:\n      - url: http://127.0.0.1:9\n"
    )
}

/// An inline blueprint whose body fills `input` from `${textz}`, a
/// parameter no `embed` call has.
const UNKNOWN_PARAMETER_BLUEPRINT: &str = "|
        name: acme-embed
        title: ACME embeddings
        documentation: https://docs.acme.example/embed
        actions:
          embed:
            path: embed
            body:
              input: ${textz}
            response:
              vectors: data[*].embedding";

fn unknown_parameter() -> ExtensionRecord {
    record(&http_record("bad-blueprint", UNKNOWN_PARAMETER_BLUEPRINT))
}

fn good() -> ExtensionRecord {
    record(&http_record("good-blueprint", "tei-native"))
}

/// A shipped blueprint (by product), and a key neither it nor the transport reads.
const UNKNOWN_KEY: &str = "id: typo-key\nproduct: cohere\nservices:\n  - id: api\n    \
    configuration:\n      input_typ: search_document\n    endpoints:\n      - url: http://127.0.0.1:9\n";

async fn validated() -> Registry {
    let connectors = Connectors::new().with(inferlink_blueprint::factory());
    Registry::open(MemoryStore::new())
        .await
        .unwrap()
        .with_validator(connectors)
}

#[tokio::test]
async fn a_blueprint_naming_an_unknown_parameter_is_refused_at_registration_with_its_path() {
    let registry = validated().await;
    let e = registry.register(unknown_parameter()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert_eq!(e.path(), Some("blueprint.actions.embed.body.input"), "{e}");
    assert!(e.message().contains("textz"), "{e}");
    assert_eq!(e.context("record"), Some("bad-blueprint"));
    assert_eq!(e.context("service"), Some("api"));
    assert!(registry.get("bad-blueprint").is_none());
    assert!(registry.list(&ListFilter::all()).is_empty());
    assert!(
        registry
            .store()
            .get("bad-blueprint")
            .await
            .unwrap()
            .is_none()
    );

    let revision = registry.register(good()).await.unwrap();
    assert!(revision > 0);
    assert!(registry.get("good-blueprint").is_some());
}

#[tokio::test]
async fn an_unknown_key_is_refused_with_the_nearest_known_one() {
    let registry = validated().await;
    let e = registry.register(record(UNKNOWN_KEY)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert_eq!(e.path(), Some("input_typ"), "{e}");
    assert!(e.message().contains("input_type"), "{e}");
    assert!(registry.get("typo-key").is_none());
}

#[tokio::test]
async fn a_refused_record_stops_the_whole_batch_and_every_write_path_checks() {
    let registry = validated().await;
    let batch = vec![good(), unknown_parameter()];
    let e = registry.put_all(batch, PutMode::Create).await.unwrap_err();
    assert_eq!(e.path(), Some("blueprint.actions.embed.body.input"));
    assert!(registry.list(&ListFilter::all()).is_empty());

    let text = format!(
        "{}---\n{}",
        http_record("good-blueprint", "tei-native"),
        http_record("bad-blueprint", UNKNOWN_PARAMETER_BLUEPRINT)
    );
    assert!(registry.register_yaml(&text).await.is_err());
    assert!(registry.upsert(unknown_parameter()).await.is_err());
    let ops = vec![
        WriteOp::Put(good(), PutMode::Create),
        WriteOp::Put(record(UNKNOWN_KEY), PutMode::Create),
    ];
    assert_eq!(
        registry.write_all(ops).await.unwrap_err().path(),
        Some("input_typ")
    );
    assert!(registry.list(&ListFilter::all()).is_empty());
}

#[tokio::test]
async fn a_factory_with_its_own_connect_checks_keys_at_registration_too() {
    let connectors = Connectors::new().with(inferlink_kserve::factory());
    let registry = Registry::open(MemoryStore::new())
        .await
        .unwrap()
        .with_validator(connectors);
    let typo = UNKNOWN_KEY
        .replace("product: cohere", "product: kserve")
        .replace("input_typ: search_document", "timeout_requst_ms: \"5000\"");
    let e = registry.register(record(&typo)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert_eq!(e.path(), Some("timeout_requst_ms"), "{e}");
    assert_eq!(e.vendor(), Some("kserve"), "{e}");
    let fixed = typo.replace("timeout_requst_ms", "timeout_request_ms");
    registry.register(record(&fixed)).await.unwrap();
}

#[tokio::test]
async fn without_validators_the_registry_stores_what_it_stored_before() {
    let registry = Registry::open(MemoryStore::new()).await.unwrap();
    registry.register(unknown_parameter()).await.unwrap();
    assert!(registry.get("bad-blueprint").is_some());
    // Records no linked factory serves pass a validating registry too.
    let registry = validated().await;
    let other = UNKNOWN_KEY.replace("product: cohere", "product: kserve");
    registry.register(record(&other)).await.unwrap();
}
