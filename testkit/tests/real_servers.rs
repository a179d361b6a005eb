//! Smoke tests of the real-server harness: each server starts on loopback,
//! answers its readiness probes, and leaves nothing behind when stopped.
//!
//! Without the venvs these tests print `skipped: …` and pass, unless
//! `INFERLINK_REQUIRE_LIVE=1` (set by `scripts/test`) makes that a failure.

use std::net::SocketAddr;
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use inferlink_testkit::servers::{
    self, RunningServer, ServerKind, StartOptions, port_open, process_group_alive,
};

/// Unlike `live::assert_listens_on_loopback_only`, `::1` counts too.
fn assert_loopback_only(port: u16) {
    let addrs = inferlink_testkit::live::listen_addresses(port);
    assert!(!addrs.is_empty(), "nothing listens on port {port}");
    for a in &addrs {
        assert!(
            a == "127.0.0.1" || a == "::ffff:127.0.0.1" || a == "::1",
            "port {port} listens on {a}, not loopback"
        );
    }
}

fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        sleep(Duration::from_millis(200));
    }
    done()
}

/// Starts `kind`, probes it, stops it (by `stop()` or by drop) and checks
/// that the ports closed and the process group is gone.
fn start_probe_stop(kind: ServerKind, stop_by_drop: bool) {
    let Some(server) = servers::start_or_skip(kind) else {
        return;
    };
    assert_eq!(server.kind(), kind);
    assert_eq!(server.get_status("/v2/health/ready").unwrap(), 200);
    assert_eq!(server.get_status("/v2/health/live").unwrap(), 200);
    for name in server.model_names() {
        let ready = server
            .get_status(&format!("/v2/models/{name}/ready"))
            .unwrap();
        assert_eq!(ready, 200, "{kind}: model {name} not ready");
        let meta = server.get_status(&format!("/v2/models/{name}")).unwrap();
        assert_eq!(meta, 200, "{kind}: no metadata for {name}");
    }
    let unknown = server.get_status("/v2/models/no-such-model/ready").unwrap();
    assert_ne!(unknown, 200, "{kind}: an unknown model reported ready");
    assert!(port_open(server.grpc_addr()), "{kind}: gRPC port closed");
    assert_loopback_only(server.http_port());
    assert_loopback_only(server.grpc_port());
    assert!(process_group_alive(server.pgid()));

    let (http, grpc, pgid) = (server.http_addr(), server.grpc_addr(), server.pgid());
    if stop_by_drop {
        drop(server);
    } else {
        server.stop().unwrap();
    }
    assert!(
        !process_group_alive(pgid),
        "{kind}: process group {pgid} survived"
    );
    for addr in [http, grpc] {
        assert!(!port_open(addr), "{kind}: {addr} still accepts connections");
    }
}

#[test]
fn kserve_starts_answers_and_stops_on_drop() {
    start_probe_stop(ServerKind::KServe, true);
}

#[test]
fn mlserver_starts_answers_and_stops() {
    start_probe_stop(ServerKind::MlServer, false);
}

#[test]
fn triton_starts_answers_and_stops() {
    start_probe_stop(ServerKind::Triton, false);
}

/// pythie-serving speaks gRPC only: its port is open on loopback only, and
/// stopping leaves nothing behind (its Predict calls are tested by
/// `connectors/tfserving/tests/live_pythie.rs`).
#[test]
fn pythie_starts_on_loopback_and_stops() {
    let Some(server) = servers::start_or_skip(ServerKind::Pythie) else {
        return;
    };
    assert_eq!(server.model_names(), vec!["doubler", "length", "sum"]);
    assert!(port_open(server.grpc_addr()), "pythie: gRPC port closed");
    assert_loopback_only(server.grpc_port());
    let (grpc, pgid) = (server.grpc_addr(), server.pgid());
    server.stop().unwrap();
    assert!(
        !process_group_alive(pgid),
        "pythie: process group {pgid} survived"
    );
    assert!(!port_open(grpc), "pythie: {grpc} still accepts connections");
}

