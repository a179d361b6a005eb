//! Shared by the live benches: starting Triton, building connectors from a
//! record as a host does, and percentiles.

#![allow(dead_code)] // each bench uses a different subset

use std::sync::Arc;
use std::time::Duration;

use inferlink::{Connectors, Consumer, InferenceConnector, MemoryStore, Registry, Selector};
use inferlink_testkit::servers::{RunningServer, ServerKind};

/// How the connector talks to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// REST with binary tensors; `gzip` is the transport's `gzip` key
    /// (whether responses are asked for gzip-compressed).
    RestBinary {
        /// The `gzip` transport key.
        gzip: bool,
    },
    /// gRPC.
    Grpc,
}

impl Wire {
    /// A short label for reports.
    pub fn label(self) -> &'static str {
        match self {
            Wire::RestBinary { gzip: true } => "rest-binary (gzip on, default)",
            Wire::RestBinary { gzip: false } => "rest-binary (gzip off)",
            Wire::Grpc => "grpc",
        }
    }
}

/// Starts the real Triton of the harness, or prints `skipped: …` and
/// returns `None` when it cannot start (benches only need to compile in CI).
pub fn start_triton() -> Option<RunningServer> {
    match RunningServer::start(ServerKind::Triton) {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!("skipped: cannot start the real Triton server: {e}");
            None
        }
    }
}

/// A connector for the server at `http_url` / `grpc_addr` over `wire`,
/// built from a registered record through the OIP factory.
pub async fn connector(http_url: &str, grpc_addr: &str, wire: Wire) -> Arc<dyn InferenceConnector> {
    let (url, settings) = match wire {
        Wire::RestBinary { gzip } => (
            http_url.to_owned(),
            format!("tensor_encoding: binary\n      gzip: \"{gzip}\""),
        ),
        Wire::Grpc => (format!("grpc://{grpc_addr}"), "protocol: grpc".to_owned()),
    };
    let registry = Registry::open(MemoryStore::new()).await.expect("registry");
    registry
        .register_yaml(&format!(
            r#"
id: bench-triton
product: oip
version: "1"
services:
  - id: infer
    resource: inference-v2
    category: prediction-serving
    configuration:
      {settings}
      deadline_ms: "120000"
    endpoints:
      - url: {url}
"#
        ))
        .await
        .expect("register the bench record");
    let resolution = registry
        .resolve(&Selector::resource("inference-v2"), &Consumer::anywhere())
        .expect("resolve");
    Connectors::new()
        .with(inferlink_oip::factory())
        .connect(&resolution)
        .await
        .expect("connect")
}

/// The nearest-rank percentile `p` (0–100) of `samples`, which must be sorted.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Milliseconds with three decimals, for reports.
pub fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}
