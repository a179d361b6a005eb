//! A planted secret never appears in Debug, Display, default serialization,
//! error messages, resolutions, explanations or environments; it appears only
//! through the explicit reveal calls.

use inferlink::format::{self, Secrets};
use inferlink::{Consumer, ExtensionRecord, MemoryStore, Registry, Selector, WorkflowStep};

const PLANTED: &str = "PLANTED-s3cr3t-7f1c2e9a";

fn record_yaml() -> String {
    format!(
        r#"
id: vault
product: minio
version: "4.1.3"
zone: dev
configuration:
  REGION: eu
services:
  - id: s3
    resource: s3
    category: object-storage
    authrequired: true
    endpoints:
      - url: http://minio.dev:9000
        type: internal
    credentials:
      - id: ops
        scope: project
        projects: [alpha]
        configuration:
          AWS_SECRET_ACCESS_KEY: {PLANTED}
          TOKEN: "{PLANTED}"
"#
    )
}

fn assert_clean(what: &str, text: &str) {
    assert!(
        !text.contains(PLANTED),
        "{what} leaks the planted secret:\n{text}"
    );
}

#[tokio::test]
async fn the_planted_secret_never_leaks_without_an_explicit_reveal() {
    let records = format::parse_records(&record_yaml()).unwrap();
    let record: &ExtensionRecord = &records[0];

    // The record itself.
    assert_clean("Debug of the record", &format!("{record:?}"));
    assert_clean("pretty Debug of the record", &format!("{record:#?}"));
    assert_clean(
        "default JSON",
        &format::to_json(record, Secrets::Hide).unwrap(),
    );
    assert_clean(
        "default YAML",
        &format::to_yaml(record, Secrets::Hide).unwrap(),
    );
    assert_clean(
        "serde_json directly",
        &serde_json::to_string(record).unwrap(),
    );
    let creds = &record.services[0].credentials[0];
    let value = &creds.configuration["AWS_SECRET_ACCESS_KEY"];
    assert_clean("Display of the secret", &value.to_string());
    assert_clean("Debug of the secret", &format!("{value:?}"));

    // Registry, resolution, explanation.
    let registry = Registry::open(MemoryStore::new()).await.unwrap();
    registry.register(record.clone()).await.unwrap();
    assert_clean("Debug of the registry", &format!("{registry:?}"));
    let stored = registry.get("vault").unwrap();
    assert_clean("Debug of the stored record", &format!("{stored:?}"));
    let consumer = Consumer::in_zone("dev").with_project("alpha");
    let found = registry
        .resolve(&Selector::resource("s3"), &consumer)
        .unwrap();
    assert_clean("Debug of the resolution", &format!("{found:?}"));
    assert_clean("Display of the resolution", &found.to_string());
    assert_clean(
        "JSON of the resolution",
        &format::to_json(&found, Secrets::Hide).unwrap(),
    );
    assert_clean(
        "Debug of the merged configuration",
        &format!("{:?}", found.configuration()),
    );
    let explanation = registry
        .explain(&Selector::resource("s3"), &consumer)
        .unwrap();
    assert_clean("explanation", &explanation.to_string());
    assert_clean("Debug of the explanation", &format!("{explanation:?}"));

    // Errors: a no-match, a conflict and a validation error about the credentials.
    let miss = registry
        .resolve(&Selector::resource("s3"), &Consumer::in_zone("dev"))
        .unwrap_err();
    assert_clean("no-match error", &miss.to_string());
    assert_clean("Debug of the no-match error", &format!("{miss:?}"));
    let dup = registry.register(record.clone()).await.unwrap_err();
    assert_clean("already-exists error", &format!("{dup} {dup:?}"));
    let mut bad = record.clone();
    bad.services[0].credentials[0].scope = inferlink::Scope::Global;
    let invalid = registry.upsert(bad).await.unwrap_err();
    assert_clean("validation error", &format!("{invalid} {invalid:?}"));
    let nul = format!("{}\x00", PLANTED);
    let mut bad = record.clone();
    bad.services[0].credentials[0]
        .configuration
        .insert("NUL".into(), inferlink::Secret::new(nul));
    let invalid = registry.upsert(bad).await.unwrap_err();
    assert_clean("NUL-value error", &format!("{invalid} {invalid:?}"));

    // A workflow step that copies the secret through an expression.
    let step = WorkflowStep::parse(
        r#"
extensions:
  - name: store
    service_resource: s3
env:
  - name: COPIED
    value: 'key={{ extension.store.cfg.TOKEN }}'
"#,
    )
    .unwrap();
    let env = registry.step_environment(&step, &consumer).unwrap();
    assert_clean("Debug of the environment", &format!("{env:?}"));
    assert_clean("hidden env lines", &env.to_lines(Secrets::Hide));
    assert!(env.get("COPIED").unwrap().is_secret());
    let bad_step = WorkflowStep::parse(
        r#"
extensions:
  - name: store
    service_resource: s3
env:
  - name: X
    value: '{{ extension.store.cfg.NOPE }}'
"#,
    )
    .unwrap();
    let err = registry.step_environment(&bad_step, &consumer).unwrap_err();
    assert_clean("expression error", &format!("{err} {err:?}"));

    // The explicit reveals do show it.
    assert!(
        format::to_yaml(record, Secrets::Reveal)
            .unwrap()
            .contains(PLANTED)
    );
    assert!(
        env.to_lines(Secrets::Reveal)
            .contains(&format!("COPIED=key={PLANTED}"))
    );
    assert_eq!(value.expose(), PLANTED);
    assert_eq!(
        found
            .config_value("AWS_SECRET_ACCESS_KEY")
            .unwrap()
            .expose(),
        PLANTED
    );
}

#[tokio::test]
async fn hidden_placeholders_keep_stored_values_on_update() {
    let registry = Registry::open(MemoryStore::new()).await.unwrap();
    registry.register_yaml(&record_yaml()).await.unwrap();
    // What a user sees with secrets hidden can be edited and written back.
    let shown = format::to_yaml(&registry.get("vault").unwrap().record, Secrets::Hide).unwrap();
    assert!(shown.contains("<hidden>"));
    let mut edited = format::parse_records(&shown.replace("REGION: eu", "REGION: us"))
        .unwrap()
        .remove(0);
    assert!(edited.has_hidden_placeholders());
    registry.upsert(edited.clone()).await.unwrap();
    let stored = registry.get("vault").unwrap();
    assert_eq!(stored.record.configuration["REGION"], "us");
    let creds = &stored.record.services[0].credentials[0].configuration;
    assert_eq!(creds["AWS_SECRET_ACCESS_KEY"].expose(), PLANTED);
    // A new real value replaces the stored one.
    edited.services[0].credentials[0]
        .configuration
        .insert("TOKEN".into(), "rotated".into());
    registry.upsert(edited).await.unwrap();
    let creds = &registry.get("vault").unwrap().record.services[0].credentials[0].configuration;
    assert_eq!(creds["TOKEN"].expose(), "rotated");
    assert_eq!(creds["AWS_SECRET_ACCESS_KEY"].expose(), PLANTED);
}
