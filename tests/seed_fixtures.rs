//! Every example record and selector of FuseML's extension-registry page
//! (seed 004) parses and resolves as the page describes.

use std::path::Path;

use inferlink::format::{self, Secrets};
use inferlink::{Consumer, ErrorKind, MemoryStore, Registry, Scope, Selector, WorkflowStep};

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/seed004")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The seed's records that carry real values (the first example uses `<hidden>` on purpose).
const RECORDS: &[&str] = &[
    "mlflow-0001.yaml",
    "mlflow-model-store-0001.yaml",
    "gitea-devel-rd.yaml",
    "minio-s3-storage.yaml",
    "aws-object-storage.yaml",
    "kserve-local.yaml",
    "seldon-core-production.yaml",
];

async fn seeded() -> Registry {
    let registry = Registry::open(MemoryStore::new()).await.unwrap();
    for name in RECORDS {
        registry
            .register_yaml(&fixture(name))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    registry
}

#[test]
fn every_seed_record_parses_with_its_fields() {
    for name in RECORDS {
        let records = format::parse_records(&fixture(name)).unwrap();
        assert_eq!(records.len(), 1, "{name}");
    }
    let seldon = &format::parse_records(&fixture("seldon-core-production.yaml")).unwrap()[0];
    assert_eq!(seldon.zone, "production-cluster-001");
    let api = &seldon.services[0];
    assert_eq!(
        api.configuration["INSECURE"], "False",
        "scalar text is kept"
    );
    assert_eq!(api.credentials[0].scope, Scope::Project);
    assert_eq!(api.credentials[1].users, vec!["alainturing"]);
    let gitea = &format::parse_records(&fixture("gitea-devel-rd.yaml")).unwrap()[0];
    assert_eq!(gitea.services[0].resource, "git+https");
}

#[tokio::test]
async fn the_hidden_placeholder_record_is_rejected_on_create() {
    // The page's first example shows credentials as `<hidden>`, as FuseML's API displays them.
    let registry = Registry::open(MemoryStore::new()).await.unwrap();
    let err = registry
        .register_yaml(&fixture("mlflow.yaml"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(
        err.path(),
        Some("services[1].credentials[0].configuration.AWS_ACCESS_KEY_ID")
    );
}

const EXPLICIT_STEP: &str = r#"
name: trainer
extensions:
  - name: experiment-tracking
    extension_id: mlflow-0001
    service_id: mlflow-tracking
  - name: artifact-store
    extension_id: mlflow-0001
    service_id: mlflow-store
"#;

#[tokio::test]
async fn selector_example_1_gives_exactly_the_four_variables() {
    let registry = seeded().await;
    let step = WorkflowStep::parse(EXPLICIT_STEP).unwrap();
    // The workflow runs in the MLflow record's zone, so internal endpoints are chosen.
    let env = registry
        .step_environment(&step, &Consumer::in_zone("cluster-alpha"))
        .unwrap();
    let vars: Vec<(&str, &str)> = env.exposed().collect();
    assert_eq!(
        vars,
        vec![
            ("AWS_ACCESS_KEY_ID", "24oT0SfbJPEu6kUbUKsH"),
            (
                "AWS_SECRET_ACCESS_KEY",
                "cMGiZff8KqS5xWQ4eagRujh1tDcbQyRP0bEJSBOf"
            ),
            ("MLFLOW_S3_ENDPOINT_URL", "http://mlflow-minio.mlflow:9000"),
            ("MLFLOW_TRACKING_URI", "http://mlflow.mlflow"),
        ]
    );
    let shown = env.to_lines(Secrets::Hide);
    assert!(shown.contains("AWS_SECRET_ACCESS_KEY=<hidden>"), "{shown}");
    assert!(!shown.contains("cMGiZff8"), "{shown}");
}

#[tokio::test]
async fn outside_the_zone_the_external_endpoints_are_chosen() {
    let registry = seeded().await;
    let step = WorkflowStep::parse(EXPLICIT_STEP).unwrap();
    let env = registry
        .step_environment(&step, &Consumer::anywhere())
        .unwrap();
    assert_eq!(
        env.get("MLFLOW_TRACKING_URI").unwrap().expose(),
        "http://mlflow.10.110.120.130.nip.io"
    );
    assert_eq!(
        env.get("MLFLOW_S3_ENDPOINT_URL").unwrap().expose(),
        "http://minio.10.110.120.130.nip.io"
    );
}

#[tokio::test]
async fn selector_example_2_kserve_version_constraint_explains_the_miss() {
    let registry = seeded().await;
    let selector = Selector {
        name: Some("kserve".into()),
        product: Some("kserve".into()),
        service_resource: Some("kserve-api".into()),
        version: Some("~1.10.0".into()),
        ..Default::default()
    };
    let err = registry
        .resolve(&selector, &Consumer::in_zone("cluster.local"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoMatch);
    let msg = err.to_string();
    assert!(
        msg.contains("1 record passes \"product = kserve\""),
        "{msg}"
    );
    assert!(msg.contains("version ~1.10.0"), "{msg}");
    assert!(msg.contains("have 0.7.0"), "{msg}");

    // Version satisfied, but the seed record's resource is spelled `kfserve-api`.
    let relaxed = Selector {
        version: Some("~0.7".into()),
        ..selector.clone()
    };
    let err = registry
        .resolve(&relaxed, &Consumer::in_zone("cluster.local"))
        .unwrap_err();
    assert!(
        err.to_string().contains("service_resource = kserve-api"),
        "{err}"
    );
    let found = registry
        .resolve(
            &Selector {
                service_resource: Some("kfserve-api".into()),
                ..relaxed
            },
            &Consumer::in_zone("cluster.local"),
        )
        .unwrap();
    assert_eq!(found.endpoint().url, "https://kubernetes.default.svc");
}

#[tokio::test]
async fn selector_example_3_minimal_reference_by_resource_follows_the_zone() {
    let registry = seeded().await;
    let s3 = Selector::resource("s3");
    // In the development cluster, the minio record is local: its internal endpoint wins.
    let dev = registry
        .resolve(&s3, &Consumer::in_zone("development-cluster"))
        .unwrap();
    assert_eq!(dev.record().id, "minio-s3-storage");
    assert_eq!(dev.endpoint().url, "http://minio.minio:9000");
    // In cluster-alpha, the two mlflow-zone S3 services are local; ids break the tie.
    let alpha = registry
        .resolve(&s3, &Consumer::in_zone("cluster-alpha"))
        .unwrap();
    assert_eq!(alpha.record().id, "mlflow-0001");
    assert_eq!(alpha.endpoint().url, "http://mlflow-minio.mlflow:9000");
    // In AWS's region, AWS S3 is the local one.
    let aws = registry
        .resolve(&s3, &Consumer::in_zone("eu-central-1"))
        .unwrap();
    assert_eq!(aws.record().id, "aws-object-storage");
    // Everything else is ranked after, and only external endpoints appear for a zone-less consumer.
    let all = registry.resolve_all(&s3, &Consumer::anywhere()).unwrap();
    assert!(
        all.iter()
            .all(|r| r.endpoint().endpoint_type.as_str() == "external")
    );
    let ids: Vec<&str> = all.iter().map(|r| r.record().id.as_str()).collect();
    assert_eq!(
        ids,
        vec![
            "aws-object-storage",
            "minio-s3-storage",
            "mlflow-0001",
            "mlflow-model-store-0001"
        ]
    );
}

#[tokio::test]
async fn selector_example_4_expressions_map_new_names() {
    let registry = seeded().await;
    let step = WorkflowStep::parse(
        r#"
name: trainer
extensions:
  - name: experiment-tracking
    product: mlflow
    service_resource: mlflow-tracking
  - name: artifact-store
    product: mlflow
    service_resource: s3
env:
  - name: S3_ACCESS_KEY_ID
    value: '{{ extension.artifact-store.cfg.AWS_ACCESS_KEY_ID }}'
  - name: S3_SECRET_ACCESS_KEY
    value: '{{ extension.artifact-store.cfg.AWS_SECRET_ACCESS_KEY }}'
  - name: MLFLOW_TRACKER_URL
    value: '{{ extension.experiment-tracking.url }}'
  - name: MLFLOW_TRACKER_VERSION
    value: '{{extensions.experiment-tracking.version}}'
  - name: MLFLOW_TRACKER_ZONE
    value: '{{   extension.experiment-tracking.zone   }}'
"#,
    )
    .unwrap();
    let env = registry
        .step_environment(&step, &Consumer::in_zone("cluster-alpha"))
        .unwrap();
    assert_eq!(
        env.get("S3_ACCESS_KEY_ID").unwrap().expose(),
        "24oT0SfbJPEu6kUbUKsH"
    );
    assert!(env.get("S3_SECRET_ACCESS_KEY").unwrap().is_secret());
    assert_eq!(
        env.get("MLFLOW_TRACKER_URL").unwrap().expose(),
        "http://mlflow.mlflow"
    );
    assert_eq!(
        env.get("MLFLOW_TRACKER_VERSION").unwrap().expose(),
        "1.19.0"
    );
    assert_eq!(
        env.get("MLFLOW_TRACKER_ZONE").unwrap().expose(),
        "cluster-alpha"
    );
    assert!(!env.get("MLFLOW_TRACKER_URL").unwrap().is_secret());
    assert_eq!(env.len(), 9);
}

#[tokio::test]
async fn selector_example_5_unknown_references_are_errors_with_position() {
    let registry = seeded().await;
    let step = WorkflowStep::parse(
        r#"
extensions:
  - name: artifact-store
    service_resource: s3
env:
  - name: S3_URL
    value: 'url={{ extension.artifact-store.url }}'
  - name: BAD
    value: 'x {{ extension.artefact-store.url }}'
"#,
    )
    .unwrap();
    let err = registry
        .step_environment(&step, &Consumer::in_zone("development-cluster"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(err.path(), Some("env[1].value"));
    assert!(err.message().contains("at byte 2"), "{err}");
    assert!(
        err.message()
            .contains("unknown extension selector \"artefact-store\""),
        "{err}"
    );
}

#[tokio::test]
async fn seldon_credentials_follow_project_and_user_scopes() {
    let registry = seeded().await;
    let sel = Selector {
        product: Some("seldon".into()),
        service_category: Some("prediction-serving".into()),
        ..Default::default()
    };
    // No project: both credential sets are scoped, so nothing is eligible... but the service
    // does not require auth, so it resolves without credentials.
    let none = registry.resolve(&sel, &Consumer::anywhere()).unwrap();
    assert!(none.credentials().is_none());
    let alpha = registry
        .resolve(&sel, &Consumer::anywhere().with_project("alpha"))
        .unwrap();
    assert_eq!(alpha.credentials().unwrap().id, "project-alpha");
    // The user-scoped set is narrower than the project-scoped one.
    let turing = registry
        .resolve(
            &sel,
            &Consumer::anywhere()
                .with_project("alpha")
                .with_user("alainturing"),
        )
        .unwrap();
    assert_eq!(turing.credentials().unwrap().id, "user-alainturing");
    // In project beta only the user set applies, and only for that user.
    let beta = registry
        .resolve(
            &sel,
            &Consumer::anywhere()
                .with_project("beta")
                .with_user("alainturing"),
        )
        .unwrap();
    assert_eq!(beta.credentials().unwrap().id, "user-alainturing");
    let other = registry
        .resolve(
            &sel,
            &Consumer::anywhere().with_project("beta").with_user("bob"),
        )
        .unwrap();
    assert!(other.credentials().is_none());
    // The portable selector also finds KServe on an installation that has it.
    let portable = registry
        .resolve_all(
            &Selector::category("prediction-serving"),
            &Consumer::in_zone("cluster.local"),
        )
        .unwrap();
    assert_eq!(portable[0].record().id, "kserve-local");
}

#[tokio::test]
async fn selector_example_5_expressions_in_inputs_are_expanded() {
    // FuseML expanded step inputs without the extension references, giving empty strings.
    let registry = seeded().await;
    let step = WorkflowStep::parse(
        r#"
name: trainer
inputs:
  - name: s3_access_key
    value: '{{ extension.artifact-store.cfg.AWS_ACCESS_KEY_ID }}'
  - name: s3_secret_access_key
    value: '{{ extension.artifact-store.cfg.AWS_SECRET_ACCESS_KEY }}'
  - name: s3_endpoint_url
    value: '{{ extension.artifact-store.url }}'
  - name: dataset
    codeset:
      name: mlflow-app-01
      path: /project
extensions:
  - name: artifact-store
    service_resource: s3
"#,
    )
    .unwrap();
    let env = registry
        .step_environment(&step, &Consumer::in_zone("development-cluster"))
        .unwrap();
    assert_eq!(
        env.get("FUSEML_S3_ACCESS_KEY").unwrap().expose(),
        "24oT0SfbJPEu6kUbUKsH"
    );
    assert!(env.get("FUSEML_S3_SECRET_ACCESS_KEY").unwrap().is_secret());
    assert_eq!(
        env.get("FUSEML_S3_ENDPOINT_URL").unwrap().expose(),
        "http://minio.minio:9000"
    );
    assert_eq!(env.get("FUSEML_DATASET").unwrap().expose(), "");
}
