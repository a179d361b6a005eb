//! `inferlink check`: every registered record against the connectors' key
//! checks, without calling any server.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use inferlink_testkit::keys::test_master_key_base64;

fn cli(store: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_inferlink"))
        .arg("--store")
        .arg(store)
        .args(args)
        .env_remove("INFERLINK_STORE")
        .env_remove("INFERLINK_KEY_FILE")
        .env("INFERLINK_MASTER_KEY", test_master_key_base64())
        .stdin(Stdio::null())
        .output()
        .expect("the inferlink binary runs")
}

fn register(store: &Path, dir: &Path, name: &str, yaml: &str) {
    let file = dir.join(name);
    std::fs::write(&file, yaml).unwrap();
    let out = cli(store, &["register", "-f", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const TRITON: &str = "id: triton-dev\nproduct: triton\nversion: \"2.51.0\"\nservices:\n  - id: v2\n    resource: inference-v2\n    category: prediction-serving\n    configuration:\n      KEY: value\n      timeout_request_ms: \"5000\"\n    endpoints:\n      - url: http://127.0.0.1:9\n";

#[test]
fn a_typo_in_a_connector_key_is_reported_with_the_nearest_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("registry.db");
    register(&store, dir.path(), "triton.yaml", TRITON);
    register(
        &store,
        dir.path(),
        "s3.yaml",
        "id: minio\nproduct: minio\nversion: \"1\"\nservices:\n  - id: s3\n    resource: s3\n    category: object-storage\n    endpoints:\n      - url: http://127.0.0.1:9000\n",
    );
    // Clean records: every target passes, the S3 store is not a model server.
    let out = cli(&store, &["check"]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("triton-dev") && stdout.contains(" ok"),
        "{stdout}"
    );
    assert!(stdout.contains("no connector serves it"), "{stdout}");

    // A typo: refused with the nearest key, exit 2, nothing called.
    let typo = TRITON
        .replace("triton-dev", "triton-typo")
        .replace("timeout_request_ms", "timeout_requst_ms");
    register(&store, dir.path(), "typo.yaml", &typo);
    let out = cli(&store, &["check", "--id", "triton-typo"]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stdout.contains("did you mean \"timeout_request_ms\"") || stderr.contains("did you mean"),
        "{stdout}{stderr}"
    );
}
