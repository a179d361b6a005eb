//! The connector commands (`health`, `models`, `metadata`, `infer`, `invoke`)
//! of the `inferlink` binary against a real Triton server started by the
//! testkit harness. Skipped (with a `skipped:` line) when the Triton venv is
//! not installed, unless `INFERLINK_REQUIRE_LIVE=1` (as `scripts/test` sets).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use inferlink_testkit::keys::test_master_key_base64;
use inferlink_testkit::servers::{RunningServer, ServerKind, shared_or_skip};
use serde_json::Value;

/// Runs `inferlink --store STORE ARGS…`.
fn cli(store: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_inferlink"))
        .arg("--store")
        .arg(store)
        .args(args)
        .env_remove("INFERLINK_STORE")
        .env_remove("INFERLINK_KEY_FILE")
        .env("INFERLINK_MASTER_KEY", test_master_key_base64())
        .stdin(Stdio::null())
        .output()
        .expect("the inferlink binary runs")
}

/// Runs the CLI and asserts success; returns standard output.
fn ok(store: &Path, args: &[&str]) -> String {
    let out = cli(store, args);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        out.status.success(),
        "inferlink {args:?} failed ({}):\n{stdout}{stderr}",
        out.status
    );
    stdout
}

/// Runs the CLI and asserts it fails with `code`; returns standard error.
fn fails(store: &Path, args: &[&str], code: i32) -> String {
    let out = cli(store, args);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "inferlink {args:?}: {stderr}"
    );
    stderr
}

fn register(store: &Path, dir: &Path, id: &str, category: &str, url: &str) {
    let file = dir.join(format!("{id}.yaml"));
    std::fs::write(
        &file,
        format!(
            "id: {id}\nproduct: oip\nversion: \"2.51.0\"\nservices:\n  - id: v2\n    resource: inference-v2\n    category: {category}\n    configuration:\n      tensor_encoding: binary\n      deadline_ms: \"60000\"\n    endpoints:\n      - url: {url}\n"
        ),
    )
    .unwrap();
    ok(store, &["register", "-f", file.to_str().unwrap()]);
}

/// The shared Triton server and a fresh registry in a temporary folder
/// holding one OIP record `id` for it in `category`; `None` (skipped, as
/// `shared_or_skip` says) when no Triton can be had.
fn triton_registry(
    id: &str,
    category: &str,
) -> Option<(&'static RunningServer, tempfile::TempDir, PathBuf)> {
    let server = shared_or_skip(ServerKind::Triton)?;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("registry.db");
    register(&store, dir.path(), id, category, &server.http_url());
    Some((server, dir, store))
}

/// A batch line asking the doubler for `[n, 0.5]`.
fn doubler_line(n: u32) -> String {
    format!(
        r#"{{"inputs": [{{"name": "INPUT_1", "datatype": "FP32", "shape": [1, 2], "data": [{n}, 0.5]}}]}}"#
    )
}

/// Writes `lines` to `in.jsonl` in `dir`, one a line; returns its path.
fn write_input(dir: &Path, lines: impl IntoIterator<Item = String>) -> PathBuf {
    let mut input = String::new();
    for line in lines {
        input.push_str(&line);
        input.push('\n');
    }
    let path = dir.join("in.jsonl");
    std::fs::write(&path, input).unwrap();
    path
}

/// Runs `inferlink batch` for the doubler on `category`'s services, from
/// `input` into `output` with `concurrency` in flight, plus `extra` flags.
fn run_batch(
    store: &Path,
    category: &str,
    input: &Path,
    output: &Path,
    concurrency: &str,
    extra: &[&str],
) -> Output {
    let mut args = vec![
        "batch",
        "--model",
        "doubler",
        "--service-category",
        category,
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
        "--concurrency",
        concurrency,
    ];
    args.extend_from_slice(extra);
    cli(store, &args)
}

