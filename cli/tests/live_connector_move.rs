//! A live connector follows a change made by another process while a load
//! runs: two real KServe servers, a record pointing at the first, a host
//! sending requests through a `LiveConnector` over the shared SQLite
//! registry; the `inferlink` binary (another process) moves the endpoint to
//! the second server; then the first server is stopped. No request may fail:
//! requests sent after the change is visible go to the second server, and
//! in-flight ones finish on the first before it stops.
//!
//! Skipped (with a `skipped:` line) when the KServe venv is not installed,
//! unless `INFERLINK_REQUIRE_LIVE=1` (as `scripts/test` sets).

use inferlink::prelude::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use inferlink::connector::LiveConnector;
use inferlink::{Connectors, Consumer, InferRequest, ModelRef, Registry, Selector, Tensor};
use inferlink_testkit::keys::{open_keyed_sqlite, test_master_key_base64};
use inferlink_testkit::servers::{ServerKind, start_or_skip};

/// Upper bound for anything the test waits for (a hang guard).
const PATIENCE: Duration = Duration::from_secs(30);
/// The load: requests in flight, and bounds on the whole run (count and time;
/// a quiet machine sends a few thousand requests a second).
const WORKERS: usize = 4;
const MAX_REQUESTS: u64 = 200_000;

fn record(url: &str) -> String {
    format!(
        "id: serving\nproduct: oip\nversion: \"0.21.0\"\nservices:\n  - id: v2\n    resource: inference-v2\n    category: prediction-serving\n    configuration:\n      deadline_ms: \"20000\"\n    endpoints:\n      - url: {url}\n"
    )
}

/// `inferlink --store STORE register --upsert -f FILE`, in another process.
fn cli_upsert(store: &Path, file: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_inferlink"))
        .arg("--store")
        .arg(store)
        .args(["register", "--upsert", "-f"])
        .arg(file)
        .env_remove("INFERLINK_STORE")
        .env_remove("INFERLINK_KEY_FILE")
        .env("INFERLINK_MASTER_KEY", test_master_key_base64())
        .stdin(Stdio::null())
        .output()
        .expect("the inferlink binary runs");
    assert!(
        out.status.success(),
        "inferlink register failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_connector_moves_to_the_new_endpoint_without_failing_a_request() {
    let Some(first) = start_or_skip(ServerKind::KServe) else {
        return;
    };
    let Some(second) = start_or_skip(ServerKind::KServe) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("registry.db");
    let file = dir.path().join("serving.yaml");
    std::fs::write(&file, record(&first.http_url())).unwrap();
    cli_upsert(&store, &file);

    let registry = Registry::open(open_keyed_sqlite(&store).unwrap())
        .await
        .unwrap();
    let live = LiveConnector::connect(
        &registry,
        Arc::new(Connectors::new().with(inferlink_oip::factory())),
        Selector::category("prediction-serving"),
        Consumer::anywhere(),
    )
    .await
    .unwrap();
    let endpoint = live.current_info().await.unwrap().endpoint;
    assert_eq!(endpoint.trim_end_matches('/'), first.http_url());

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let live = live.clone();
            let stop = Arc::clone(&stop);
            let sent = Arc::clone(&sent);
            tokio::spawn(async move {
                let model = ModelRef::new("doubler");
                let mut failures = Vec::new();
                while !stop.load(Ordering::SeqCst)
                    && sent.fetch_add(1, Ordering::SeqCst) < MAX_REQUESTS
                    && started.elapsed() < PATIENCE * 2
                {
                    let x = w as f32;
                    let request = InferRequest::new()
                        .with_input(Tensor::new("input-0", vec![1], vec![x]).unwrap());
                    match live.infer(&model, request).await {
                        Ok(r) => {
                            let out = r
                                .require_output("output-0")
                                .unwrap()
                                .to_f32_lossy()
                                .unwrap();
                            if out != vec![2.0 * x] {
                                failures.push(format!("wrong answer {out:?}"));
                            }
                        }
                        Err(e) => failures.push(e.to_string()),
                    }
                }
                failures
            })
        })
        .collect();

    // Let the load run on the first server, then move the endpoint from another process.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before_move = sent.load(Ordering::SeqCst);
    std::fs::write(&file, record(&second.http_url())).unwrap();
    tokio::task::spawn_blocking({
        let (store, file) = (store.clone(), file.clone());
        move || cli_upsert(&store, &file)
    })
    .await
    .unwrap();
    // Visible in this process once the registry has applied it.
    let visible = async {
        loop {
            let url = registry
                .get("serving")
                .map(|r| r.record.services[0].endpoints[0].url.clone());
            if url.as_deref() == Some(second.http_url().as_str()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(PATIENCE, visible)
        .await
        .expect("the change reached the registry");
    // In-flight requests on the first server finish; then it goes away.
    tokio::time::sleep(Duration::from_millis(500)).await;
    first.stop().expect("the first server stops");
    let at_stop = sent.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::SeqCst);

    let mut failures = Vec::new();
    for w in workers {
        failures.extend(w.await.unwrap());
    }
    let total = sent.load(Ordering::SeqCst);
    assert!(before_move > 0, "the load ran before the move");
    assert!(
        total > at_stop + WORKERS as u64,
        "the load ran after the first server stopped: {at_stop} → {total}"
    );
    assert!(
        failures.is_empty(),
        "{} of {total} requests failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert_eq!(live.rebuilds(), 1);
    let endpoint = live.current_info().await.unwrap().endpoint;
    assert_eq!(endpoint.trim_end_matches('/'), second.http_url());
}
