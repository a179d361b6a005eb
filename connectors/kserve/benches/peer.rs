//! The inferlink side of the KServe peer comparison (`scripts/bench-peer
//! kserve`): the same requests as `benches/peer/kserve_client_bench.py`
//! sends through kserve's Python clients, here through `KServeConnector`
//! built from a record (`product: kserve`): V1 (`instances` rows), V2 REST
//! with binary tensors, V2 gRPC; FP32 tensors to the `identity` model, at
//! concurrency 1 and 16, bounded by count and time.
//!
//! `scripts/bench-peer kserve` starts KServe and passes its addresses in
//! `INFERLINK_PEER_HTTP_URL` and `INFERLINK_PEER_GRPC_ADDR`. Without them
//! this bench starts KServe itself through the harness (or prints
//! `skipped: …` and exits 0). Output: one
//! `RESULT client=inferlink wire=… elements=… concurrency=… requests=… seconds=… rps=…`
//! line per case on stdout.

use std::sync::Arc;
use std::time::Duration;

use inferlink::{Connectors, InferenceConnector};
use inferlink_testkit::live::TestRecord;
use inferlink_testkit::peer_bench::{self, PeerLoad, PeerServer};
use inferlink_testkit::servers::ServerKind;

/// (wire, elements, requests at most): the Python side's list.
const CASES: [(&str, usize, usize); 8] = [
    ("v1", 1, 1000),
    ("v1", 1_000, 1000),
    ("rest", 1, 1000),
    ("rest", 1_000, 1000),
    ("rest", 100_000, 200),
    ("grpc", 1, 1000),
    ("grpc", 1_000, 1000),
    ("grpc", 100_000, 200),
];
/// Requests to KServe's `identity` model; the output is named per wire.
const LOAD: PeerLoad = PeerLoad::identity("input-0", "output-0", Duration::from_secs(15));

fn main() {
    let Some(peer) = PeerServer::from_env_or_start(ServerKind::KServe) else {
        return;
    };
    let rt = peer_bench::runtime();
    for (wire, n, count) in CASES {
        let conn = rt.block_on(connector(&peer, wire));
        let output = if wire == "v1" {
            "predictions"
        } else {
            LOAD.output
        };
        PeerLoad { output, ..LOAD }.measure(&rt, &conn, wire, n, count);
    }
}

/// A connector from a `product: kserve` record for one wire.
async fn connector(peer: &PeerServer, wire: &str) -> Arc<dyn InferenceConnector> {
    let record = TestRecord::new("bench-kserve", "kserve", "0.21.0", "kserve-predictor")
        .service_id("predictor");
    let record = match wire {
        "v1" => record.setting("protocol", "v1").endpoint(&peer.http_url),
        "rest" => record
            .settings(&[("protocol", "v2"), ("tensor_encoding", "binary")])
            .endpoint(&peer.http_url),
        _ => record
            .setting("protocol", "v2-grpc")
            .endpoint(&peer.grpc_url()),
    };
    record
        .setting("deadline_ms", "120000")
        .connect(Connectors::new().with(inferlink_kserve::factory()))
        .await
}
