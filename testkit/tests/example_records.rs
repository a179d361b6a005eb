//! Every connector example's record file (`connectors/*/examples/*.yaml`)
//! is a record the registry accepts once its placeholders are filled, so a
//! user who copies one starts from a valid record.

use std::path::Path;

use inferlink::{MemoryStore, Registry};
use inferlink_testkit::example::{fill_record, record_placeholders};

/// A loopback URL for `{url}`-like placeholders, a word for the others.
fn sample_value(placeholder: &str) -> &'static str {
    if placeholder == "url" || placeholder.ends_with("_url") || placeholder == "management" {
        "http://127.0.0.1:9"
    } else {
        "sample"
    }
}

#[tokio::test]
async fn every_example_record_file_registers() {
    let connectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("../connectors");
    let mut checked = Vec::new();
    for crate_dir in std::fs::read_dir(&connectors).unwrap() {
        let examples = crate_dir.unwrap().path().join("examples");
        let Ok(files) = std::fs::read_dir(&examples) else {
            continue;
        };
        for file in files {
            let path = file.unwrap().path();
            if path.extension().is_none_or(|e| e != "yaml") {
                continue;
            }
            let template = std::fs::read_to_string(&path).unwrap();
            let names = record_placeholders(&template);
            assert!(names.contains(&"url"), "{}: no {{url}}", path.display());
            let values: Vec<(&str, &str)> = names.iter().map(|n| (*n, sample_value(n))).collect();
            let record = fill_record(&template, &values).unwrap();
            let registry = Registry::open(MemoryStore::new()).await.unwrap();
            registry
                .register_yaml(&record)
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            checked.push(path);
        }
    }
    assert!(checked.len() >= 7, "found only {checked:?}");
}
