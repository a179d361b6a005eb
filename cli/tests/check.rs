//! `inferlink check`: every registered record against the connectors' key
//! checks, without calling any server; and `inferlink blueprint
//! list|show|check` (records that speak a blueprint are checked by both).

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
    let file = dir.path().join("typo.yaml");
    std::fs::write(&file, &typo).unwrap();
    // `register` refuses it (the connectors validate each record)…
    let out = cli(&store, &["register", "-f", file.to_str().unwrap()]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("timeout_requst_ms"), "{said}");
    assert!(
        said.contains("did you mean \"timeout_request_ms\""),
        "{said}"
    );
    let out = cli(&store, &["get", "triton-typo"]);
    assert!(!out.status.success(), "{}", text(&out));
    // …`import` (a store written elsewhere, or before) does not: `check` finds it.
    let out = cli(&store, &["import", "-f", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let out = cli(&store, &["check", "--id", "triton-typo"]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stdout.contains("did you mean \"timeout_request_ms\"") || stderr.contains("did you mean"),
        "{stdout}{stderr}"
    );
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn shipped_blueprints_are_listed_and_shown() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("registry.db");
    let out = cli(&store, &["blueprint", "list"]);
    assert!(out.status.success(), "{}", text(&out));
    let listing = text(&out);
    for name in inferlink_blueprint::SHIPPED.iter().map(|s| s.name) {
        assert!(listing.contains(name), "{name}: {listing}");
    }
    assert!(
        listing.contains("embed, rerank") && listing.contains("https://docs.cohere.com"),
        "{listing}"
    );
    let out = cli(&store, &["blueprint", "show", "tei-native"]);
    assert!(
        out.status.success() && text(&out).contains("path: rerank"),
        "{}",
        text(&out)
    );
    let out = cli(&store, &["blueprint", "show", "no-such"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("tei-native"));
    assert!(!store.exists(), "no registry is opened");
}

#[test]
fn blueprint_files_are_checked_with_the_path_of_each_problem() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("registry.db");
    let good = dir.path().join("good.yaml");
    let shipped = inferlink_blueprint::SHIPPED
        .iter()
        .find(|s| s.name == "cohere")
        .unwrap();
    std::fs::write(&good, shipped.text).unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, shipped.text.replace("${texts}", "${txts}")).unwrap();
    let out = cli(&store, &["blueprint", "check", good.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("ok: cohere (embed, rerank)"),
        "{}",
        text(&out)
    );
    let out = cli(
        &store,
        &[
            "blueprint",
            "check",
            good.to_str().unwrap(),
            bad.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("blueprint.actions.embed.body.texts") && said.contains("txts"),
        "{said}"
    );
    assert!(said.contains("1 of 2 blueprint file(s) refused"), "{said}");
}

#[test]
fn registered_records_speaking_a_blueprint_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("registry.db");
    let record = |id: &str, extra: &str| {
        format!(
            "id: {id}\nproduct: cohere\nversion: \"2\"\nservices:\n  - id: api\n    resource: embeddings\n    \
             category: text-embedding\n    configuration:\n      input_type: search_query\n{extra}    \
             credentials:\n      - id: key\n        scope: global\n        configuration:\n          \
             api_key: co-secret-77aa\n    endpoints:\n      - url: http://127.0.0.1:9\n"
        )
    };
    let file = dir.path().join("records.yaml");
    let records = [
        record("cohere-ok", ""),
        record("cohere-typo", "      input_typ: search_query\n"),
    ];
    std::fs::write(&file, records.join("---\n")).unwrap();
    // `register` refuses the batch (all or none) for the typo…
    let out = cli(&store, &["register", "-f", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("input_typ"), "{}", text(&out));
    assert!(!text(&out).contains("co-secret-77aa"), "{}", text(&out));
    // …`import` takes both; `check` tells them apart.
    let out = cli(&store, &["import", "-f", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let out = cli(&store, &["check"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("did you mean \"input_type\""), "{said}");
    assert!(
        said.lines()
            .any(|l| l.contains("cohere-ok") && l.contains(" ok")),
        "{said}"
    );
    assert!(!said.contains("co-secret-77aa"), "{said}");
}
