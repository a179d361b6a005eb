//! Watch across processes: a `Registry` in this test process follows records
//! that the `inferlink` binary (another process) writes to the same SQLite
//! file, without a restart, and a `LiveResolution` yields each change.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use inferlink::{Consumer, ErrorKind, LiveResolution, Registry, Resolution, Result, Selector};
use inferlink_testkit::keys::{open_keyed_sqlite, test_master_key_base64};

/// How long a change made by the CLI may take to reach this process.
const WAIT: Duration = Duration::from_secs(10);

/// An S3 record as an operator would write it.
fn minio(url: &str, key: &str) -> String {
    format!(
        "id: minio-s3\nproduct: minio\nversion: \"4.1.3\"\nservices:\n  - id: s3\n    resource: s3\n    category: object-storage\n    endpoints:\n      - url: {url}\n    credentials:\n      - id: ops\n        configuration:\n          AWS_ACCESS_KEY_ID: ops\n          AWS_SECRET_ACCESS_KEY: {key}\n"
    )
}

/// Runs `inferlink --store STORE ARGS…` to completion (off the async threads); asserts success.
async fn cli(store: &Path, args: &[&str]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_inferlink"));
    cmd.arg("--store")
        .arg(store)
        .args(args)
        .env_remove("INFERLINK_STORE")
        .env_remove("INFERLINK_KEY_FILE")
        // The same master key the test's own store uses (credential values are encrypted).
        .env("INFERLINK_MASTER_KEY", test_master_key_base64())
        .stdin(Stdio::null());
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("the inferlink binary runs"))
        .await
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        out.status.success(),
        "inferlink {args:?} failed ({}):\n{stdout}{stderr}",
        out.status
    );
    stdout
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The next outcome of `live`, within [`WAIT`].
async fn next(live: &mut LiveResolution, what: &str) -> Result<Resolution> {
    match tokio::time::timeout(WAIT, live.next()).await {
        Ok(Some(outcome)) => outcome,
        Ok(None) => panic!("{what}: the live resolution ended while the registry is open"),
        Err(_) => panic!("{what}: the change made by the CLI did not arrive within {WAIT:?}"),
    }
}

fn secret_key(found: &Resolution) -> String {
    found
        .config_value("AWS_SECRET_ACCESS_KEY")
        .expect("the credential is resolved")
        .expose()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_follows_what_the_cli_writes_to_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("registry.db");
    // The host: a registry over the SQLite file, with the default poll interval.
    let registry = Registry::open(open_keyed_sqlite(&store).unwrap())
        .await
        .unwrap();
    assert!(registry.get("minio-s3").is_none());

    // The operator registers a record with the CLI, in another process.
    let a = write(dir.path(), "a.yaml", &minio("http://minio-a:9000", "key-1"));
    let out = cli(&store, &["register", "-f", a.to_str().unwrap()]).await;
    assert!(out.starts_with("registered minio-s3"), "{out}");

    // The host sees it without a restart.
    let seen = async {
        while registry.get("minio-s3").is_none() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(WAIT, seen).await.unwrap_or_else(|_| {
        panic!("the record registered by the CLI did not reach the registry within {WAIT:?}")
    });

    // A consumer follows the S3 resolution.
    let mut live = registry
        .watch_resolution(Selector::resource("s3"), Consumer::anywhere())
        .unwrap();
    let first = next(&mut live, "the current resolution").await.unwrap();
    assert_eq!(first.endpoint().url, "http://minio-a:9000");
    assert_eq!(secret_key(&first), "key-1");

    // The operator moves the endpoint and rotates the key, once, with the CLI.
    let b = write(dir.path(), "b.yaml", &minio("http://minio-b:9000", "key-2"));
    let out = cli(&store, &["register", "--upsert", "-f", b.to_str().unwrap()]).await;
    assert!(out.starts_with("updated minio-s3"), "{out}");
    let moved = next(&mut live, "the re-registered record").await.unwrap();
    assert_eq!(moved.endpoint().url, "http://minio-b:9000");
    assert_eq!(secret_key(&moved), "key-2");
    assert_eq!(
        registry
            .resolve(&Selector::resource("s3"), &Consumer::anywhere())
            .unwrap()
            .endpoint()
            .url,
        "http://minio-b:9000"
    );

    // Removed with the CLI: the consumer learns there is no S3 any more.
    cli(&store, &["unregister", "minio-s3"]).await;
    let gone = next(&mut live, "the unregistered record")
        .await
        .unwrap_err();
    assert_eq!(gone.kind(), ErrorKind::NoMatch, "{gone}");

    // And registered again: it recovers.
    cli(&store, &["register", "-f", a.to_str().unwrap()]).await;
    let back = next(&mut live, "the registered-again record")
        .await
        .unwrap();
    assert_eq!(back.endpoint().url, "http://minio-a:9000");
}
