//! The inferlink side of the peer comparison (`scripts/bench-peer`): the
//! same inference requests as `benches/peer/tritonclient_bench.py` sends
//! through NVIDIA's Python `tritonclient`, here through `OipConnector`
//! (REST binary and gRPC), at concurrency 1 and 16, bounded by count and time.
//!
//! Run by `scripts/bench-peer`, which starts Triton and passes its addresses
//! in `INFERLINK_PEER_HTTP_URL` and `INFERLINK_PEER_GRPC_ADDR`. Without them
//! this bench starts Triton itself through the harness (or prints
//! `skipped: …` and exits 0 when it cannot). Output: one
//! `RESULT client=… wire=… elements=… concurrency=… requests=… seconds=… rps=…`
//! line per case on stdout. `INFERLINK_PEER_GZIP=1` turns on the REST
//! transport's `gzip` key (off here: tritonclient does not ask for gzip).

#[path = "support/live.rs"]
mod live;

use std::time::Duration;

use inferlink_testkit::peer_bench::{self, PeerLoad, PeerServer};
use inferlink_testkit::servers::ServerKind;
use live::Wire;

/// Elements per request and how many requests a case sends at most.
const SIZES: [(usize, usize); 3] = [(1, 2000), (1_000, 2000), (1_000_000, 100)];
/// Requests to Triton's `identity` model, at concurrency 1 and 16.
const LOAD: PeerLoad = PeerLoad::identity("INPUT", "OUTPUT", Duration::from_secs(20));

fn main() {
    let gzip = std::env::var("INFERLINK_PEER_GZIP").is_ok_and(|v| v == "1");
    let Some(peer) = PeerServer::from_env_or_start(ServerKind::Triton) else {
        return;
    };
    let rt = peer_bench::runtime();
    for wire in [Wire::RestBinary { gzip }, Wire::Grpc] {
        let conn = rt.block_on(live::connector(&peer.http_url, &peer.grpc_addr, wire));
        let wire_name = match wire {
            Wire::RestBinary { .. } => "http",
            Wire::Grpc => "grpc",
        };
        for (n, count) in SIZES {
            LOAD.measure(&rt, &conn, wire_name, n, count);
        }
    }
}
