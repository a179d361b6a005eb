//! Shared helpers of the SageMaker tests: the botocore peer, records, servers.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::sync::Arc;

use inferlink::{Connectors, InferenceConnector, Selector};
use inferlink_testkit::live;
use inferlink_testkit::servers::{self, RunningServer, ServerKind};
use serde_json::Value;

/// The interpreter of the `moto` venv (botocore, moto), or `None` after a
/// visible skip line when it is not installed and live peers are not required.
pub fn peer_python() -> Option<PathBuf> {
    inferlink_testkit::peer::venv_python(ServerKind::Moto)
}

/// Runs `aws_peer.py COMMAND` with `request` as JSON on stdin.
pub fn peer(python: &std::path::Path, command: &str, request: &Value) -> Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/aws_peer.py");
    inferlink_testkit::peer::run_json(python, &script, command, request)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The shared server of `kind`, started off the async runtime.
pub async fn server(kind: ServerKind) -> Option<&'static RunningServer> {
    tokio::task::spawn_blocking(move || servers::shared_or_skip(kind))
        .await
        .expect("starting the server")
}

/// A connector built from a SageMaker record through `Connectors::connect`:
/// `configuration` lines go under the service, `credentials` lines (if any)
/// into one global credential set.
pub async fn connect(
    url: &str,
    configuration: &[(&str, &str)],
    credentials: &[(&str, &str)],
) -> inferlink::Result<Arc<dyn InferenceConnector>> {
    let lines = |pairs: &[(&str, &str)], indent: &str| -> String {
        pairs
            .iter()
            .map(|(k, v)| format!("{indent}{k}: {}\n", serde_json::to_string(v).unwrap()))
            .collect()
    };
    let mut yaml = format!(
        "id: sagemaker-test\nproduct: sagemaker\nversion: \"1\"\nservices:\n  - id: runtime\n    \
         resource: sagemaker-runtime\n    category: prediction-serving\n    configuration:\n      \
         deadline_ms: \"60000\"\n{}    endpoints:\n      - url: {url}\n",
        lines(configuration, "      ")
    );
    if !credentials.is_empty() {
        yaml.push_str(&format!(
            "    credentials:\n      - id: aws\n        scope: global\n        configuration:\n{}",
            lines(credentials, "          ")
        ));
    }
    let resolution = live::resolve_record(&yaml, &Selector::resource("sagemaker-runtime")).await;
    Connectors::new()
        .with(inferlink_sagemaker::factory())
        .connect(&resolution)
        .await
}

/// Temporary credentials moto's STS issues for the launcher's role (see
/// `inferlink_testkit::aws_chain::MotoChain::role_credentials`).
pub async fn moto_role_credentials(moto: &'static RunningServer) -> (String, String, String) {
    inferlink_testkit::aws_chain::MotoChain::new(moto)
        .unwrap()
        .role_credentials()
        .await
        .unwrap()
}

/// Connects through the factory with `record` (upper-case `AWS_*` lines go
/// into the record's credentials, the rest under the service) and invokes
/// one endpoint once.
pub async fn invoke_record(url: &str, record: &[(&str, &str)]) -> inferlink::Result<()> {
    let (secret, plain): (Vec<_>, Vec<_>) = record
        .iter()
        .copied()
        .partition(|(k, _)| k.starts_with("AWS_"));
    let connector = connect(url, &plain, &secret).await?;
    connector
        .invoke(
            &inferlink::ModelRef::new("chain"),
            inferlink::RawRequest::json("{}"),
        )
        .await
        .map(|_| ())
}
