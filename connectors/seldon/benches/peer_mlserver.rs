//! The inferlink side of the MLServer peer comparison (`scripts/bench-peer
//! mlserver`): the same inference requests `benches/peer/tritonclient_bench.py
//! --server mlserver` sends through the Python `tritonclient` (from the
//! mlserver venv), here through inferlink-seldon's `SeldonConnector` built
//! from a `product: mlserver` record — REST (JSON: MLServer has no binary
//! tensor extension) and gRPC — to MLServer's `identity` model, FP32 tensors
//! of 1, 1 000 and 100 000 elements, at concurrency 1 and 16, bounded by
//! count and time.
//!
//! `scripts/bench-peer mlserver` starts MLServer and passes its addresses in
//! `INFERLINK_PEER_HTTP_URL` and `INFERLINK_PEER_GRPC_ADDR`; without them this
//! bench starts MLServer itself through the harness (or prints `skipped: …`
//! and exits 0). Output: one `RESULT client=inferlink wire=… elements=…
//! concurrency=… requests=… seconds=… rps=…` line per case.

use std::sync::Arc;
use std::time::Duration;

use inferlink::{Connectors, InferenceConnector};
use inferlink_testkit::live::TestRecord;
use inferlink_testkit::peer_bench::{self, PeerLoad, PeerServer};
use inferlink_testkit::servers::ServerKind;

/// Elements per request and how many requests a case sends at most.
const SIZES: [(usize, usize); 3] = [(1, 2000), (1_000, 2000), (100_000, 50)];
/// Requests to MLServer's `identity` model, at concurrency 1 and 16.
const LOAD: PeerLoad = PeerLoad::identity("input-0", "output-0", Duration::from_secs(20));

async fn connector(url: &str) -> Arc<dyn InferenceConnector> {
    TestRecord::new("bench-mlserver", "mlserver", "1.7.1", "mlserver")
        .service_id("infer")
        .setting("deadline_ms", "120000")
        .endpoint(url)
        .connect(Connectors::new().with(inferlink_seldon::factory()))
        .await
}

fn main() {
    let Some(peer) = PeerServer::from_env_or_start(ServerKind::MlServer) else {
        return;
    };
    let rt = peer_bench::runtime();
    for (wire, url) in [("http", peer.http_url.clone()), ("grpc", peer.grpc_url())] {
        let conn = rt.block_on(connector(&url));
        for (n, count) in SIZES {
            LOAD.measure(&rt, &conn, wire, n, count);
        }
    }
}