#[test]
fn omi_starts_listens_on_loopback_only_and_stops() {
    // Two chassis OMI servers (gRPC only, no HTTP health): one on each port.
    let Some(server) = servers::start_or_skip(ServerKind::Omi) else {
        return;
    };
    assert_eq!(server.model_names(), ["textops", "batcher"]);
    assert!(port_open(server.grpc_addr()) && port_open(server.http_addr()));
    assert_loopback_only(server.http_port());
    assert_loopback_only(server.grpc_port());
    let (http, grpc, pgid) = (server.http_addr(), server.grpc_addr(), server.pgid());
    server.stop().unwrap();
    assert!(
        !process_group_alive(pgid),
        "omi: process group {pgid} survived"
    );
    for addr in [http, grpc] {
        assert!(!port_open(addr), "omi: {addr} still accepts connections");
    }
}

#[test]
fn a_shared_server_is_started_once() {
    let Some(first) = servers::shared_or_skip(ServerKind::KServe) else {
        return;
    };
    let second = servers::shared(ServerKind::KServe).unwrap();
    assert!(std::ptr::eq(first, second));
    assert_eq!(first.get_status("/v2/health/ready").unwrap(), 200);
    // KServe also serves the V1 protocol on the same port.
    assert_eq!(first.get_status("/v1/models/doubler").unwrap(), 200);
}

