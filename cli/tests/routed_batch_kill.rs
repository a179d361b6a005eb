//! Issue 18's kill proof through the CLI: the `inferlink` binary runs
//! `batch --route failover` over two real MLServer replicas of the `doubler`
//! model (started by the harness, each in its own process group), 10 000
//! lines at concurrency 16; the best-ranked replica's process group is killed
//! partway; no line fails.
//!
//! Skipped (with a `skipped:` line) when the MLServer venv is not installed,
//! unless `INFERLINK_REQUIRE_LIVE=1` (as `scripts/test` sets).

use std::fs::File;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use inferlink_testkit::keys::test_master_key_base64;
use inferlink_testkit::servers::{RunningServer, ServerKind, http_request, start_or_skip};
use serde_json::Value;

const LINES: usize = 10_000;
/// The output lines written before the best replica is killed.
const KILL_AFTER: usize = 2_000;

/// `inferlink --store STORE ARGS…` with the test key.
fn inferlink(store: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_inferlink"));
    cmd.arg("--store")
        .arg(store)
        .env_remove("INFERLINK_STORE")
        .env_remove("INFERLINK_KEY_FILE")
        .env_remove("INFERLINK_ENDPOINT_POLICY")
        .env("INFERLINK_MASTER_KEY", test_master_key_base64())
        .stdin(Stdio::null());
    cmd
}

fn register(store: &Path, dir: &Path, id: &str, url: &str) {
    let file = dir.join(format!("{id}.yaml"));
    std::fs::write(
        &file,
        format!(
            "id: {id}\nproduct: oip\nversion: \"1\"\nservices:\n  - id: v2\n    resource: inference-v2\n    category: replicas\n    configuration:\n      tensor_encoding: json\n      deadline_ms: \"20000\"\n    endpoints:\n      - url: {url}\n"
        ),
    )
    .unwrap();
    let out = inferlink(store)
        .args(["register", "-f", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "register {id}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `doubler` requests the server answered, from its own Prometheus metrics.
fn served(server: &RunningServer) -> u64 {
    let addr = SocketAddr::from(([127, 0, 0, 1], server.metrics_port()));
    let Ok(reply) = http_request(addr, "GET", "/metrics", None, b"") else {
        return 0;
    };
    reply
        .text()
        .lines()
        .filter(|l| l.starts_with("model_infer_request_success_total{model=\"doubler\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

fn line_count(path: &Path) -> usize {
    std::fs::read(path)
        .map(|bytes| bytes.iter().filter(|&&b| b == b'\n').count())
        .unwrap_or(0)
}

#[test]
fn batch_route_failover_loses_no_line_when_the_best_replica_is_killed() {
    let Some(first) = start_or_skip(ServerKind::MlServer) else {
        return;
    };
    let Some(second) = start_or_skip(ServerKind::MlServer) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("registry.db");
    register(&store, dir.path(), "replica-a", &first.http_url());
    register(&store, dir.path(), "replica-b", &second.http_url());

    let mut input = String::new();
    for n in 1..=LINES {
        input.push_str(&format!(
            "{{\"inputs\": [{{\"name\": \"input-0\", \"datatype\": \"FP32\", \"shape\": [1, 2], \"data\": [{n}, 1]}}]}}\n"
        ));
    }
    let input_path = dir.path().join("in.jsonl");
    std::fs::write(&input_path, &input).unwrap();
    let output_path = dir.path().join("out.jsonl");
    let stdout_path = dir.path().join("batch.stdout");
    let stderr_path = dir.path().join("batch.stderr");

    let mut batch = inferlink(&store)
        .args([
            "batch",
            "--model",
            "doubler",
            "--service-category",
            "replicas",
        ])
        .arg("--input")
        .arg(&input_path)
        .arg("--output")
        .arg(&output_path)
        .args(["--concurrency", "16", "--route", "failover"])
        .stdout(File::create(&stdout_path).unwrap())
        .stderr(File::create(&stderr_path).unwrap())
        .spawn()
        .expect("the inferlink binary runs");

    // Partway (the output passes KILL_AFTER lines; at most 120 s), the
    // replica taking the traffic — the best-ranked under failover — is
    // killed: SIGKILL to its own process group only.
    let deadline = Instant::now() + Duration::from_secs(120);
    while line_count(&output_path) < KILL_AFTER {
        assert!(
            batch.try_wait().unwrap().is_none(),
            "batch ended before {KILL_AFTER} lines: {}",
            std::fs::read_to_string(&stderr_path).unwrap_or_default()
        );
        assert!(
            Instant::now() < deadline,
            "batch wrote fewer than {KILL_AFTER} lines in 120 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (first_before, second_before) = (served(&first), served(&second));
    let (best, other) = if first_before >= second_before {
        (first, second)
    } else {
        (second, first)
    };
    let best_before = first_before.max(second_before);
    let other_before = first_before.min(second_before);
    // Lines answered between this count and the kill (and the up to 16 in
    // flight the dying replica still answers) are not the survivor's.
    let written_at_kill = line_count(&output_path);
    let status = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", best.pgid())])
        .status()
        .expect("running kill");
    assert!(status.success(), "kill -KILL -{}", best.pgid());

    // The rest of the batch, bounded: killed (by its PID) after 300 s.
    let deadline = Instant::now() + Duration::from_secs(300);
    let exit = loop {
        if let Some(exit) = batch.try_wait().unwrap() {
            break exit;
        }
        if Instant::now() > deadline {
            let _ = batch.kill();
            let _ = batch.wait();
            panic!("batch did not finish within 300 s of the kill");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let summary = std::fs::read_to_string(&stdout_path).unwrap();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap();
    let other_after = served(&other);
    let records: Vec<Value> = std::fs::read_to_string(&output_path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let failed: Vec<&Value> = records
        .iter()
        .filter(|r| r.get("error").is_some())
        .collect();
    eprintln!(
        "batch --route failover: {} output lines, {} failed; killed the best replica (it had served {best_before}, the other {other_before}) at {written_at_kill} written lines; the survivor served {other_after} in all\n{}",
        records.len(),
        failed.len(),
        summary.trim()
    );
    // Its process group is gone; `stop` only clears the harness's state.
    let _ = best.stop();

    assert!(
        failed.is_empty(),
        "failed lines: {:?}\n{stderr}",
        &failed[..failed.len().min(5)]
    );
    assert!(exit.success(), "batch exit {exit}: {summary}{stderr}");
    assert!(
        summary.contains(&format!(
            "{LINES} lines: {LINES} answered, 0 failed, 0 skipped"
        )),
        "{summary}"
    );
    // Every line answered once, with the doubler's answer.
    assert_eq!(records.len(), LINES);
    let mut seen = vec![false; LINES + 1];
    for r in &records {
        let n = r["line"].as_u64().unwrap() as usize;
        assert!(!seen[n], "line {n} answered twice");
        seen[n] = true;
        assert_eq!(
            r["outputs"][0]["data"],
            serde_json::json!([2.0 * n as f64, 2.0]),
            "{r}"
        );
    }
    // Failover kept the traffic on the best replica until it died, then the
    // other took every remaining line.
    assert!(best_before >= KILL_AFTER as u64, "{best_before}");
    assert_eq!(
        other_before, 0,
        "failover sends nothing to the second while the first is healthy"
    );
    assert!(
        other_after >= (LINES - written_at_kill - 200) as u64,
        "the survivor took over: {other_after}"
    );
}
