//! `examples/host_app.rs` as a process: it serves a real MLServer (started by
//! the harness on loopback) through its routers, and `GET /metrics` shows the
//! router's series with the counts of the calls this test made.
//!
//! The example binary is `target/debug/examples/host_app`, which `cargo test`
//! without a target filter builds (as `scripts/test` does). When it is
//! missing or older than its source, this test builds it with
//! `cargo build -p inferlink --example host_app --features store-postgres`.
//!
//! A server whose venv is not installed skips the test with a visible line,
//! or fails it under `INFERLINK_REQUIRE_LIVE=1`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use inferlink::Registry;
use inferlink::crypto::{MasterKey, StaticKeyProvider};
use inferlink::store::{SqliteOptions, SqliteStore};
use inferlink_testkit::live::{self, TestRecord};
use inferlink_testkit::servers::{ServerKind, StartOptions, http_request};

/// The test key (base64 of 32 bytes), given to host_app in `INFERLINK_MASTER_KEY`.
const TEST_KEY: &str = "aW5mZXJsaW5rLXRlc3QtbWFzdGVyLWtleS0wMDAwMDE=";

/// The example's process, killed (by its PID) and reaped when dropped.
struct HostApp(Child);

impl Drop for HostApp {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `target/debug/examples/host_app`, built when missing or stale.
fn host_app_binary() -> PathBuf {
    // This test runs as target/debug/deps/host_app-HASH.
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/debug");
    let binary = profile_dir.join("examples").join("host_app");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/host_app.rs");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let fresh = matches!((modified(&binary), modified(&source)), (Some(b), Some(s)) if b >= s);
    if !fresh {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        eprintln!("building the host_app example ({})", binary.display());
        let status = Command::new(cargo)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["build", "-p", "inferlink", "--example", "host_app"])
            .args(["--features", "store-postgres"])
            .status()
            .expect("running cargo build");
        assert!(status.success(), "cargo build --example host_app");
    }
    assert!(binary.exists(), "{} was not built", binary.display());
    binary
}

/// Starts host_app on `port` over the registry file and waits (at most
/// 30 s) until it says it listens.
fn start_host_app(store: &Path, port: u16) -> HostApp {
    let mut child = Command::new(host_app_binary())
        .arg("--store")
        .arg(store)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("INFERLINK_MASTER_KEY", TEST_KEY)
        .env_remove("INFERLINK_KEY_FILE")
        .env_remove("INFERLINK_ENDPOINT_POLICY")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting host_app");
    let stderr = child.stderr.take().expect("piped stderr");
    let app = HostApp(child);
    let (said, heard) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[host_app] {line}");
            let _ = said.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match heard.recv_timeout(left) {
            Ok(line) if line.contains("listening on") => return app,
            Ok(_) => {}
            Err(e) => panic!("host_app did not start listening within 30 s: {e}"),
        }
    }
}

/// The sum of the values of `name`'s samples whose labels contain every `label`.
fn sample(metrics: &str, name: &str, labels: &[&str]) -> Option<f64> {
    let prefix = format!("{name}{{");
    let values: Vec<f64> = metrics
        .lines()
        .filter(|l| l.starts_with(&prefix) || l.split(' ').next() == Some(name))
        .filter(|l| labels.iter().all(|label| l.contains(label)))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_app_serves_the_router_metrics_of_its_calls() {
    let Some(server) = live::own_server(ServerKind::MlServer, StartOptions::default()).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store_path = dir.path().join("registry.db");
    {
        let master = MasterKey::from_base64(TEST_KEY).unwrap();
        let options =
            SqliteOptions::default().with_key_provider(Arc::new(StaticKeyProvider::new(master)));
        let registry = Registry::open(SqliteStore::open_with(&store_path, options).unwrap())
            .await
            .unwrap();
        let yaml = TestRecord::new("doubler-mlserver", "oip", "1", "inference-v2")
            .settings(&[("tensor_encoding", "json")])
            .endpoint(&server.http_url())
            .yaml();
        registry.register_yaml(&yaml).await.unwrap();
    }

    let port = inferlink_testkit::servers::free_loopback_port();
    let _app = tokio::task::spawn_blocking(move || start_host_app(&store_path, port))
        .await
        .unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));

    const CALLS: usize = 5;
    for n in 0..CALLS {
        let body = format!(
            r#"{{"inputs": [{{"name": "input-0", "datatype": "FP32", "shape": [1, 2], "data": [{n}, 1]}}]}}"#
        );
        let reply = tokio::task::spawn_blocking(move || {
            http_request(
                addr,
                "POST",
                "/infer/prediction-serving/doubler",
                Some("application/json"),
                body.as_bytes(),
            )
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!(reply.status, 200, "call {n}: {}", reply.text());
        let answer: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(
            answer["outputs"][0]["data"],
            serde_json::json!([2.0 * n as f64, 2.0]),
            "call {n}: {answer}"
        );
    }
    // One call the server refuses (an unknown model): an error of its kind.
    let refused = tokio::task::spawn_blocking(move || {
        http_request(
            addr,
            "POST",
            "/infer/prediction-serving/no-such-model",
            Some("application/json"),
            br#"{"inputs": [{"name": "input-0", "datatype": "FP32", "shape": [1, 1], "data": [1]}]}"#,
        )
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(refused.status, 404, "{}", refused.text());

    let reply =
        tokio::task::spawn_blocking(move || http_request(addr, "GET", "/metrics", None, b""))
            .await
            .unwrap()
            .unwrap();
    assert_eq!(reply.status, 200);
    let metrics = reply.text();
    let doubler = [r#"model="doubler""#, r#"service="doubler-mlserver"#];
    let requests = sample(&metrics, "inferlink_router_requests_total", &doubler);
    let latency_count = sample(
        &metrics,
        "inferlink_router_request_duration_seconds_count",
        &doubler,
    );
    let in_flight = sample(&metrics, "inferlink_router_in_flight", &doubler);
    let unknown_errors = sample(
        &metrics,
        "inferlink_router_errors_total",
        &[r#"model="no-such-model""#, r#"kind="not_found""#],
    );
    eprintln!(
        "host_app /metrics after {CALLS} calls and 1 refused: requests {requests:?}, latency count {latency_count:?}, in flight {in_flight:?}, not_found errors {unknown_errors:?}"
    );
    let shown = || format!("/metrics:\n{metrics}");
    assert_eq!(requests, Some(CALLS as f64), "{}", shown());
    assert_eq!(latency_count, Some(CALLS as f64), "{}", shown());
    assert!(
        metrics.contains("inferlink_router_request_duration_seconds{")
            || metrics.contains("inferlink_router_request_duration_seconds_bucket{"),
        "the latency distribution: {}",
        shown()
    );
    assert_eq!(in_flight, Some(0.0), "{}", shown());
    assert_eq!(unknown_errors, Some(1.0), "{}", shown());
}