#[test]
fn connector_commands_reach_a_real_triton_through_the_registry() {
    let Some((server, dir, store)) = triton_registry("gpu-triton", "prediction-serving") else {
        return;
    };
    fn with<'a>(extra: &[&'a str]) -> Vec<&'a str> {
        let mut args: Vec<&str> = extra.to_vec();
        args.extend_from_slice(&["--service-category", "prediction-serving"]);
        args
    }

    let health = ok(&store, &with(&["health"]));
    assert!(health.contains("live=true ready=true"), "{health}");
    assert!(health.contains(&server.http_url()), "{health}");

    // PyTriton restricts the repository API (which lists models) to a token
    // the generic OIP connector does not have: the error says so.
    let stderr = fails(&store, &with(&["models"]), 3);
    assert!(stderr.contains("triton-access-token"), "{stderr}");

    let metadata = ok(&store, &with(&["metadata", "--model", "doubler"]));
    assert!(
        metadata.contains("INPUT_1") && metadata.contains("OUTPUT_1"),
        "{metadata}"
    );
    assert!(metadata.contains("FP32"), "{metadata}");

    let input = r#"{"inputs": [{"name": "INPUT_1", "datatype": "FP32", "shape": [1, 3], "data": [[1, 2, 3.5]]}]}"#;
    let json = ok(
        &store,
        &with(&["infer", "--model", "doubler", "--input", input]),
    );
    let doc: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["model_name"], "doubler");
    assert_eq!(doc["outputs"][0]["name"], "OUTPUT_1");
    assert_eq!(doc["outputs"][0]["shape"], serde_json::json!([1, 3]));
    assert_eq!(
        doc["outputs"][0]["data"],
        serde_json::json!([2.0, 4.0, 7.0])
    );

    let input_file = dir.path().join("input.json");
    std::fs::write(&input_file, input).unwrap();
    let at_file = format!("@{}", input_file.display());
    let table = ok(
        &store,
        &with(&[
            "infer", "--model", "doubler", "--input", &at_file, "-o", "table",
        ]),
    );
    assert!(
        table.contains("OUTPUT_1") && table.contains("[2.0,4.0,7.0]"),
        "{table}"
    );

    // invoke: the body goes as it is, the answer comes back as it is.
    let body_file = dir.path().join("body.json");
    std::fs::write(
        &body_file,
        r#"{"inputs": [{"name": "INPUT_1", "datatype": "FP32", "shape": [1, 1], "data": [21]}]}"#,
    )
    .unwrap();
    let body_arg = format!("@{}", body_file.display());
    let raw = ok(
        &store,
        &with(&["invoke", "--model", "doubler", "--body", &body_arg]),
    );
    let doc: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(doc["outputs"][0]["data"], serde_json::json!([42.0]));

    // Errors: bad input (2) names where; an unknown model is not found (1).
    let bad =
        r#"{"inputs": [{"name": "INPUT_1", "datatype": "FP32", "shape": [1, 3], "data": [1, 2]}]}"#;
    let stderr = fails(
        &store,
        &with(&["infer", "--model", "doubler", "--input", bad]),
        2,
    );
    assert!(stderr.contains("inputs[0]"), "{stderr}");
    let stderr = fails(&store, &with(&["metadata", "--model", "no-such-model"]), 1);
    assert!(stderr.contains("no-such-model"), "{stderr}");
    let stderr = fails(
        &store,
        &["health", "--service-category", "nothing-like-this"],
        1,
    );
    assert!(stderr.starts_with("inferlink: "), "{stderr}");
}

#[test]
fn models_are_listed_from_a_real_kserve() {
    let Some(server) = shared_or_skip(ServerKind::KServe) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("registry.db");
    register(
        &store,
        dir.path(),
        "kserve",
        "kserve-serving",
        &server.http_url(),
    );
    let models = ok(&store, &["models", "--service-category", "kserve-serving"]);
    assert!(models.starts_with("NAME"), "{models}");
    for model in server.model_names() {
        assert!(models.contains(model), "{model} missing from {models}");
    }
}

#[test]
fn a_server_that_is_down_is_unavailable_with_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("registry.db");
    // A port nothing listens on: bind, note the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let file = dir.path().join("down.yaml");
    std::fs::write(
        &file,
        format!(
            "id: down\nproduct: oip\nversion: \"1\"\nservices:\n  - id: v2\n    resource: inference-v2\n    category: prediction-serving\n    configuration:\n      deadline_ms: \"2000\"\n      retry_max_attempts: \"2\"\n    endpoints:\n      - url: {url}\n"
        ),
    )
    .unwrap();
    ok(&store, &["register", "-f", file.to_str().unwrap()]);
    let stderr = fails(&store, &["health", "--extension-id", "down"], 3);
    assert!(stderr.contains("cannot connect"), "{stderr}");
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
}

