//! Embedding the registry in a host: open the durable store, register
//! records, resolve selectors for different consumers, build a step's
//! environment. Run with `cargo run --example registry_basics`.

use std::sync::Arc;

use inferlink::crypto::MasterKey;
use inferlink::format::Secrets;
use inferlink::store::SqliteOptions;
use inferlink::{
    Consumer, ErrorKind, Registry, Selector, SqliteStore, StaticKeyProvider, WorkflowStep,
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> inferlink::Result<()> {
    // A throwaway registry file; a host would keep one under its data directory.
    let dir = std::env::temp_dir().join(format!("inferlink-example-{}", std::process::id()));
    // Credential values are encrypted at rest under a key-encryption key. A
    // host would use `inferlink::crypto::default_key_provider()?` (the
    // INFERLINK_MASTER_KEY variable or a key file made by `inferlink keys
    // init`); this example makes a throwaway key.
    let key = StaticKeyProvider::new(MasterKey::generate()?);
    let options = SqliteOptions::default().with_key_provider(Arc::new(key));
    let registry =
        Registry::open(SqliteStore::open_with(dir.join("registry.db"), options)?).await?;

    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/seed004");
    for name in [
        "mlflow-0001",
        "minio-s3-storage",
        "kserve-local",
        "seldon-core-production",
    ] {
        let text = std::fs::read_to_string(format!("{fixtures}/{name}.yaml"))
            .map_err(|e| inferlink::Error::invalid(format!("{name}.yaml: {e}")))?;
        registry.register_yaml(&text).await?;
    }

    // The same portable selector, asked from two places.
    let serving = Selector::category("prediction-serving");
    for consumer in [
        Consumer::in_zone("cluster.local"),
        Consumer::anywhere().with_project("alpha"),
    ] {
        let found = registry.resolve(&serving, &consumer)?;
        println!("{consumer:?}\n  -> {found}");
    }

    // A miss says which filter removed the last candidates.
    let strict = Selector {
        product: Some("kserve".into()),
        version: Some("~1.10.0".into()),
        ..Default::default()
    };
    match registry.resolve(&strict, &Consumer::anywhere()) {
        Err(e) if e.kind() == ErrorKind::NoMatch => println!("no match: {e}"),
        other => println!("unexpected: {other:?}"),
    }

    // A workflow step's environment, secrets hidden.
    let step = WorkflowStep::parse(include_str!("steps/trainer.yaml"))?;
    let env = registry.step_environment(&step, &Consumer::in_zone("cluster-alpha"))?;
    print!("{}", env.to_lines(Secrets::Hide));

    drop(registry);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
