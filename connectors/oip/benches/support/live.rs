//! Shared by the live benches: starting Triton, building connectors from a
//! record as a host does, and percentiles.

#![allow(dead_code)] // each bench uses a different subset

use std::sync::Arc;
use std::time::Duration;

use inferlink::{Connectors, InferenceConnector};
use inferlink_testkit::live::TestRecord;
use inferlink_testkit::peer_bench;
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
    peer_bench::start_or_report(ServerKind::Triton)
}

/// A connector for the server at `http_url` / `grpc_addr` over `wire`,
/// built from a registered record through the OIP factory.
pub async fn connector(http_url: &str, grpc_addr: &str, wire: Wire) -> Arc<dyn InferenceConnector> {
    let record = TestRecord::new("bench-triton", "oip", "1", "inference-v2").service_id("infer");
    let record = match wire {
        Wire::RestBinary { gzip } => record
            .setting("tensor_encoding", "binary")
            .setting("gzip", if gzip { "true" } else { "false" })
            .endpoint(http_url),
        Wire::Grpc => record
            .setting("protocol", "grpc")
            .endpoint(&format!("grpc://{grpc_addr}")),
    };
    record
        .setting("deadline_ms", "120000")
        .connect(Connectors::new().with(inferlink_oip::factory()))
        .await
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