#[test]
fn batch_answers_every_line_records_failures_and_resumes() {
    let Some((_, dir, store)) = triton_registry("gpu-triton", "prediction-serving") else {
        return;
    };
    // 50 requests; lines 7 and 31 are broken (not JSON; wrong element count).
    let input_path = write_input(
        dir.path(),
        (1..=50u32).map(|n| match n {
            7 => "{not json".to_owned(),
            31 => r#"{"inputs": [{"name": "INPUT_1", "datatype": "FP32", "shape": [1, 2], "data": [1]}]}"#.to_owned(),
            _ => format!(
                r#"{{"id": "req-{n}", "inputs": [{{"name": "INPUT_1", "datatype": "FP32", "shape": [1, 2], "data": [{n}, 0.5]}}]}}"#
            ),
        }),
    );
    let output_path = dir.path().join("out.jsonl");
    let run = |extra: &[&str]| {
        run_batch(
            &store,
            "prediction-serving",
            &input_path,
            &output_path,
            "8",
            extra,
        )
    };
    let records = || -> Vec<Value> {
        std::fs::read_to_string(&output_path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };

    let out = run(&[]);
    assert_eq!(out.status.code(), Some(3), "two lines failed");
    let summary = String::from_utf8(out.stdout).unwrap();
    assert!(
        summary.contains("50 lines: 48 answered, 2 failed, 0 skipped"),
        "{summary}"
    );
    let all = records();
    assert_eq!(all.len(), 50);
    let mut lines: Vec<u64> = all.iter().map(|r| r["line"].as_u64().unwrap()).collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        (1..=50).collect::<Vec<_>>(),
        "every line answered once"
    );
    for r in &all {
        let n = r["line"].as_u64().unwrap();
        if n == 7 || n == 31 {
            assert_eq!(r["error"]["kind"], "InvalidInput", "{r}");
        } else {
            assert_eq!(r["id"], format!("req-{n}"));
            assert_eq!(
                r["outputs"][0]["data"],
                serde_json::json!([2.0 * n as f64, 1.0])
            );
        }
    }

    // A crash after 20 answers, in the middle of writing the 21st line.
    let text = std::fs::read_to_string(&output_path).unwrap();
    let kept: Vec<&str> = text.lines().take(20).collect();
    let answered_before: Vec<u64> = kept
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["line"]
                .as_u64()
                .unwrap()
        })
        .collect();
    std::fs::write(&output_path, format!("{}\n{{\"line\": 9", kept.join("\n"))).unwrap();
    let out = run(&[]);
    let summary = String::from_utf8(out.stdout).unwrap();
    let failed_before = answered_before
        .iter()
        .filter(|n| [7, 31].contains(*n))
        .count();
    let expect_failed = 2 - failed_before;
    assert!(
        summary.contains(&format!(
            "answered, {expect_failed} failed, 20 skipped (already answered)"
        )),
        "{summary}"
    );
    let mut lines: Vec<u64> = records()
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        (1..=50).collect::<Vec<_>>(),
        "resumed: no line lost or repeated"
    );

    // Everything answered: nothing to do. --retry-failed runs the 2 broken lines again.
    let out = run(&[]);
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("0 answered, 0 failed, 50 skipped")
    );
    let out = run(&["--retry-failed"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("0 answered, 2 failed, 48 skipped")
    );
}

#[test]
fn batch_rate_spaces_the_requests_and_refuses_a_bad_rate() {
    let Some((_, dir, store)) = triton_registry("rated-triton", "prediction-serving") else {
        return;
    };
    let input_path = write_input(dir.path(), (1..=21u32).map(doubler_line));
    let output_path = dir.path().join("out.jsonl");
    let run = |rate: &str| {
        run_batch(
            &store,
            "prediction-serving",
            &input_path,
            &output_path,
            "8",
            &["--rate", rate],
        )
    };
    let refused = run("0");
    assert_ne!(refused.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--rate"));

    // 21 lines at 10 per second: the first goes at once, the other 20 take
    // at least 2 s whatever the concurrency (a lower bound only).
    let started = std::time::Instant::now();
    let out = run("10");
    let took = started.elapsed();
    let summary = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{summary}");
    assert!(
        summary.contains("21 lines: 21 answered, 0 failed"),
        "{summary}"
    );
    assert!(
        took >= std::time::Duration::from_millis(1950),
        "21 lines at --rate 10 took {took:?}"
    );
}

#[test]
fn batch_route_goes_over_every_candidate_and_records_with_route_keys_work_without_it() {
    // Two records for the same server (two "replicas"), one with router keys.
    let Some((server, dir, store)) = triton_registry("replica-a", "routed") else {
        return;
    };
    let file = dir.path().join("replica-b.yaml");
    std::fs::write(
        &file,
        format!(
            "id: replica-b\nproduct: oip\nversion: \"2.51.0\"\nservices:\n  - id: v2\n    resource: inference-v2\n    category: routed\n    configuration:\n      tensor_encoding: binary\n      route_weight: \"2\"\n      route_max_in_flight: \"4\"\n    endpoints:\n      - url: {}\n",
            server.http_url()
        ),
    )
    .unwrap();
    ok(&store, &["register", "-f", file.to_str().unwrap()]);
    // Without a router, the record with router keys still connects.
    let health = ok(&store, &["health", "--extension-id", "replica-b"]);
    assert!(health.contains("ready"), "{health}");
    let input_path = write_input(dir.path(), (1..=30u32).map(doubler_line));
    let run = |route: Option<&str>, output: &str| {
        let extra: Vec<&str> = route.map_or_else(Vec::new, |r| vec!["--route", r]);
        run_batch(
            &store,
            "routed",
            &input_path,
            &dir.path().join(output),
            "4",
            &extra,
        )
    };
    for (route, output) in [
        (Some("round_robin"), "rr.jsonl"),
        (Some("least_in_flight"), "lif.jsonl"),
        (None, "plain.jsonl"),
    ] {
        let out = run(route, output);
        let summary = String::from_utf8(out.stdout).unwrap();
        assert!(
            out.status.success(),
            "{route:?}: {summary}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            summary.contains("30 lines: 30 answered, 0 failed"),
            "{route:?}: {summary}"
        );
    }
    let refused = run(Some("random"), "bad.jsonl");
    assert_ne!(refused.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("--route") && stderr.contains("round_robin"),
        "{stderr}"
    );
}