#[test]
fn the_watchdog_stops_a_server_whose_parent_exits() {
    // A stand-in parent that this test ends on purpose (killed on every path).
    struct Parent(std::process::Child);
    impl Drop for Parent {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut parent = Parent(Command::new("sleep").arg("300").spawn().unwrap());
    let options = StartOptions {
        parent_pid: Some(parent.0.id()),
        ..StartOptions::default()
    };
    let started = RunningServer::start_with(ServerKind::KServe, &options);
    let Some(server) = servers::or_skip(ServerKind::KServe, started) else {
        return;
    };
    let (pgid, http): (u32, SocketAddr) = (server.pgid(), server.http_addr());
    assert!(process_group_alive(pgid));
    parent.0.kill().unwrap();
    parent.0.wait().unwrap();
    let gone = wait_until(Duration::from_secs(60), || !process_group_alive(pgid));
    assert!(gone, "the server outlived its parent");
    assert!(!port_open(http));
    // Dropping after the watchdog stopped it is harmless.
    server.stop().unwrap();
}

#[test]
fn torchserve_starts_with_token_auth_on_and_stops() {
    let Some(server) = servers::start_or_skip(ServerKind::TorchServe) else {
        return;
    };
    // Token authorization is on: TorchServe wrote its keys (the connector's
    // live tests check that a request without them is refused).
    assert!(port_open(server.http_addr()));
    let keys = inferlink_testkit::torchserve::read_key_file(server.field("key_file").unwrap())
        .expect("the key file TorchServe wrote");
    assert_eq!(keys.inference.len(), 8);
    let management: u16 = server.field("management_port").unwrap().parse().unwrap();
    assert_eq!(
        server.field("management_url"),
        Some(format!("http://127.0.0.1:{management}").as_str())
    );
    for port in [server.http_port(), server.grpc_port(), management] {
        assert_loopback_only(port);
    }
    let pgid = server.pgid();
    let addrs = [
        server.http_addr(),
        server.grpc_addr(),
        SocketAddr::from(([127, 0, 0, 1], management)),
    ];
    server.stop().unwrap();
    assert!(!process_group_alive(pgid), "process group {pgid} survived");
    for addr in addrs {
        assert!(!port_open(addr), "{addr} still accepts connections");
    }
}

/// MLflow's scoring server: one model, no model name in any path, `/ping`
/// for readiness, `/invocations` doubling its input; the model's `fail`
/// column raises and comes back in the server's error envelope.
#[test]
fn mlflow_scores_on_loopback_and_stops() {
    let Some(server) = servers::start_or_skip(ServerKind::Mlflow) else {
        return;
    };
    assert_eq!(server.model_names(), ["doubler"]);
    assert_eq!(server.get_status("/ping").unwrap(), 200);
    assert_eq!(server.get_status("/health").unwrap(), 200);
    assert_loopback_only(server.http_port());

    let post = |body: &str| {
        let reply = server
            .http(
                "POST",
                "/invocations",
                Some("application/json"),
                body.as_bytes(),
            )
            .unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&reply.body).unwrap_or_else(|e| panic!("{e}: {}", reply.text()));
        (reply, json)
    };
    let (reply, json) = post(r#"{"inputs": [[1, 2], [3, 4]]}"#);
    assert_eq!(reply.status, 200, "{json}");
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(json, serde_json::json!({"predictions": [[2, 4], [6, 8]]}));

    let (reply, json) = post(r#"{"inputs": [1, 2], "params": {"factor": 3}}"#);
    assert_eq!(reply.status, 200, "{json}");
    assert_eq!(json, serde_json::json!({"predictions": [3, 6]}));

    let (reply, json) =
        post(r#"{"dataframe_split": {"columns": ["a", "fail"], "data": [[1, "boom"]]}}"#);
    assert_eq!(reply.status, 400, "{json}");
    assert_eq!(json["error_code"], "BAD_REQUEST", "{json}");
    let trace = json["stack_trace"].as_str().unwrap_or_default();
    assert!(trace.contains("asked to fail: boom"), "{json}");

    let (http, pgid) = (server.http_addr(), server.pgid());
    server.stop().unwrap();
    assert!(
        !process_group_alive(pgid),
        "mlflow: process group {pgid} survived"
    );
    assert!(!port_open(http), "mlflow: {http} still accepts connections");
}

/// llama-cpp-python's OpenAI-compatible server: two processes (generation,
/// embeddings) in one process group, both on loopback only, each listing its
/// model; stopping ends both. What they answer is tested in `llama_cpp_server.rs`.
#[test]
fn llama_cpp_starts_two_servers_on_loopback_and_stops_both() {
    let Some(server) = servers::start_or_skip(ServerKind::LlamaCpp) else {
        return;
    };
    assert_eq!(
        server.model_names(),
        [
            servers::LLAMA_CPP_GENERATION_MODEL,
            servers::LLAMA_CPP_EMBEDDING_MODEL
        ]
    );
    let embedding = server.embedding_addr().expect("an embedding server");
    assert_eq!(
        server.embedding_url().as_deref(),
        Some(format!("http://{embedding}").as_str())
    );
    assert_eq!(
        server.field("embedding_url"),
        server.embedding_url().as_deref()
    );
    assert_ne!(embedding, server.http_addr());
    for addr in [server.http_addr(), embedding] {
        let reply = servers::http_request(addr, "GET", "/v1/models", None, b"").unwrap();
        assert_eq!(reply.status, 200, "{addr}: {}", reply.text());
        assert_loopback_only(addr.port());
    }
    // Only the generation server has the generation model, and the other way round.
    let generation = server.http("GET", "/v1/models", None, b"").unwrap().text();
    assert!(
        generation.contains(servers::LLAMA_CPP_GENERATION_MODEL),
        "{generation}"
    );
    assert!(
        !generation.contains(servers::LLAMA_CPP_EMBEDDING_MODEL),
        "{generation}"
    );
    assert!(process_group_alive(server.pgid()));

    let (http, pgid) = (server.http_addr(), server.pgid());
    server.stop().unwrap();
    assert!(
        !process_group_alive(pgid),
        "llama-cpp: process group {pgid} survived"
    );
    for addr in [http, embedding] {
        assert!(
            !port_open(addr),
            "llama-cpp: {addr} still accepts connections"
        );
    }
}
