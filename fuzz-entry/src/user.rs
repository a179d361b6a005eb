//! Decoders of data from a user: records and import files, workflow steps,
//! `{{ }}` expressions and version constraints.

use std::sync::{Arc, OnceLock};

use inferlink::format::{self, Format, ParseLimits, Secrets};
use inferlink::import::{ImportItem, ImportOptions, ImportPlan};
use inferlink::resolve::resolve_in;
use inferlink::store::{Listing, StoredRecord};
use inferlink::version::{Constraint, Version, VersionRequirement};
use inferlink::{Consumer, Resolution, Selector, WorkflowStep};

/// Two valid records (an MLflow and a MinIO extension) that steps and expressions resolve against.
const FIXTURE_RECORDS: &str = include_str!("../fixtures/records.yaml");

fn fixture_records() -> &'static [Arc<StoredRecord>] {
    static RECORDS: OnceLock<Vec<Arc<StoredRecord>>> = OnceLock::new();
    RECORDS.get_or_init(|| {
        format::parse_records(FIXTURE_RECORDS)
            .expect("the fixture records are valid")
            .into_iter()
            .zip(1..)
            .map(|(record, revision)| Arc::new(StoredRecord { record, revision }))
            .collect()
    })
}

fn fixture_resolutions() -> &'static [(String, Resolution)] {
    static RESOLUTIONS: OnceLock<Vec<(String, Resolution)>> = OnceLock::new();
    RESOLUTIONS.get_or_init(|| {
        let consumer = Consumer::anywhere();
        [
            ("tracking", "mlflow-0001", "mlflow-tracking"),
            ("store", "mlflow-0001", "mlflow-store"),
            ("s3", "minio-s3-storage", "s3"),
        ]
        .into_iter()
        .map(|(name, extension, service)| {
            let selector = Selector::service(extension, service);
            let found = resolve_in(fixture_records(), &selector, &consumer)
                .expect("the fixture selectors resolve");
            (name.to_owned(), found)
        })
        .collect()
    })
}

/// Records (YAML or JSON, as `inferlink import`, `add` and `validate` read
/// them), then an import plan of the parsed records against a store holding
/// the fixture records (with pruning), and a YAML round trip of what parsed.
pub fn records(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let limits = ParseLimits::default();
    let _ = format::parse_records_as(text, Format::Json, &limits);
    let Ok(parsed) = format::parse_records_as(text, Format::Yaml, &limits) else {
        return;
    };
    let items = parsed
        .iter()
        .cloned()
        .map(|record| ImportItem::new(record, "fuzz.yaml"))
        .collect();
    let listing = Listing {
        records: fixture_records().iter().map(|r| (**r).clone()).collect(),
        revision: 2,
    };
    let _ = ImportPlan::new(items, &listing, ImportOptions { prune: true });
    let _ = format::records_to_yaml(&parsed, Secrets::Hide);
}

/// A workflow step (YAML or JSON), resolved against the fixture records and
/// written out as environment lines; and the same text expanded as a value
/// with `{{ }}` expressions (see [`expression`]).
pub fn workflow_step(data: &[u8]) {
    expression(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(step) = WorkflowStep::parse(text) else {
        return;
    };
    let consumer = Consumer::anywhere();
    if let Ok(environment) =
        step.resolve_with(|selector| resolve_in(fixture_records(), selector, &consumer))
    {
        let _ = environment.to_lines(Secrets::Hide);
    }
}

/// A text with `{{ extension.NAME.FIELD }}` expressions, expanded against
/// three fixture resolutions named `tracking`, `store` and `s3` (part of the
/// `workflow_step` target: step values are where expressions occur).
pub fn expression(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(value) = inferlink::env::expand(text, fixture_resolutions()) {
        // Each expression is at least `{{}}` (4 bytes) and yields one fixture value.
        assert!(
            value.expose().len() <= text.len() * 64 + 64,
            "an expansion out of proportion to its text"
        );
    }
}

/// Version constraints: the first line is a requirement (as in a selector's
/// `version`), the second a version; each is also parsed on its own.
pub fn version(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.splitn(2, '\n');
    let requirement_text = lines.next().unwrap_or_default();
    let version_text = lines.next().unwrap_or_default();
    let _ = Constraint::parse(requirement_text);
    let parsed_version = Version::parse(version_text);
    if let Ok(requirement) = VersionRequirement::parse(requirement_text) {
        let _ = requirement.matches(version_text);
        let _ = requirement.as_str();
    }
    if let (Ok(constraint), Ok(v)) = (Constraint::parse(requirement_text), parsed_version) {
        let _ = constraint.matches(&v);
        let _ = (v.major(), v.prerelease(), v.build());
    }
}
